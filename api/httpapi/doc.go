// Package httpapi serves Strata's REST API over HTTP with echo.
//
// It is an adapter: every handler authenticates the caller, calls one of the
// api service interfaces and writes JSON. Error codes are mapped to HTTP
// statuses in exactly one place (status.go); internal errors are logged and
// answered with a generic message. Unknown routes answer a 404 JSON error and
// panics are recovered into 500s.
//
// Endpoints: openapi.json (served at GET /v1/openapi.json) is the one list
// of them, with their parameters, bodies, answers and which need no token;
// TestOpenAPIListsEveryRoute fails when it and the router disagree. Every
// endpoint needs a bearer token except those whose operation has an empty
// "security" list, and /git/*, which authenticates itself.
//
// Push streaming: the upload is consumed by DeployService.Deploy before any
// progress is reported. The response starts (200, application/x-ndjson) with
// the first progress event; each line is flushed. If Deploy fails before any
// event, the answer is an ordinary JSON error with the mapped status.
// Otherwise the stream ends with exactly one "result" or "error" line.
//
// Idempotency: the mutations whose operation in openapi.json takes an
// Idempotency-Key header accept one (TestOpenAPIListsIdempotentOperations
// checks the document against the server). A completed non-5xx response is
// remembered per principal, method, path and key (their SHA-256) for a TTL
// (default 24 h) in Config.Idempotency — in stratad the database, so every
// controller replays the same keys and a restart loses none; a server
// without one keeps an in-memory LRU of 10,000 — and replayed for the same
// key; reusing a key with a different body is refused (invalid), and a key
// whose first request is still running answers conflict (for at most
// IdempotencyPending, default 15 min, should its controller die meanwhile).
//
// A Server is safe for concurrent use.
package httpapi
