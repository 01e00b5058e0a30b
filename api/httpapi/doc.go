// Package httpapi serves Strata's REST API over HTTP with echo.
//
// It is an adapter: every handler authenticates the caller, calls one of the
// api service interfaces and writes JSON. Error codes are mapped to HTTP
// statuses in exactly one place (status.go); internal errors are logged and
// answered with a generic message. Unknown routes answer a 404 JSON error and
// panics are recovered into 500s.
//
// Endpoints (bearer-token auth except /v1/info, /v1/openapi.json and /git/*,
// which authenticates itself):
//
//	GET    /v1/info                  api.Info
//	GET    /v1/whoami                api.Principal
//	GET    /v1/apps                  {"items":[api.AppSummary],"next_cursor":""}  (?limit=&cursor=)
//	POST   /v1/apps                  {"name":…} → 201 api.App
//	GET    /v1/apps/:name            api.AppDetail
//	DELETE /v1/apps/:name            204
//	POST   /v1/apps/:name/push       gzip tar body → NDJSON stream of deploy events
//	GET    /v1/apps/:name/logs       {"items":[api.LogEnvelope]}, or SSE with ?follow=true
//	GET    /v1/apps/:name/releases   {"items":[api.Release]} newest first
//	POST   /v1/apps/:name/rollback   {"version":N} (0/absent = previous different release) → 201 api.Release
//	GET    /v1/apps/:name/env        {"env":{…}}
//	PATCH  /v1/apps/:name/env        api.EnvChange → api.Release
//	POST   /v1/apps/:name/scale      api.ScaleRequest → api.ScaleResult
//	POST   /v1/apps/:name/start      → api.App (also /stop)
//	POST   /v1/apps/:name/restart    → 201 api.Release (rolling restart)
//	GET    /v1/apps/:name/events     {"items":[api.Event]} newest first
//	GET    /v1/blobs/:ref            blob bytes (admin)
//	POST   /v1/blobs                 {"ref":…} (admin)
//	GET    /v1/nodes                 {"items":[api.Node]} (admin; only if Services.Nodes is set)
//	GET    /v1/certificates          {"items":[api.Certificate]} (admin; never private keys)
//	POST   /v1/certificates          api.CertificateUpload → 201 api.Certificate (admin)
//	DELETE /v1/certificates/:name    204 (admin)
//	GET    /v1/router/certificates   {"items":[api.CertificateKeyPair]} (admin; with keys, for routers)
//	GET    /v1/openapi.json          the OpenAPI 3 document of the above
//
// Push streaming: the upload is consumed by DeployService.Deploy before any
// progress is reported. The response starts (200, application/x-ndjson) with
// the first progress event; each line is flushed. If Deploy fails before any
// event, the answer is an ordinary JSON error with the mapped status.
// Otherwise the stream ends with exactly one "result" or "error" line.
//
// Idempotency: POST /v1/apps, DELETE /v1/apps/:name, POST /v1/blobs and the
// lifecycle mutations (rollback, env, scale, start, stop, restart) accept
// an Idempotency-Key header. A completed non-5xx response is remembered per
// principal, method, path and key in an in-memory LRU with a TTL (default 24 h,
// 10,000 entries) and replayed for the same key; reusing a key with a
// different body is refused (invalid), and a key whose first request is still
// running answers conflict. The cache is per process and lost on restart: it
// protects against client retries, not against controller crashes.
//
// A Server is safe for concurrent use.
package httpapi
