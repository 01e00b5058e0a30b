package process

// ParseUsageStat and UsageStat expose the usage parser to black-box tests.
var ParseUsageStat = parseUsageStat

type UsageStat = usageStat
