package tier

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
)

// ReadResult is what Read returns.
type ReadResult struct {
	Batches        []byte // whole record batches, as produced (offsets rewritten)
	HighWatermark  int64
	LogStartOffset int64
	// LastStableOffset is the partition's LSO when read.
	LastStableOffset int64
	// Aborted is, for a committed read, the aborted transactions in the
	// range of Batches (Kafka's AbortedTransactions).
	Aborted []metadata.AbortedTxn
}

// span is a run of durable offsets [base, last] that can be loaded as
// decompressed record batches: one local block or one indexed object run.
type span struct {
	base, last, maxTS int64
	local             bool
	load              func(ctx context.Context) ([]byte, error)
}

// view is a reader's snapshot of a partition: its bounds and the local
// segments it holds (released by release).
type view struct {
	p        *Partition
	hw       int64
	lso      int64
	logStart int64
	// compactedTo: offsets below it are read from the index (compacted
	// objects), never from local segments.
	compactedTo int64
	segs        []*localSeg
	refs        [][]segment.BlockRef // per seg, the prefix visible at snapshot time
}

func (p *Partition) view() (*view, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		if errors.Is(p.err, ErrClosed) {
			return nil, ErrClosed
		}
		return nil, ErrNotLeader
	}
	if !p.t.meta.LeaderValid(p.lead) {
		// The lease this leadership hangs on is not certainly alive: another
		// node may have taken over, and p.hw may be stale.
		return nil, ErrNotLeader
	}
	v := &view{p: p, hw: p.hw, lso: p.lsoLocked(), logStart: p.logStart, compactedTo: p.compactedTo}
	for _, s := range p.segs {
		s.users++
		v.segs = append(v.segs, s)
		v.refs = append(v.refs, s.refs)
	}
	return v, nil
}

func (v *view) release() {
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	for _, s := range v.segs {
		s.users--
		if s.removed && s.users == 0 {
			s.rf.Close()
		}
	}
}

// next returns the span holding offset cur and the offset to read from:
// cur itself, or the log start when retention removed cur meanwhile. ok is
// false when no durable data is at or after cur. A span never starts after
// cur unless the offsets in between are below the log start: a reader that
// jumped ahead would make its consumer skip records.
func (v *view) next(ctx context.Context, cur int64) (sp span, from int64, ok bool, err error) {
	// The hot tier holds a suffix of the log; anything before it comes from
	// the object store through the index, and so does what compaction has
	// rewritten there.
	for i, s := range v.segs {
		if cur < v.compactedTo {
			break
		}
		refs := v.refs[i]
		if len(refs) == 0 || refs[len(refs)-1].LastOffset < cur {
			continue
		}
		j, ok := segment.Find(refs, cur)
		if !ok {
			continue
		}
		ref := refs[j]
		if ref.BaseOffset >= v.hw {
			return span{}, cur, false, nil
		}
		if ref.BaseOffset > cur {
			// Not held locally (before the hot tier, or in a gap): the
			// index has it. Never skip ahead to the next local block.
			break
		}
		seg := s
		dc := v.p.t.decoded
		key := localSpanKey(seg.path, ref.Pos, v.p.lead.Epoch)
		return span{
			base: ref.BaseOffset, last: ref.LastOffset, maxTS: ref.MaxTimestamp, local: true,
			load: func(context.Context) ([]byte, error) {
				if b, ok := dc.get(key); ok {
					return b, nil
				}
				buf := make([]byte, ref.Size)
				if _, err := seg.rf.ReadAt(buf, ref.Pos); err != nil {
					return nil, fmt.Errorf("%w: read local segment: %w", ErrStorage, err)
				}
				// A raw block's batches are served from buf itself.
				_, batches, _, err := segment.DecodeBlockShared(buf)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrStorage, err)
				}
				dc.put(key, batches)
				return batches, nil
			},
		}, cur, true, nil
	}
	if cur >= v.hw {
		return span{}, cur, false, nil
	}
	// The cache answers if it holds cur; otherwise (this node's watch lags
	// the commits of a leader before it) etcd is read.
	e, from, ok, err := v.p.t.meta.EntryAt(ctx, v.p.tp, cur, v.hw)
	if err != nil {
		return span{}, cur, false, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if !ok {
		return span{}, from, false, nil
	}
	t := v.p.t
	return span{
		base: e.BaseOffset, last: e.LastOffset, maxTS: e.MaxTimestamp,
		load: func(ctx context.Context) ([]byte, error) {
			// A reader of cold data usually wants the next runs too: keep
			// readAheadRuns of them on their way, so a consumer reading
			// from the object store waits for one GET's latency, not one
			// per run.
			next := e.LastOffset + 1
			for i, nx := range t.meta.IndexEntries(v.p.tp, next) {
				if i >= readAheadRuns || nx.BaseOffset != next || nx.BaseOffset >= v.hw {
					break
				}
				t.cache.prefetch(nx, t.readAhead)
				next = nx.LastOffset + 1
			}
			key := runKey(e)
			if b, ok := t.decoded.get(key); ok {
				return b, nil
			}
			data, err := t.cache.get(ctx, e)
			if err != nil {
				return nil, fmt.Errorf("%w: get %s: %w", ErrStorage, e.Object, err)
			}
			batches, _, err := segment.DecodeRun(nil, data)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrStorage, e.Object, err)
			}
			t.decoded.put(key, batches)
			return batches, nil
		},
	}, from, true, nil
}

// Read returns whole batches starting with the one containing offset, all
// below the high watermark, up to maxBytes in total; if minOne, the first
// batch is returned even when larger than maxBytes. offset == high watermark
// returns no batches; offset outside [LogStartOffset, HighWatermark] returns
// ErrOffsetOutOfRange.
func (p *Partition) Read(ctx context.Context, offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	return p.ReadIsolated(ctx, offset, maxBytes, minOne, false)
}

// ReadIsolated is Read at an isolation level: committed (read_committed)
// stops at the last stable offset instead of the high watermark, and
// reports the aborted transactions in the range read.
func (p *Partition) ReadIsolated(ctx context.Context, offset int64, maxBytes int, minOne, committed bool) (res ReadResult, err error) {
	v, err := p.view()
	if err != nil {
		return ReadResult{}, err
	}
	defer v.release()
	res = ReadResult{HighWatermark: v.hw, LogStartOffset: v.logStart, LastStableOffset: v.lso}
	if offset < v.logStart || offset > v.hw {
		return res, ErrOffsetOutOfRange
	}
	limit := v.hw
	end := offset // after the last batch read
	if committed {
		limit = v.lso
		defer func() {
			if end > offset && err == nil {
				res.Aborted = p.AbortedTxns(offset, end)
			}
		}()
	}
	cur := offset
	full := false
	// A read that has maxBytes already takes nothing more: it stops before
	// loading (and, cold, fetching) a span whose batches it would drop.
	for cur < limit && !full && (len(res.Batches) == 0 || len(res.Batches) < maxBytes) {
		sp, from, ok, err := v.next(ctx, cur)
		if err != nil {
			if len(res.Batches) > 0 {
				break // return what we have; the next fetch retries
			}
			return res, err
		}
		if from > cur {
			// Retention moved the log start past cur while we read.
			if len(res.Batches) > 0 {
				break
			}
			res.LogStartOffset = from
			return res, ErrOffsetOutOfRange
		}
		if !ok {
			break
		}
		batches, err := sp.load(ctx)
		if err != nil {
			if len(res.Batches) > 0 {
				break // return what we have; the next fetch retries
			}
			return res, err
		}
		if sp.local {
			p.t.metrics.readBytes.WithLabelValues("local").Add(float64(len(batches)))
		} else {
			p.t.metrics.readBytes.WithLabelValues("object").Add(float64(len(batches)))
		}
		err = kbatch.IterateStored(batches, func(h kbatch.Header, b []byte) error {
			if h.LastOffset() < cur || h.BaseOffset >= limit {
				return nil
			}
			if len(res.Batches)+len(b) > maxBytes && !(minOne && len(res.Batches) == 0) {
				full = true
				return errStop
			}
			res.Batches = append(res.Batches, b...)
			end = h.LastOffset() + 1
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return res, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		cur = sp.last + 1
	}
	return res, nil
}

var errStop = errors.New("stop")

// readAheadRuns is how many runs after the one being read a cold read
// prefetches (each at most rollChunkBytes); readAheadGets bounds the
// prefetches under way on a node.
const (
	readAheadRuns = 2
	readAheadGets = 16
)

// OffsetForTimestamp returns the first offset whose record timestamp is >= ts
// and that record's timestamp; found is false when no such durable record exists.
func (p *Partition) OffsetForTimestamp(ctx context.Context, ts int64) (offset, timestamp int64, found bool, err error) {
	v, err := p.view()
	if err != nil {
		return 0, 0, false, err
	}
	defer v.release()
	cur := v.logStart
	for cur < v.hw {
		sp, from, ok, err := v.next(ctx, cur)
		if err != nil {
			return 0, 0, false, err
		}
		if !ok {
			break
		}
		cur = max(from, sp.last+1)
		if sp.maxTS < ts {
			continue
		}
		batches, err := sp.load(ctx)
		if err != nil {
			return 0, 0, false, err
		}
		err = kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
			if h.MaxTimestamp < ts || h.BaseOffset >= v.hw {
				return nil
			}
			recs, err := kbatch.Records(b)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Offset >= v.logStart && r.Timestamp >= ts {
					offset, timestamp, found = r.Offset, r.Timestamp, true
					return errStop
				}
			}
			return nil
		})
		if found {
			return offset, timestamp, true, nil
		}
		if err != nil {
			return 0, 0, false, fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
	return 0, 0, false, nil
}

// MaxTimestampOffset answers ListOffsets' MAX_TIMESTAMP (-3): the offset of
// the first durable record carrying the partition's largest timestamp, and
// that timestamp; found is false for an empty partition. Only the span
// holding the maximum (known from the index without reading) is decoded.
func (p *Partition) MaxTimestampOffset(ctx context.Context) (offset, timestamp int64, found bool, err error) {
	v, err := p.view()
	if err != nil {
		return 0, 0, false, err
	}
	defer v.release()
	var best span
	haveBest := false
	for cur := v.logStart; cur < v.hw; {
		sp, _, ok, err := v.next(ctx, cur)
		if err != nil {
			return 0, 0, false, err
		}
		if !ok {
			break
		}
		if !haveBest || sp.maxTS > best.maxTS {
			best, haveBest = sp, true
		}
		cur = sp.last + 1
	}
	if !haveBest {
		return 0, 0, false, nil
	}
	batches, err := best.load(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	err = kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
		if h.BaseOffset >= v.hw || h.MaxTimestamp < best.maxTS || (found && h.MaxTimestamp <= timestamp) {
			return nil
		}
		recs, err := kbatch.Records(b)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Offset >= v.logStart && r.Offset < v.hw && (!found || r.Timestamp > timestamp) {
				offset, timestamp, found = r.Offset, r.Timestamp, true
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return offset, timestamp, found, nil
}
