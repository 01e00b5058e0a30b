// Package manifest parses Strata's app manifest, strata.yml, and the subset
// of Cloud Foundry's manifest.yml it shares (schema in docs/cli.md):
//
//	applications:
//	- name: hello
//	  instances: 2
//	  memory: 256M
//	  disk_quota: 1G
//	  command: ./bin/hello
//	  env: {GREETING: hi}
//	  routes: [{route: hello.localhost}]
//	  health-check-type: port
//	  processes:
//	  - {type: worker, instances: 1, command: ./bin/worker}
//
// Parsing is strict: unknown keys, wrong types, bad sizes, invalid names and
// config vars the platform refuses are errors that name the line. The input
// is bounded (MaxBytes) and so is alias expansion (MaxNodes), so a "billion
// laughs" document fails fast instead of exhausting memory. Parse returns
// *api.Error values with code EInvalid.
package manifest
