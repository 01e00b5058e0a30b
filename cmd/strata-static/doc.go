// Command strata-static is the small file server the static buildpack puts
// in droplets. It serves the files under -root on $PORT (or -addr) with
// net/http's FileServer through an os.Root, so symlinks cannot leave the
// root. Directory listings and dotfiles (except .well-known) are not served;
// HTML is revalidated on every request and other assets are cached for an
// hour. SIGTERM and SIGINT shut it down gracefully.
package main
