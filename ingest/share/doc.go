// Package share keeps the delivery state of share-group partitions (KIP-932)
// on the partition's leader: which records of the partition a share group
// has acknowledged, archived, or handed out under an acquisition lock, and
// how often each was delivered.
//
// A share partition is a window [start, end) of offsets over the partition's
// log. Below start every record is done (acknowledged or archived); inside
// the window each record is available, acquired by one member until its lock
// expires, acknowledged or archived; from end on nothing was delivered yet.
// Acquiring reads the log from the first available offset and hands out
// whole batches; a record delivered share.delivery.count.limit times is
// archived instead of being delivered again.
//
// Every change is written to etcd (metadata.AppendShareDelta) before the
// client hears of it: a delta with the window's bounds and the runs of
// records that changed, folded into a snapshot every SnapshotEvery deltas.
// Acquisitions are stored as "available, delivery count n", so a leader that
// dies with records acquired makes them available again on the next leader,
// counted; an acknowledgement is never lost once answered. Writes compare
// the partition's leadership and the snapshot revision, so a deposed leader
// or a state reset by an admin fails the write, and the state is loaded
// afresh.
//
// Share sessions (the ShareFetch session epochs) are kept here too, per
// group and member, on the node that serves them.
package share
