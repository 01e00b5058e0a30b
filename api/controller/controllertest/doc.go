// Package controllertest provides in-memory fakes of what the controller
// consumes — a Store and an api.BlobStore — for tests of the controller and
// of the adapters built on it. They are not for production: nothing survives
// the process.
package controllertest
