// Package group is Strata's group coordinator: the classic Kafka group
// membership protocol (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), KIP-848 consumer groups (ConsumerGroupHeartbeat,
// ConsumerGroupDescribe: consumer.go, with classic members in the same
// group in consumer_classic.go), share-group membership (KIP-932:
// ShareGroupHeartbeat, ShareGroupDescribe: share.go; the records' delivery
// state is kept by the partitions' leaders, package ingest/share) and
// committed offsets (OffsetCommit, OffsetFetch, OffsetDelete), plus the
// group admin calls (ListGroups, DescribeGroups, DeleteGroups).
//
// A KIP-848 group's whole state (epochs, target assignment, members and
// what each owns) is stored in etcd at every change before the answer, so
// a coordinator that takes the group over carries on with the same epochs.
//
// It owns every group's membership state, in memory: the Kafka group state
// machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead),
// generations, the leader, static members, session, rebalance and
// pending-sync timeouts. The broker is assignor-agnostic: it picks the
// protocol every member supports, hands the leader all members' metadata
// and passes the leader's assignments on as opaque bytes, so range,
// roundrobin, sticky and cooperative-sticky all work.
//
// Committed offsets are stored through the Store interface (etcd, via
// metadata.Store) before a commit is acknowledged, and cached per group.
// Classic and share membership is not persisted: after a restart, members learn through
// UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION that they must join again, and
// resume from their committed offsets.
//
// A single node is the coordinator of every group. The package must never
// read or write records, touch the object store, or decode assignments
// beyond what OffsetDelete needs (the topics a consumer-protocol member is
// subscribed to). Its only goroutines are timers, all stopped by Close.
package group
