package metadata

// This file is the contract the rest of Strata codes against: the types,
// errors and configuration. The Store's methods live in files named for what
// they touch: store.go (Open, Close, lease, watch), nodes.go, topics.go,
// partitions.go (leadership, state, commits), index.go, groups.go; the
// embedded etcd server is in embedded.go and the key layout in keys.go and
// KEYS.md. Signatures and doc comments are fixed (change them only together
// with their callers).

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	ErrTopicExists   = errors.New("metadata: topic already exists")
	ErrUnknownTopic  = errors.New("metadata: unknown topic")
	ErrFenced        = errors.New("metadata: leader epoch fenced")
	ErrNotLeader     = errors.New("metadata: not the partition leader")
	ErrInvalidConfig = errors.New("metadata: invalid config")
	// ErrInvalidTopic: the topic name is not a legal Kafka topic name
	// (1..249 characters of [a-zA-Z0-9._-], not "." or "..").
	ErrInvalidTopic = errors.New("metadata: invalid topic name")
	// ErrInvalidCommit: a PartitionCommit is malformed (negative or inverted
	// offsets, DurableOffset != Entry.LastOffset+1). Nothing was written; it
	// is a caller bug, retrying the same commit fails the same way.
	ErrInvalidCommit = errors.New("metadata: invalid commit")
	// ErrOffsetOutOfRange: SetLogStartOffset was asked for an offset beyond
	// the partition's durable offset.
	ErrOffsetOutOfRange = errors.New("metadata: offset beyond the durable offset")
	// ErrNodeIDInUse: another live node is registered under the same node
	// id (RegisterNode).
	ErrNodeIDInUse = errors.New("metadata: node id in use")
	// ErrIndexBehind: etcd holds no index entry for an offset below the
	// durable offset the caller saw (EntryAt). Retrying later succeeds.
	ErrIndexBehind = errors.New("metadata: no index entry for a durable offset")
)

// Config says where etcd is and under which prefix this cluster lives.
type Config struct {
	Endpoints   []string      // etcd client URLs, e.g. http://127.0.0.1:2379
	Cluster     string        // key prefix: every key lives under "/<Cluster>/"
	DialTimeout time.Duration // 0 means 5s
	// TLS is the client TLS configuration for https:// endpoints (CA,
	// client certificate); nil uses the system's CAs.
	TLS *tls.Config
	// LeaseTTL is the node lease's time to live; 0 means 10s. etcd counts
	// it in whole seconds (rounded up) and raises it to its own minimum.
	LeaseTTL time.Duration
	// RequestTimeout bounds each etcd request a Store method makes, so a
	// hung etcd turns into an error instead of a hung caller; 0 means 5s.
	// The caller's ctx still applies when shorter.
	RequestTimeout time.Duration
	// MaxTxnOps is the etcd server's --max-txn-ops: CommitFlush never puts
	// more operations than this into one transaction list. 0 means 128,
	// etcd's default (an external etcd); the embedded server allows 4096.
	MaxTxnOps int
}

// TopicID is a topic's UUID, fixed at creation, never reused.
type TopicID [16]byte

// String returns the ID as 32 lower-case hex digits, the form used in etcd
// keys and logs.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// ParseTopicID parses the 32-hex-digit form String returns.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	if len(s) != 2*len(id) {
		return TopicID{}, errors.New("metadata: topic id is not 32 hex digits")
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return TopicID{}, errors.New("metadata: topic id is not 32 hex digits")
	}
	return id, nil
}

// Topic is one topic's metadata.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string // only explicitly set configs
	Created    time.Time
}

// TP names one partition.
type TP struct {
	Topic     string
	Partition int32
}

// Node is a registered, live Strata node.
type Node struct {
	ID   int32
	Host string
	Port int32
	// HTTP is the node's HTTP address (metrics, the Arrow API, the web
	// console) as other nodes and browsers reach it, "" when it has none.
	// The console asks each node for the partitions it leads there.
	HTTP string
	// Listeners are the node's Kafka listeners and their advertised
	// addresses, "NAME://host:port,NAME2://host:port"; "" for a node with
	// one listener at Host:Port.
	Listeners string
}

// Leadership is a node's claim on one partition. Revision is the etcd
// ModRevision of the leader key written by AcquireLeadership; every commit is
// conditional on it, so a deposed leader's commit fails (ErrFenced).
type Leadership struct {
	TP       TP
	TopicID  TopicID
	NodeID   int32
	Epoch    int32
	Revision int64
}

// PartitionState is the durable state of a partition as committed in etcd.
type PartitionState struct {
	// DurableOffset is the high watermark: every offset below it is in the
	// object store and indexed.
	DurableOffset int64
	// LogStartOffset is the first offset still retained.
	LogStartOffset int64
	// LeaderEpoch is the epoch of the leader that last committed.
	LeaderEpoch int32
	// Producers is the idempotent-producer state an older Strata kept in
	// the state key (a JSON object: producer id → state); nil if none.
	// Today's state is in per-producer keys (PartitionProducers); a leader
	// moves this one there (MigrateProducers).
	Producers []byte
	// StableOffset is the last stable offset as of the last commit: the
	// first offset of the oldest transaction still open then, else
	// DurableOffset. Readers of committed data stop there.
	StableOffset int64
}

// IndexEntry points at a run of segment blocks of one partition inside one
// object. Offsets are inclusive: the run holds every offset in
// [BaseOffset, LastOffset].
type IndexEntry struct {
	BaseOffset   int64  `json:"base"`
	LastOffset   int64  `json:"last"`
	MaxTimestamp int64  `json:"max_ts"`
	Object       string `json:"object"` // object-store key
	Position     int64  `json:"pos"`    // byte offset of the run inside the object
	Size         int64  `json:"size"`   // byte length of the run
	Records      int64  `json:"records"`
}

// PartitionCommit is one partition's share of a flush commit.
type PartitionCommit struct {
	Leadership Leadership
	Entry      IndexEntry
	// DurableOffset is the new high watermark, Entry.LastOffset+1.
	DurableOffset int64
	// Producers is the state of the idempotent producers that changed, as
	// of this commit: a JSON object from producer id (decimal string) to
	// that producer's state (any JSON value, opaque to metadata), at most
	// MaxCommitProducers of them. Each goes to its own key; the others keep
	// theirs.
	Producers []byte
	// StableOffset, when set, is the last stable offset as of this commit
	// (below DurableOffset while a transaction is open); nil means
	// DurableOffset.
	StableOffset *int64
	// Aborted is the transactions whose abort marker this commit makes
	// durable; each gets a key in the partition's aborted-transaction
	// index, in the same etcd transaction. Each costs one operation of
	// the MaxCommitProducers budget.
	Aborted []AbortedTxn
}
