// Package mock is a scripted fake driver for executor tests. Nothing is
// executed: the Spec's Command is a tiny script (see ParseCommand) saying
// whether the instance runs until stopped, exits with a code after a delay,
// ignores SIGTERM, prints lines, or fails to start.
package mock
