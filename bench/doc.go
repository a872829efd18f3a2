// Package bench is Strata's benchmark harness: it starts real nodes in this
// process (through cmd/node) on a shared embedded etcd and a shared object
// store (the filesystem store or a real MinIO process), drives them with the
// franz-go client, and measures produce throughput and acks=all latency, hot
// and cold consume throughput, and what the run cost in object-store
// requests and etcd keys.
//
// Every measurement doubles as a correctness check: a Ledger records where
// the broker put each acknowledged record, and every consume pass must see
// each of them exactly once, at that partition and offset, with the same
// bytes, and nothing else. A run that fails the check is an error, not a
// number.
//
// The package owns the scenarios (Run, Produce, Consume), the process-level
// setup they need (StartCluster, StartMinIO), the /metrics parser and the
// reports. It must never change what it measures: it configures nodes only
// through node.Config, talks to them only over the Kafka protocol and
// /metrics, and reads etcd only to count keys. Every loop is bounded by a
// record count and a time limit, and every server listens on 127.0.0.1.
package bench
