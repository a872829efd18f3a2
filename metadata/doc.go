// Package metadata owns everything Strata keeps in etcd: the node registry
// (keys bound to each node's lease), topics and their configs, partition
// leadership and leader epochs, the per-partition segment index, durable
// offsets (high watermarks) and log start offsets. It also runs the embedded
// etcd server of the single-binary default.
//
// A Store serves reads (topics, nodes, leaders, index entries) from an
// in-memory cache fed by one etcd watch of the cluster prefix, and makes
// every write a conditional etcd transaction: a leader's writes are
// conditional on its leader key's revision, so a deposed leader can never
// commit (invariant 6, fencing). KEYS.md documents the key layout and each
// transaction.
//
// This package must never: write outside its cluster prefix, acknowledge a
// commit etcd has not confirmed, move a durable offset, log start offset or
// leader epoch backwards, trust a value read from etcd without validating it
// (bad values are logged and skipped, never a panic), or touch the object
// store (the objects the index points at belong to the tier).
package metadata
