// Package droplet reads and writes droplets: gzip-compressed tars holding
// staging.json (an api.StagingInfo) at the root and the built app under app/.
// Droplets are written with gzip.BestSpeed because push-to-live time matters
// more than a few megabytes, and read back through archive.Extract, so a
// droplet is as untrusted as any upload.
package droplet
