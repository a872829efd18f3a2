package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier/objstore"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrUnknownTopic: the topic does not exist.
	ErrUnknownTopic = errors.New("query: unknown topic")
	// ErrUnknownPartition: the topic exists but has no such partition.
	ErrUnknownPartition = errors.New("query: unknown partition")
	// ErrInvalidRange: a Range or request parameter makes no sense (to before
	// from, end time before start time, negative offsets).
	ErrInvalidRange = errors.New("query: invalid range")
	// ErrIndexBehind: the index of this node's metadata cache did not catch up
	// with the partition's high watermark in time, so some durable offsets
	// could not be located. Retrying later succeeds.
	ErrIndexBehind = errors.New("query: index not caught up with the high watermark")
	// ErrStorage: the object store failed or returned data that did not
	// decode.
	ErrStorage = errors.New("query: storage")
)

// Range selects records of one partition. The zero Range selects every
// retained record below the high watermark.
//
// Offsets and times combine: a record is returned when its offset is in
// [From, To) and its timestamp in [StartTime, EndTime). Kafka timestamps need
// not ascend, so the time bounds are applied as a consumer seeking by time
// would: index entries whose newest record is older than StartTime are
// skipped without being read, every record older than StartTime is dropped,
// and the scan stops at the first batch whose first timestamp is at or after
// EndTime (records after it are not examined, even if some are older).
type Range struct {
	// From is the first offset, inclusive; offsets below the log start
	// offset are not retained and are skipped.
	From int64
	// To is the end offset, exclusive; 0 means the high watermark, and an
	// offset beyond the high watermark is clipped to it.
	To int64
	// StartTime is the earliest timestamp, inclusive; zero means no bound.
	StartTime time.Time
	// EndTime is the end timestamp, exclusive; zero means no bound.
	EndTime time.Time
}

// Validate reports a Range that selects nothing by construction.
func (rg Range) Validate() error {
	switch {
	case rg.From < 0:
		return fmt.Errorf("%w: from %d is negative", ErrInvalidRange, rg.From)
	case rg.To < 0:
		return fmt.Errorf("%w: to %d is negative", ErrInvalidRange, rg.To)
	case rg.To > 0 && rg.To <= rg.From:
		return fmt.Errorf("%w: to (%d) must be greater than from (%d)", ErrInvalidRange, rg.To, rg.From)
	case !rg.StartTime.IsZero() && !rg.EndTime.IsZero() && !rg.EndTime.After(rg.StartTime):
		return fmt.Errorf("%w: end time %s must be after start time %s", ErrInvalidRange,
			rg.EndTime.UTC().Format(time.RFC3339Nano), rg.StartTime.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// Bounds is the offset span a scan of one partition covers, resolved against
// the partition's committed state when the scan started.
type Bounds struct {
	// From is the first offset the scan reads (the Range's From raised to
	// the log start offset).
	From int64
	// To is the exclusive end (the Range's To clipped to the high
	// watermark); To <= From means there is nothing to read.
	To int64
	// HighWatermark and LogStartOffset are the partition's state at the
	// start of the scan.
	HighWatermark  int64
	LogStartOffset int64
}

// Reader reads the durable records of any partition straight from the object
// store through the etcd index, so it needs no leadership and serves any
// partition on any node. It is safe for concurrent use; each scan holds one
// index entry's run (a few MiB at most) in memory at a time.
type Reader struct {
	meta   *metadata.Store
	bucket objstore.BucketReader
	logger *slog.Logger
}

// New returns a Reader over meta's index and the objects in bucket. A nil
// logger discards.
func New(meta *metadata.Store, bucket objstore.BucketReader, logger *slog.Logger) *Reader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{meta: meta, bucket: bucket, logger: logger}
}

// Topic returns the named topic from the metadata cache, or an error wrapping
// ErrUnknownTopic.
func (r *Reader) Topic(name string) (metadata.Topic, error) {
	t, ok := r.meta.Topic(name)
	if !ok {
		return metadata.Topic{}, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return t, nil
}

// Topics returns every topic, sorted by name.
func (r *Reader) Topics() []metadata.Topic { return r.meta.Topics() }

// Resolve reads tp's committed state and returns the offsets a scan of rg
// would cover. It does not read the object store.
func (r *Reader) Resolve(ctx context.Context, tp metadata.TP, rg Range) (Bounds, error) {
	if err := rg.Validate(); err != nil {
		return Bounds{}, err
	}
	t, err := r.Topic(tp.Topic)
	if err != nil {
		return Bounds{}, err
	}
	if tp.Partition < 0 || tp.Partition >= t.Partitions {
		return Bounds{}, fmt.Errorf("%w: topic %q has %d partitions, no partition %d", ErrUnknownPartition, tp.Topic, t.Partitions, tp.Partition)
	}
	st, err := r.meta.PartitionState(ctx, tp)
	if err != nil {
		if errors.Is(err, metadata.ErrUnknownTopic) {
			return Bounds{}, fmt.Errorf("%w: %q", ErrUnknownTopic, tp.Topic)
		}
		return Bounds{}, fmt.Errorf("query: state of %s/%d: %w", tp.Topic, tp.Partition, err)
	}
	// Committed data only: a scan stops at the last stable offset (the
	// first offset of the oldest transaction still open), as a
	// read_committed consumer does.
	b := Bounds{From: max(rg.From, st.LogStartOffset), To: st.StableOffset, HighWatermark: st.DurableOffset, LogStartOffset: st.LogStartOffset}
	if rg.To > 0 && rg.To < b.To {
		b.To = rg.To
	}
	return b, nil
}

// Scan calls fn with every record of tp selected by rg, in offset order,
// and returns the bounds it resolved. The record and the bytes it points to
// are valid only during the call: fn must copy what it keeps. Only committed
// data is read, as a read_committed consumer reads it: up to the last stable
// offset, without aborted transactions' records (from the partition's
// aborted-transaction index) or control batches (transaction markers). An error from fn stops the scan
// and is returned as is; so is ctx's error.
func (r *Reader) Scan(ctx context.Context, tp metadata.TP, rg Range, fn func(rec *kbatch.Record) error) (Bounds, error) {
	b, err := r.Resolve(ctx, tp, rg)
	if err != nil {
		return b, err
	}
	var startMs, endMs int64 = 0, 0
	hasStart, hasEnd := !rg.StartTime.IsZero(), !rg.EndTime.IsZero()
	if hasStart {
		startMs = rg.StartTime.UnixMilli()
	}
	if hasEnd {
		endMs = rg.EndTime.UnixMilli()
	}

	aborted, err := r.meta.AbortedTxns(ctx, tp, b.From)
	if err != nil {
		return b, fmt.Errorf("query: aborted transactions of %s/%d: %w", tp.Topic, tp.Partition, err)
	}
	isAborted := func(h kbatch.Header) bool {
		if !h.IsTransactional() {
			return false
		}
		for _, a := range aborted {
			if a.ProducerID == h.ProducerID && h.BaseOffset >= a.First && h.BaseOffset < a.Last {
				return true
			}
		}
		return false
	}

	var buf []byte // decompressed batches of the current block, reused
	cur, end := b.From, b.To
	missing := 0 // consecutive object-not-found answers at cur
	for cur < end {
		if err := ctx.Err(); err != nil {
			return b, err
		}
		e, from, ok, err := r.entryAt(ctx, tp, cur, end)
		if err != nil {
			return b, err
		}
		if !ok {
			break // retention removed the rest of the range meanwhile
		}
		cur = from
		if hasStart && e.MaxTimestamp < startMs {
			cur = e.LastOffset + 1
			continue
		}
		run, err := r.bucket.GetRange(ctx, e.Object, e.Position, e.Size)
		if errors.Is(err, objstore.ErrNotFound) && missing < 3 {
			// A roll replaced this entry (or retention deleted it) and the
			// object was swept after our index snapshot: look again.
			missing++
			r.logger.Debug("query: indexed object gone, rereading the index", "topic", tp.Topic, "partition", tp.Partition, "object", e.Object, "offset", cur)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return b, ctx.Err()
			}
			return b, fmt.Errorf("%w: get %s: %w", ErrStorage, e.Object, err)
		}
		missing = 0
		stop := false
		walk := func(h kbatch.Header, batch []byte) error {
			if h.LastOffset() < cur {
				return nil
			}
			if h.BaseOffset >= end {
				stop = true
				return errStop
			}
			if hasEnd && h.BaseTimestamp >= endMs && !h.LogAppendTime() || hasEnd && h.LogAppendTime() && h.MaxTimestamp >= endMs {
				stop = true
				return errStop
			}
			if h.IsControl() || isAborted(h) {
				return nil
			}
			if hasStart && h.MaxTimestamp < startMs {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			recs, err := kbatch.Records(batch)
			if err != nil {
				return fmt.Errorf("%w: %s: batch at offset %d: %w", ErrStorage, e.Object, h.BaseOffset, err)
			}
			for i := range recs {
				rec := &recs[i]
				if rec.Offset < cur || rec.Offset >= end {
					continue
				}
				if hasStart && rec.Timestamp < startMs || hasEnd && rec.Timestamp >= endMs {
					continue
				}
				if err := fn(rec); err != nil {
					return err
				}
			}
			return nil
		}
		// Block by block: an uncompressed block's batches are read where
		// they lie in run (no copy), and blocks wholly before cur are
		// skipped without being checked or decompressed.
		if len(run) == 0 {
			return b, fmt.Errorf("%w: %s: empty run", ErrStorage, e.Object)
		}
		for pos, prevLast := 0, int64(-1); pos < len(run) && !stop; {
			meta, n, err := segment.PeekBlock(run[pos:])
			if err == nil && pos > 0 && meta.BaseOffset <= prevLast {
				err = fmt.Errorf("block at offset %d after offset %d: %w", meta.BaseOffset, prevLast, segment.ErrOffsetOrder)
			}
			if err != nil {
				return b, fmt.Errorf("%w: %s: block at byte %d: %w", ErrStorage, e.Object, pos, err)
			}
			block := run[pos : pos+n]
			at := pos
			pos, prevLast = pos+n, meta.LastOffset
			if meta.LastOffset < cur {
				continue
			}
			if meta.BaseOffset >= end {
				stop = true
				break
			}
			var batches []byte
			if _, raw := segment.RawBlockPayload(block); raw {
				_, batches, _, err = segment.DecodeBlockShared(block)
			} else {
				_, buf, _, err = segment.DecodeBlock(buf[:0], block)
				batches = buf
			}
			if err != nil {
				return b, fmt.Errorf("%w: %s: block at byte %d: %w", ErrStorage, e.Object, at, err)
			}
			err = kbatch.IterateStored(batches, walk)
			if err != nil && !errors.Is(err, errStop) {
				var ke *kbatch.Error
				if errors.As(err, &ke) {
					return b, fmt.Errorf("%w: %s: %w", ErrStorage, e.Object, err)
				}
				return b, err
			}
		}
		if stop {
			break
		}
		cur = e.LastOffset + 1
	}
	return b, nil
}

// errStop ends a kbatch.Iterate walk early without an error.
var errStop = errors.New("query: stop")

// entryAt returns the index entry holding offset cur (cur < end <= the high
// watermark) and the offset to read from, which is past cur when retention
// removed cur after the scan began; ok is false when retention removed
// everything below end. metadata.Store.EntryAt is the one index lookup the
// broker's Fetch and this reader share: it reads etcd when this node's
// cache has not learnt an entry yet, and never answers with a later one.
func (r *Reader) entryAt(ctx context.Context, tp metadata.TP, cur, end int64) (e metadata.IndexEntry, from int64, ok bool, err error) {
	e, from, ok, err = r.meta.EntryAt(ctx, tp, cur, end)
	if errors.Is(err, metadata.ErrIndexBehind) {
		return e, from, false, fmt.Errorf("%w: %w", ErrIndexBehind, err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return e, from, false, ctx.Err()
		}
		return e, from, false, fmt.Errorf("query: index of %s/%d at %d: %w", tp.Topic, tp.Partition, cur, err)
	}
	return e, from, ok, nil
}
