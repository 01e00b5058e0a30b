// Package builder holds the build mechanics of staging: the Buildpack
// contract shared by Heroku and Cloud Foundry (detect, compile, release), the
// built-in buildpacks (go, static, procfile), the Procfile parser, and the
// argv-only command runner that puts every build command in its own process
// group so a timeout kills the whole tree.
//
// Orchestration (sandboxes, timeouts, typed failures) lives in package
// stager; the droplet format lives in builder/droplet.
package builder
