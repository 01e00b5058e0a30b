package process

// ParseStat exposes parseStat to the black-box tests.
var ParseStat = parseStat

// SetNetSearchPath makes drivers made from now on look for ip and iptables
// only in dirs, and returns a function that undoes it.
func SetNetSearchPath(dirs string) (undo func()) {
	old := netSearchPath
	netSearchPath = dirs
	return func() { netSearchPath = old }
}
