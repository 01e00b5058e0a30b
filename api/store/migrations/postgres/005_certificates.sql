-- TLS certificates uploaded through the API, served by routers chosen by SNI.
-- dns_names is a JSON array of strings as text; chain_pem is the PEM chain
-- (leaf first); sealed_key is the PEM private key sealed with AES-256-GCM by
-- the controller under the key in its secret key file (never plaintext).

CREATE TABLE certificates (
    name        TEXT PRIMARY KEY,
    dns_names   TEXT NOT NULL DEFAULT '[]',
    issuer      TEXT NOT NULL DEFAULT '',
    not_before  TIMESTAMPTZ NOT NULL,
    not_after   TIMESTAMPTZ NOT NULL,
    fingerprint TEXT NOT NULL,
    chain_pem   TEXT NOT NULL,
    sealed_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
