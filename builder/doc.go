// Package builder holds the build mechanics of staging: the Buildpack
// contract shared by Heroku and Cloud Foundry (detect, compile, release), the
// built-in buildpacks (go, nodejs, python, static, dockerfile, procfile), classic script
// buildpacks run from a directory (bin/detect, bin/compile, bin/release, the
// export file and .profile.d), the Procfile, package.json, .python-version,
// npm version range and bin/release parsers, and the Runner every build
// command goes through: HostRunner puts each in its own process group so a
// timeout kills the whole tree; the stager supplies a confining one.
//
// Orchestration (sandboxes, caches, confinement, timeouts, typed failures)
// lives in package stager; the droplet format lives in builder/droplet. The
// user-facing contract is docs/buildpacks.md.
package builder
