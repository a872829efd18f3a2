// Package tier owns this node's partitions between the Kafka protocol and
// durable storage: the hot tier (one local segment file per partition, the
// write buffer and read cache), the flusher (one object per flush holding every
// partition's unflushed blocks, then one guarded etcd commit), and reads from
// either tier.
//
// The invariants it keeps (see ARCHITECTURE.md):
//   - An Append's wait returns nil only after its block is in the object store
//     and its index entry and new high watermark are committed in etcd.
//   - Reads never return data at or above the high watermark.
//   - Local data is a cache: on open, a partition trusts only what etcd says
//     is durable, and serves the rest from the object store.
//
// It must never decide leadership by itself (metadata does), never parse
// Kafka requests (ingest does), and never hold the partition lock across
// object-store or etcd calls.
package tier
