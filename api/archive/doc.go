// Package archive reads and writes the gzip-compressed tar archives Strata
// moves around: app source uploads, git trees and droplets.
//
// Extract is the one way untrusted archives are unpacked. It writes only
// through an os.Root opened on the destination, refuses every entry that could
// reach outside it (non-local names, absolute paths, backslashes, escaping
// symlinks and hardlinks), refuses device nodes, FIFOs, sockets and duplicate
// entries, strips setuid, setgid and sticky bits, and enforces Limits on
// bytes, files, depth and compression ratio while streaming.
//
// Pack writes a directory reproducibly (sorted names, zero mtimes and owners),
// optionally skipping paths matched by .stratignore, .cfignore or .gitignore.
//
// archive imports the standard library only.
package archive
