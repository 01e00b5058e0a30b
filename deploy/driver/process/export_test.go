package process

// ParseStat exposes parseStat to the black-box tests.
var ParseStat = parseStat
