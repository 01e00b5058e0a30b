// Command strata is the CLI of Strata (the user contract is docs/cli.md).
//
// main() only builds a Main and calls Main.Run, which tests call in-process
// with their own stdin/stdout/stderr, environment and working directory.
// Each command noun lives in its own file (apps.go, app.go, push.go, …) and
// talks to the REST API through api/client. Every command that calls the API
// (all but login and the git credential helper) is built with Main.appCmd
// (appcmd.go): the app's name from the arguments (or, for push, the
// manifest or directory), checks that need no API, the target's client, then
// the call, printed as JSON with --json or as text.
//
// Configuration is $XDG_CONFIG_HOME/strata/config.json (default
// ~/.config/strata/config.json), written with mode 0600 by `strata login`;
// STRATA_API and STRATA_TOKEN override it, and --api overrides both.
//
// Errors go to stderr as "error: <what happened> — <what to do>"; the exit
// code is 1, or 2 for usage errors (unknown command or flag, wrong number of
// arguments). Read commands take --json and then print only JSON on stdout.
//
// `strata apps delete NAME` asks for confirmation only when stdin is a
// terminal; -f skips the question, and without a terminal (scripts) it
// deletes without asking.
package main
