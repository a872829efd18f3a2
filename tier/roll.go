package tier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
)

const (
	// rollBlockBytes is the target size of a block in a rolled segment.
	rollBlockBytes = 1 << 20
	// rollChunkBytes is the largest target size of one index entry's run in
	// a segment object: the unit of a cold read and of retention (smaller
	// when segment.bytes is).
	rollChunkBytes = 4 << 20
	// maxRollChunks bounds one roll's index replacement to one transaction.
	maxRollChunks = 60
)

// isFlushObject reports whether key names a flush object.
func isFlushObject(key string) bool { return strings.HasPrefix(key, "flush/") }

// flushObjectTime is the creation time encoded in a flush object's key.
func flushObjectTime(key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, "flush/")
	if !ok || len(rest) < 13 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(rest[:13], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// rollCandidate returns the flush-object entries to roll into one segment
// object now, or nil: the oldest unrolled entries once they add up to
// segment.bytes or the oldest is older than segment.ms.
func rollCandidate(entries []metadata.IndexEntry, tc topiccfg.Config, now time.Time) []metadata.IndexEntry {
	i := 0
	for i < len(entries) && !isFlushObject(entries[i].Object) {
		i++
	}
	if i == len(entries) {
		return nil
	}
	limit := tc.SegmentBytes
	if max := int64(maxRollChunks * rollChunkBytes); limit > max {
		limit = max
	}
	var size int64
	j := i
	for j < len(entries) && isFlushObject(entries[j].Object) && size < limit {
		size += entries[j].Size
		j++
	}
	if size >= limit {
		return entries[i:j]
	}
	if t, ok := flushObjectTime(entries[i].Object); ok && now.Sub(t) >= tc.SegmentMs {
		return entries[i:j]
	}
	return nil
}

// roll rewrites the oldest unrolled data of p into one per-partition
// segment object (larger zstd blocks, with its own block and time index),
// then swaps the index entries in one fenced transaction. The flush objects
// it replaces are deleted later by the sweeper, once no entry points into
// them and the grace period for in-flight readers has passed.
func (p *Partition) roll(ctx context.Context, tc topiccfg.Config, now time.Time) (bool, error) {
	v, err := p.view()
	if err != nil {
		return false, err
	}
	defer v.release()
	cand := rollCandidate(p.t.meta.IndexEntries(p.tp, v.logStart), tc, now)
	if len(cand) == 0 {
		return false, nil
	}
	from, to := cand[0].BaseOffset, cand[len(cand)-1].LastOffset
	// An index entry is the unit retention deletes, so like a Kafka segment
	// it holds about segment.bytes; but one roll must fit one transaction.
	var inSize int64
	for _, e := range cand {
		inSize += e.Size
	}
	chunk := max(min(int64(rollChunkBytes), tc.SegmentBytes), inSize/(maxRollChunks-4), 1024)
	blockTarget := int(min(int64(rollBlockBytes), chunk))

	bb := blockBuilder{target: blockTarget}
	for cur := from; cur <= to; {
		sp, from, ok, err := v.next(ctx, cur)
		if err != nil {
			return false, err
		}
		if !ok || from != cur || sp.base > cur {
			return false, fmt.Errorf("%w: roll %s/%d: no data at offset %d", ErrStorage, p.tp.Topic, p.tp.Partition, cur)
		}
		batches, err := sp.load(ctx)
		if err != nil {
			return false, err
		}
		err = kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
			if h.LastOffset() < cur || h.BaseOffset > to {
				return nil
			}
			bb.add(h, b)
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("%w: roll: %w", ErrStorage, err)
		}
		cur = sp.last + 1
	}
	key := segmentObjectKey(p.topicID, p.tp.Partition, from, to)
	obj, entries, err := bb.finish(from, key, chunk)
	if err != nil {
		return false, err
	}
	if len(entries) > maxRollChunks {
		return false, fmt.Errorf("%w: roll %s/%d: %d index entries do not fit one transaction", ErrStorage, p.tp.Topic, p.tp.Partition, len(entries))
	}
	if len(entries) == 0 || entries[0].BaseOffset != from || entries[len(entries)-1].LastOffset != to {
		return false, fmt.Errorf("%w: roll %s/%d: rewritten data does not cover [%d, %d]", ErrStorage, p.tp.Topic, p.tp.Partition, from, to)
	}
	putAt := time.Now() // the object's ModTime is no earlier
	if err := p.t.bucket.Put(ctx, key, obj); err != nil {
		return false, fmt.Errorf("%w: put segment: %w", ErrStorage, err)
	}
	if err := p.t.referenceFresh(ctx, putAt, func(ctx context.Context) error {
		return p.t.meta.ReplaceIndex(ctx, p.lead, from, to, entries)
	}); err != nil {
		// The segment object is now an orphan; the sweeper deletes it.
		if errors.Is(err, metadata.ErrFenced) {
			p.close(ErrNotLeader, false)
			return false, ErrNotLeader
		}
		return false, fmt.Errorf("%w: swap index: %w", ErrStorage, err)
	}
	p.t.metrics.rolls.Inc()
	p.t.metrics.rolledBytes.Add(float64(len(obj)))
	p.t.logger.Debug("rolled segment", "topic", p.tp.Topic, "partition", p.tp.Partition,
		"from", from, "to", to, "replaced_entries", len(cand), "entries", len(entries), "bytes", len(obj), "key", key)
	return true, nil
}

// referenceFresh runs reference (an etcd transaction that makes an object
// written at putAt referenced) with a deadline of half the sweep grace after
// putAt. The sweeper deletes unreferenced objects older than the grace; a
// reference that lands later than that could point at an object already
// swept. Past the deadline the reference is abandoned (the object is an
// orphan the sweeper removes, and the caller tries again later with a new
// object); a transaction etcd applied just after the client gave up still
// lands well within the grace.
func (t *Tier) referenceFresh(ctx context.Context, putAt time.Time, reference func(context.Context) error) error {
	ctx, cancel := context.WithDeadline(ctx, putAt.Add(t.cfg.SweepGrace/2))
	defer cancel()
	return reference(ctx)
}

// blockBuilder packs batches, in offset order, into segment blocks of
// about target bytes (the roller's and the compactor's).
type blockBuilder struct {
	target int
	blocks [][]byte
	buf    []byte
	meta   segment.BlockMeta
}

func (b *blockBuilder) add(h kbatch.Header, batch []byte) {
	if len(b.buf) == 0 {
		b.meta = segment.BlockMeta{BaseOffset: h.BaseOffset, MaxTimestamp: h.MaxTimestamp}
	}
	b.meta.LastOffset = h.LastOffset()
	b.meta.MaxTimestamp = max(b.meta.MaxTimestamp, h.MaxTimestamp)
	b.meta.BatchCount++
	b.buf = append(b.buf, batch...)
	if len(b.buf) >= b.target {
		b.seal()
	}
}

func (b *blockBuilder) seal() {
	if len(b.buf) > 0 {
		b.blocks = append(b.blocks, segment.AppendBlock(nil, b.meta, b.buf))
		b.buf = b.buf[:0]
	}
}

// finish encodes the blocks as the segment object key starting at from, and
// returns it with its index entries: runs of consecutive blocks of at most
// chunk bytes, contiguous (a gap between blocks, which compaction leaves,
// belongs to the entry before it). The caller checks that they cover the
// range it replaces.
func (b *blockBuilder) finish(from int64, key string, chunk int64) ([]byte, []metadata.IndexEntry, error) {
	b.seal()
	obj, err := segment.Encode(from, b.blocks)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encode segment: %w", ErrStorage, err)
	}
	r, err := segment.OpenReader(bytes.NewReader(obj), int64(len(obj)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reopen segment: %w", ErrStorage, err)
	}
	var entries []metadata.IndexEntry
	for _, ref := range r.Blocks() {
		n := len(entries)
		if n > 0 && entries[n-1].Size+ref.Size <= chunk {
			e := &entries[n-1]
			e.LastOffset = ref.LastOffset
			e.MaxTimestamp = max(e.MaxTimestamp, ref.MaxTimestamp)
			e.Size += ref.Size
			e.Records = e.LastOffset - e.BaseOffset + 1
			continue
		}
		if n > 0 {
			entries[n-1].LastOffset = ref.BaseOffset - 1
			entries[n-1].Records = entries[n-1].LastOffset - entries[n-1].BaseOffset + 1
		}
		entries = append(entries, metadata.IndexEntry{
			BaseOffset: ref.BaseOffset, LastOffset: ref.LastOffset, MaxTimestamp: ref.MaxTimestamp,
			Object: key, Position: ref.Pos, Size: ref.Size, Records: ref.LastOffset - ref.BaseOffset + 1,
		})
	}
	return obj, entries, nil
}

// segmentObjectKey names a rolled segment object: by partition and offset
// range, with a random suffix so two leaders rolling the same range (one of
// them fenced) never overwrite each other's object.
func segmentObjectKey(id metadata.TopicID, partition int32, from, to int64) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("segments/%s/%d/%020d-%020d-%s.seg", hex.EncodeToString(id[:]), partition, from, to, hex.EncodeToString(r[:]))
}
