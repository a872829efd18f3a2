// Package node wires one Strata node: metadata (embedded or external etcd),
// object store, hot tier and flusher, the Kafka listener, and the HTTP
// metrics and health endpoints. It owns start-up order and graceful shutdown
// and holds no logic of its own: it must never reach into a package's
// internals to make something work.
package node
