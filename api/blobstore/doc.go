// Package blobstore stores content-addressed blobs (source archives,
// droplets) as files in a directory; FS implements api.BlobStore.
//
// A blob with reference "sha256:<digest>" lives at
// <dir>/sha256/<digest[:2]>/<digest>. Put streams the content into a
// temporary file under <dir>/tmp (same file system) while hashing it,
// fsyncs it, and renames it into place atomically, then fsyncs the
// directory: a blob is either absent or complete, and readers never see a
// partial file. Concurrent Puts of the same content are safe (the rename
// is atomic and the content identical). References are validated with
// api.BlobRef.Valid before any path is built from them, so no input can
// name a file outside the store.
//
// FS is safe for concurrent use, also by several processes sharing dir.
package blobstore
