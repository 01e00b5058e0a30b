//go:build !linux

package guest

import (
	"fmt"
	"os"
)

// Main is the guest's /init; guests run Linux, so elsewhere it only says so.
func Main() {
	fmt.Fprintln(os.Stderr, "strata-guest-init runs only as the init of a Linux guest")
	os.Exit(2)
}
