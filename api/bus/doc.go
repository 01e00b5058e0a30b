// Package bus is the only package that imports NATS. It starts the embedded
// nats-server (JetStream on, stored in the data dir) and gives the rest of
// Strata typed JSON publish, subscribe, request/reply and a durable work queue.
//
// NATS is never the system of record: desired state lives in the SQL
// database and anything lost on the bus is repaired by convergence.
package bus
