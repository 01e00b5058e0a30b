package driver_test

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

func TestCheckHandle(t *testing.T) {
	ok := &driver.Handle{Version: driver.HandleVersion, Driver: "x", ID: "i-1"}
	if err := driver.CheckHandle(ok, "x"); err != nil {
		t.Fatalf("CheckHandle of a good handle = %v", err)
	}
	for _, tc := range []struct {
		name string
		h    *driver.Handle
		want string
	}{
		{"nil", nil, "not a x driver handle of version 1"},
		{"other driver", &driver.Handle{Version: driver.HandleVersion, Driver: "y", ID: "i-1"}, "not a x driver handle of version 1"},
		{"other version", &driver.Handle{Version: driver.HandleVersion + 1, Driver: "x", ID: "i-1"}, "not a x driver handle of version 1"},
		{"bad id", &driver.Handle{Version: driver.HandleVersion, Driver: "x", ID: "../i"}, "is not a plain name"},
	} {
		err := driver.CheckHandle(tc.h, "x")
		if api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckHandle = %v, want EInvalid with %q", tc.name, err, tc.want)
		}
	}
}
