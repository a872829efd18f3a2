// Package txn is Strata's transaction coordinator: Kafka's transaction
// protocol (InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, DescribeTransactions, ListTransactions) with its
// state in etcd.
//
// Each transactional id has one key (metadata.TxnState), changed only by
// compare-and-swap, so the coordinator a node is for an id (rendezvous
// hashing over the live nodes, as for groups) holds no state of its own: a
// successor reads the key and carries on. Ending a transaction is three
// steps, each safe to repeat: the state becomes PrepareCommit or
// PrepareAbort; every partition of the transaction gets its marker (a
// control batch, durable through the normal flush) and every group its
// offsets; the state becomes CompleteCommit or CompleteAbort. A coordinator
// that dies between the steps leaves a prepared state that the client's
// retry, or the next coordinator's scan, finishes. The scan also aborts
// transactions past their timeout, under a bumped epoch that fences their
// producer.
//
// Partitions take a transactional batch only once the coordinator's state
// shows the partition in the producer's ongoing transaction (Verify, KIP-890
// part 1), so no transaction is left open in a partition without a marker
// to come. Markers carry the transaction's number, so a late duplicate from
// a coordinator that lost the race never closes a later transaction.
package txn
