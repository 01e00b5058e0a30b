package executor

import (
	"slices"
	"strings"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

// drivers are the drivers of one executor, one per isolation it offers.
// The instance spec names the isolation (the scheduler's choice); a spec
// without one runs on the process driver, as before executors had several.
type drivers struct {
	all        []driver.Driver
	byIso      map[api.Isolation]driver.Driver
	byName     map[string]driver.Driver
	isolations []api.Isolation // every isolation offered, in driver order
	accel      string          // a VM driver's acceleration (Fingerprint.Accel)
	def        driver.Driver   // for specs without an isolation
	defIso     api.Isolation
}

// newDrivers indexes drvs by the isolations their fingerprints report. A
// driver without a fingerprint offers the unconfined process isolation.
// Two drivers offering one isolation are refused.
func newDrivers(drvs []driver.Driver) (*drivers, error) {
	ds := &drivers{byIso: map[api.Isolation]driver.Driver{}, byName: map[string]driver.Driver{}}
	for _, d := range drvs {
		if d == nil {
			return nil, api.Errorf(api.EInvalid, "executor given a nil driver")
		}
		fp := fingerprint(d)
		if _, dup := ds.byName[fp.Driver]; dup {
			return nil, api.Errorf(api.EInvalid, "executor given two %s drivers", fp.Driver)
		}
		ds.byName[fp.Driver] = d
		if fp.Accel != "" {
			ds.accel = fp.Accel
		}
		for _, iso := range fp.Isolations {
			if _, dup := ds.byIso[iso]; dup {
				return nil, api.Errorf(api.EInvalid, "two drivers offer isolation %s — enable one of them", iso)
			}
			ds.byIso[iso] = d
			ds.isolations = append(ds.isolations, iso)
		}
		ds.all = append(ds.all, d)
	}
	if len(ds.all) == 0 {
		return nil, api.Errorf(api.EInvalid, "executor needs at least one driver")
	}
	for _, iso := range []api.Isolation{api.IsolationProcess, api.IsolationProcessUnconfined} {
		if d, ok := ds.byIso[iso]; ok {
			ds.def, ds.defIso = d, iso
			break
		}
	}
	if ds.def == nil {
		ds.def = ds.all[0]
		if fp := fingerprint(ds.def); len(fp.Isolations) > 0 {
			ds.defIso = fp.Isolations[0]
		}
	}
	return ds, nil
}

func fingerprint(d driver.Driver) driver.Fingerprint {
	if fp, ok := d.(driver.Fingerprinter); ok {
		return fp.Fingerprint()
	}
	return driver.Fingerprint{Driver: "unnamed", Isolations: []api.Isolation{api.IsolationProcessUnconfined}}
}

// forSpec returns the driver for the spec's isolation and that isolation.
// An isolation this node does not offer is EInvalid.
func (ds *drivers) forSpec(s *api.InstanceSpec) (driver.Driver, api.Isolation, error) {
	if s.Isolation == "" {
		return ds.def, ds.defIso, nil
	}
	if d, ok := ds.byIso[s.Isolation]; ok {
		return d, s.Isolation, nil
	}
	offered := make([]string, len(ds.isolations))
	for i, iso := range ds.isolations {
		offered[i] = string(iso)
	}
	return nil, "", api.Errorf(api.EInvalid, "this node does not offer isolation %q — it offers %s; place the instance on a node that does",
		s.Isolation, strings.Join(offered, ", "))
}

// forHandle returns the driver that wrote h (by its name), falling back to
// the spec's isolation for a record without a handle.
func (ds *drivers) forHandle(h *driver.Handle, s *api.InstanceSpec) (driver.Driver, api.Isolation, error) {
	if h == nil {
		return ds.forSpec(s)
	}
	d, ok := ds.byName[h.Driver]
	if !ok {
		return nil, "", api.Errorf(api.ENotFound, "the %s driver that started the instance is not enabled on this executor", h.Driver)
	}
	iso := s.Isolation
	if fp := fingerprint(d); iso == "" || !slices.Contains(fp.Isolations, iso) {
		iso = ""
		if len(fp.Isolations) > 0 {
			iso = fp.Isolations[0]
		}
	}
	return d, iso, nil
}
