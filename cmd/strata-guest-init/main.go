// Command strata-guest-init is the /init of the microvm driver's guests
// (package deploy/driver/microvm/guest). Build it static: CGO_ENABLED=0.
package main

import "github.com/strata-paas/strata/deploy/driver/microvm/guest"

func main() { guest.Main() }
