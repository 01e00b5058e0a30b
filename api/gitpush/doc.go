// Package gitpush serves git smart HTTP receive-pack so that a developer can
// deploy an app with a plain `git push`.
//
// The handler answers /git/<app>.git/info/refs?service=git-receive-pack and
// POST /git/<app>.git/git-receive-pack. It keeps one bare repository per app
// under Config.ReposDir, stores the pushed objects there with go-git's
// plumbing, streams a gzip-compressed tar of the pushed commit's tree to
// api.DeployService, and sends the build output back as git sideband progress
// (the `remote:` lines the git client prints). The branch is updated only when
// the deploy succeeds; a failed deploy is reported as a rejected ref so `git
// push` exits non-zero with the reason.
//
// go-git's own server receive-pack cannot speak side-band-64k
// (go-git/go-git#2203), so the protocol is assembled here from go-git's packp,
// packfile and sideband packages. Fetching (upload-pack) is not supported yet
// and is answered with 403 and a message.
//
// A Handler is safe for concurrent use. Pushes to the same app are serialised:
// a push that arrives while another push of the same app is running is
// rejected with a message asking to push again.
package gitpush
