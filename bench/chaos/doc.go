// Package chaos is Strata's fault-schedule checker, in the manner of
// Jepsen: it runs a real cluster as separate processes on 127.0.0.1 (an
// etcd server, a MinIO server and three `strata serve` nodes), drives it
// with franz-go clients, applies a random but seeded schedule of faults,
// heals them, and then checks what the clients saw against Strata's
// guarantees.
//
// Each node reaches etcd and MinIO through TCP fault proxies of its own
// (Proxy: pass, cut, blackhole, delay), and MinIO sits behind an HTTP proxy
// that can make PUTs slow and failing (PutFaults), so a fault can isolate
// one node from one dependency while clients still reach the node. The
// faults (Kinds): kill -9 and restart a node (on its data folder or an
// empty one), SIGSTOP a node past its lease TTL, cut or slow one node's
// etcd link, cut one node's MinIO link, restart etcd, SIGSTOP MinIO, slow
// and failing PUTs, CreatePartitions and DeleteRecords under load. Plan
// draws the schedule from the seed (math/rand/v2 PCG), so a seed replays
// the same schedule (the interleavings with the load differ run to run).
//
// The load (Load): idempotent acks=all producers writing unique values to
// every partition of one topic at a fixed rate, an acks=1 producer on a
// second topic, direct consumers, a consumer group that commits, and a
// poller of the group's committed offsets. A Recorder keeps every
// acknowledgement and every record each reader received. At the end
// (every fault healed) a probe produces and fetches one record per
// partition, a fresh consumer reads every partition from its log start to
// its high watermark, and check looks for: acknowledged acks=all records
// lost, duplicated, reordered or misplaced; two values at one offset
// (across all readers and acknowledgements); a reader skipping live
// offsets (offsets are dense in Strata, so only a DeleteRecords point may
// be jumped); records below a DeleteRecords point still served; committed
// offsets moving backwards; kgo data-loss reports; and partitions that do
// not serve again within the lease TTL plus a slack after a fault heals.
// acks=1 losses are counted, not violations.
//
// Run returns a Report (Markdown) whose Violations carry the evidence, or
// a *HarnessError when the checker itself could not do its job; the two
// are never confused. Every process is started in its own process group
// with Pdeathsig, every loop is bounded, every server listens on
// 127.0.0.1. The command is bench/cmd/strata-chaos.
package chaos
