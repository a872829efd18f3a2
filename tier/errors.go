package tier

import "errors"

// Errors returned by Partition methods; ingest maps them to Kafka codes.
var (
	// ErrNotLeader: this node does not (or no longer) lead the partition.
	ErrNotLeader = errors.New("tier: not the partition leader")
	// ErrUnknownPartition: the topic or partition does not exist.
	ErrUnknownPartition = errors.New("tier: unknown topic or partition")
	// ErrOffsetOutOfRange: the offset is below the log start or above the high watermark.
	ErrOffsetOutOfRange = errors.New("tier: offset out of range")
	// ErrClosed: the tier is shutting down.
	ErrClosed = errors.New("tier: closed")
	// ErrRecordTooLarge: one batch is larger than a segment block can hold.
	ErrRecordTooLarge = errors.New("tier: record batch too large")
	// ErrStorage: the durable write failed for a reason other than fencing.
	ErrStorage = errors.New("tier: storage error")
)
