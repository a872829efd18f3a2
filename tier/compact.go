package tier

// Log compaction on the object store (cleanup.policy=compact), as Kafka's
// log cleaner does it, on rolled segment objects:
//
//  1. The dirty part is the rolled data from the partition's compaction
//     checkpoint (metadata.CompactionState.Cleaned) up to the last entry
//     that is below the last stable offset and older than
//     min.compaction.lag.ms. A pass runs when the dirty part is at least
//     min.cleanable.dirty.ratio of the rolled log, or its oldest record is
//     older than max.compaction.lag.ms.
//  2. A key map (MD5 of the key → latest offset, at most Config.CompactKeys
//     keys, as Kafka's dedupe buffer) is built over the dirty part; when it
//     fills, the pass ends at the last whole index entry it covered and the
//     next pass continues from there.
//  3. Every rolled entry from the log start to the pass's end is rewritten:
//     a record whose key has a later offset in the map goes, a tombstone
//     goes once it was in the clean part and is older than
//     delete.retention.ms, an aborted transaction's batches go, and so do
//     transaction markers in the clean part older than
//     delete.retention.ms. Offsets are
//     kept (the log becomes sparse), each batch keeps its header fields.
//     Each rewritten range becomes a segment object whose index entries
//     cover exactly the range they replace, swapped in by one fenced etcd
//     transaction (ReplaceIndex), as the roller does; a range in which
//     nothing is dropped is left alone. A range that would hold no batch
//     keeps its last batch, emptied.
//  4. The checkpoint moves to the pass's end.
//
// Only the leader compacts, fenced like the roller. Reads need nothing
// special: an index entry covers its range whether or not every offset in
// it holds a record, and a reader moves on to the entry's end. Below where
// compaction has reached, the leader reads the compacted objects rather
// than its uncompacted local segments.

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
)

// defaultCompactKeys bounds the key map of one pass (~50 bytes a key).
const defaultCompactKeys = 1 << 20

// compactRangeBytes bounds the input of one rewritten range: one segment
// object and one index swap.
const compactRangeBytes = 64 << 20

// compactResult is what one pass did.
type compactResult struct {
	ran                                   bool
	bytesRead, bytesWritten               int64
	recordsIn, recordsOut, puts, gets, tx int64
	cleaned                               int64
}

// compact runs one compaction pass when one is due, and reports whether it
// ran.
func (p *Partition) compact(ctx context.Context, tc topiccfg.Config, now time.Time) (bool, error) {
	if !tc.Compact {
		return false, nil
	}
	v, err := p.view()
	if err != nil {
		return false, err
	}
	defer v.release()
	st, err := p.t.meta.Compaction(ctx, p.tp)
	if err != nil {
		return false, fmt.Errorf("%w: compaction state: %w", ErrStorage, err)
	}
	// Rolled entries below the LSO: compaction never touches flush
	// objects (the roller does that first) or an open transaction's data.
	var rolled []metadata.IndexEntry
	for _, e := range p.t.meta.IndexEntries(p.tp, v.logStart) {
		if isFlushObject(e.Object) || e.LastOffset >= v.lso {
			break
		}
		rolled = append(rolled, e)
	}
	if len(rolled) == 0 {
		return false, nil
	}
	cleaned := max(st.Cleaned, v.logStart)
	lagCut := now.Add(-tc.MinCompactionLag).UnixMilli()
	var total, dirtyBytes int64
	firstDirty, dirtyEnd := -1, -1
	for i, e := range rolled {
		total += e.Size
		if e.LastOffset < cleaned {
			continue
		}
		if e.MaxTimestamp > lagCut {
			break
		}
		if firstDirty < 0 {
			firstDirty = i
		}
		dirtyEnd = i
		dirtyBytes += e.Size
	}
	if firstDirty < 0 {
		return false, nil
	}
	forced := tc.MaxCompactionLag > 0 && rolled[firstDirty].MaxTimestamp < now.Add(-tc.MaxCompactionLag).UnixMilli()
	p.t.metrics.dirtyRatio.WithLabelValues(p.tp.Topic, fmt.Sprint(p.tp.Partition)).Set(float64(dirtyBytes) / float64(max(total, 1)))
	if float64(dirtyBytes) < tc.MinCleanableDirtyRatio*float64(total) && !forced {
		return false, nil
	}

	var res compactResult
	load := func(e metadata.IndexEntry) ([]byte, error) {
		res.gets++
		data, err := p.t.cache.get(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("%w: get %s: %w", ErrStorage, e.Object, err)
		}
		batches, _, err := segment.DecodeRun(nil, data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrStorage, e.Object, err)
		}
		res.bytesRead += int64(len(data))
		return batches, nil
	}

	// The key map over the dirty part.
	maxKeys := p.t.cfg.CompactKeys
	if maxKeys <= 0 {
		maxKeys = defaultCompactKeys
	}
	latest := make(map[[16]byte]int64)
	passEnd := int64(-1)
	for _, e := range rolled[firstDirty : dirtyEnd+1] {
		batches, err := load(e)
		if err != nil {
			return false, err
		}
		entryKeys := make(map[[16]byte]int64)
		err = kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
			if h.IsControl() || h.LastOffset() < e.BaseOffset || h.BaseOffset > e.LastOffset {
				return nil
			}
			recs, err := kbatch.Records(b)
			if err != nil {
				return err
			}
			for i := range recs {
				if recs[i].Key != nil {
					entryKeys[md5.Sum(recs[i].Key)] = recs[i].Offset
				}
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("%w: compact: %w", ErrStorage, err)
		}
		if passEnd >= 0 && len(latest)+len(entryKeys) > maxKeys {
			break // the next pass goes on from here
		}
		for k, o := range entryKeys {
			latest[k] = o
		}
		passEnd = e.LastOffset
	}

	aborted, err := p.t.meta.AbortedTxns(ctx, p.tp, v.logStart)
	if err != nil {
		return false, fmt.Errorf("%w: aborted transactions: %w", ErrStorage, err)
	}
	isAborted := func(h kbatch.Header) bool {
		if !h.IsTransactional() || h.IsControl() {
			return false
		}
		for _, a := range aborted {
			if a.ProducerID == h.ProducerID && h.BaseOffset >= a.First && h.BaseOffset < a.Last {
				return true
			}
		}
		return false
	}
	tombstoneCut := now.Add(-tc.DeleteRetention).UnixMilli()
	// Transaction markers go as tombstones do: once in the clean part and
	// older than delete.retention.ms. A committed transaction's records
	// need no marker below the LSO, an aborted one's are gone.
	keepControl := func(h kbatch.Header) bool {
		return h.LastOffset() >= cleaned || h.MaxTimestamp >= tombstoneCut
	}
	keep := func(r *kbatch.Record) bool {
		res.recordsIn++
		if r.Key != nil {
			if o, ok := latest[md5.Sum(r.Key)]; ok && o > r.Offset {
				return false
			}
			if r.Value == nil && r.Offset < cleaned && r.Timestamp < tombstoneCut {
				return false
			}
		}
		res.recordsOut++
		return true
	}

	// Rewrite [log start, passEnd] range by range.
	var rng []metadata.IndexEntry
	var rngBytes int64
	flush := func() error {
		if len(rng) == 0 {
			return nil
		}
		err := p.rewriteRange(ctx, rng, load, keep, keepControl, isAborted, &res)
		rng, rngBytes = rng[:0], 0
		return err
	}
	for _, e := range rolled {
		if e.LastOffset > passEnd {
			break
		}
		if rngBytes+e.Size > compactRangeBytes {
			if err := flush(); err != nil {
				return false, err
			}
		}
		rng = append(rng, e)
		rngBytes += e.Size
	}
	if err := flush(); err != nil {
		return false, err
	}
	st.Cleaned = passEnd + 1
	st.LastMs = now.UnixMilli()
	st.Passes++
	st.BytesRead += res.bytesRead
	st.BytesWritten += res.bytesWritten
	st.RecordsIn += res.recordsIn
	st.RecordsOut += res.recordsOut
	st.Puts += res.puts
	st.Gets += res.gets
	st.EtcdTxns += res.tx + 1
	if err := p.t.meta.SetCompaction(ctx, p.lead, st); err != nil {
		if errors.Is(err, metadata.ErrFenced) {
			p.close(ErrNotLeader, false)
			return false, ErrNotLeader
		}
		return false, fmt.Errorf("%w: compaction state: %w", ErrStorage, err)
	}
	p.mu.Lock()
	p.compactedTo = max(p.compactedTo, st.Cleaned)
	p.mu.Unlock()
	p.t.metrics.compactions.Inc()
	p.t.metrics.lastCompaction.WithLabelValues(p.tp.Topic, fmt.Sprint(p.tp.Partition)).Set(float64(now.Unix()))
	p.t.metrics.compactedBytesIn.Add(float64(res.bytesRead))
	p.t.metrics.compactedBytesOut.Add(float64(res.bytesWritten))
	p.t.logger.Debug("compacted", "topic", p.tp.Topic, "partition", p.tp.Partition, "cleaned_to", st.Cleaned,
		"keys", len(latest), "records_in", res.recordsIn, "records_out", res.recordsOut,
		"bytes_read", res.bytesRead, "bytes_written", res.bytesWritten, "puts", res.puts)
	return true, nil
}

// rewriteRange rewrites the contiguous entries rng into one segment object
// with only the records keep keeps, and swaps them in. Nothing is written
// when nothing would be dropped.
func (p *Partition) rewriteRange(ctx context.Context, rng []metadata.IndexEntry, load func(metadata.IndexEntry) ([]byte, error),
	keep func(*kbatch.Record) bool, keepControl, isAborted func(kbatch.Header) bool, res *compactResult) error {
	from, to := rng[0].BaseOffset, rng[len(rng)-1].LastOffset
	bb := blockBuilder{target: rollBlockBytes}
	add := bb.add
	changed := false
	var last []byte // the range's last batch, as read
	var lastH kbatch.Header
	kept := 0
	for _, e := range rng {
		batches, err := load(e)
		if err != nil {
			return err
		}
		err = kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
			if h.LastOffset() < e.BaseOffset || h.BaseOffset > e.LastOffset {
				return nil
			}
			last, lastH = b, h
			if isAborted(h) {
				changed = true
				return nil
			}
			if h.IsControl() {
				if !keepControl(h) {
					changed = true
					return nil
				}
				add(h, b)
				kept++
				return nil
			}
			out, err := kbatch.Filter(b, keep, false)
			if err != nil {
				return err
			}
			if len(out) != len(b) {
				changed = true
			}
			if out == nil {
				return nil
			}
			oh, err := kbatch.ParseHeader(out)
			if err != nil {
				return err
			}
			add(oh, out)
			kept++
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w: compact: %w", ErrStorage, err)
		}
	}
	if !changed {
		return nil
	}
	if kept == 0 && last != nil {
		// Nothing left in the range: keep its last batch, emptied, so
		// the range still has a batch to read past.
		out, err := kbatch.Filter(last, func(*kbatch.Record) bool { return false }, true)
		if err != nil {
			return fmt.Errorf("%w: compact: %w", ErrStorage, err)
		}
		if out == nil {
			out = last // a control batch
		}
		add(lastH, out)
	}
	key := segmentObjectKey(p.topicID, p.tp.Partition, from, to)
	obj, entries, err := bb.finish(from, key, rollChunkBytes)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("%w: compact %s/%d: nothing to write for [%d, %d]", ErrStorage, p.tp.Topic, p.tp.Partition, from, to)
	}
	if len(entries) > maxRollChunks {
		return fmt.Errorf("%w: compact %s/%d: %d index entries do not fit one transaction", ErrStorage, p.tp.Topic, p.tp.Partition, len(entries))
	}
	// The new entries cover exactly the range they replace.
	entries[0].BaseOffset, entries[len(entries)-1].LastOffset = from, to
	for i := range entries {
		entries[i].Records = entries[i].LastOffset - entries[i].BaseOffset + 1
	}
	putAt := time.Now() // the object's ModTime is no earlier
	if err := p.t.bucket.Put(ctx, key, obj); err != nil {
		return fmt.Errorf("%w: put segment: %w", ErrStorage, err)
	}
	res.puts++
	res.bytesWritten += int64(len(obj))
	if err := p.t.referenceFresh(ctx, putAt, func(ctx context.Context) error {
		return p.t.meta.ReplaceIndex(ctx, p.lead, from, to, entries)
	}); err != nil {
		if errors.Is(err, metadata.ErrFenced) {
			p.close(ErrNotLeader, false)
			return ErrNotLeader
		}
		return fmt.Errorf("%w: swap index: %w", ErrStorage, err)
	}
	res.tx++
	return nil
}
