package tier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
)

// Partition is one partition led by this node.
//
// Offsets are assigned under mu in Append order; the flusher takes the
// pending blocks as a group and, once they are durable, advances hw and
// completes the group, which is what acks=all producers wait on.
type Partition struct {
	t       *Tier
	tp      metadata.TP
	topicID metadata.TopicID
	lead    metadata.Leadership
	dir     string

	mu       sync.Mutex
	err      error // non-nil once closed: why appends now fail
	next     int64 // next offset to assign
	hw       int64 // durable offset: readers see offsets below it
	logStart int64
	// epochStart is the first offset written under this leader epoch (the
	// durable offset when it was opened).
	epochStart int64
	changed    chan struct{} // closed and replaced when hw advances or p closes
	segs       []*localSeg   // ascending; the last one is active
	pending    []segment.BlockMeta
	blocks     [][]byte    // encoded blocks not yet taken by the flusher, parallel to pending
	group      *flushGroup // the group pending blocks belong to
	// groupPIDs are the idempotent producers with a batch in the group.
	// A group holds at most MaxCommitProducers of them, so its commit
	// carries a bounded amount of producer state: a batch of one more
	// producer seals the group (into sealed) and starts a new one.
	groupPIDs map[int64]struct{}
	// groupAborted is the aborted-index entries of abort markers in the
	// open group (committed with it).
	groupAborted []metadata.AbortedTxn
	sealed       []*pendingGroup // oldest first; the flusher takes them before the open group
	// producers is the idempotence state per producer id (see producers.go).
	producers map[int64]*producerState
	// forget holds producers dropped from producers (expired, or beyond
	// maxProducers) whose keys in etcd are still to be deleted.
	forget map[int64]struct{}
	// txns is the producers' open transactions here (txn.go), and
	// aborted the durable aborted index, ordered by marker offset.
	txns    map[int64]*openTxn
	aborted []metadata.AbortedTxn
	// compactedTo is where compaction has reached (a compacted topic):
	// below it, reads go to the compacted segment objects, not to the
	// uncompacted local segments.
	compactedTo int64
	// flushErr is set when a flush failed this partition: flushes of its
	// later blocks, taken while that one was under way, must not commit.
	flushErr error
}

// failFlush records that a flush of p failed with err.
func (p *Partition) failFlush(err error) {
	p.mu.Lock()
	if p.flushErr == nil {
		p.flushErr = err
	}
	p.mu.Unlock()
}

// flushFailed is the error of a failed flush of p, or nil.
func (p *Partition) flushFailed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushErr
}

// pendingGroup is one flush group's blocks, waiting for the flusher.
type pendingGroup struct {
	blocks [][]byte
	metas  []segment.BlockMeta
	g      *flushGroup
	pids   []int64
	// aborted is the aborted-index entries of the group's abort markers.
	aborted []metadata.AbortedTxn
}

// flushGroup is the set of one partition's blocks made durable by one flush.
type flushGroup struct {
	done  chan struct{}
	err   error
	bytes int64 // buffer bytes to release when the group completes
}

func newFlushGroup() *flushGroup { return &flushGroup{done: make(chan struct{})} }

func (g *flushGroup) complete(err error) {
	g.err = err
	close(g.done)
}

// localSeg is one local segment file: the writer while active, a read-only
// handle for readers, and the refs of the blocks it holds.
type localSeg struct {
	path    string
	w       *segment.Writer
	rf      *os.File
	refs    []segment.BlockRef // append-only; readers keep a prefix
	size    int64
	users   int  // readers holding rf, under Partition.mu
	removed bool // evicted: the last user closes rf
}

func openPartition(ctx context.Context, t *Tier, tp metadata.TP, id metadata.TopicID, lead metadata.Leadership, st metadata.PartitionState, dir string) (*Partition, error) {
	// The idempotent producers' state, as the earlier leaders committed it.
	// State an older Strata kept in the state key moves to per-producer
	// keys first, as no commit writes it there any more.
	if len(st.Producers) > 0 {
		if err := t.meta.MigrateProducers(ctx, lead); err != nil {
			return nil, fmt.Errorf("%w: move producer state of %s/%d: %w", ErrStorage, tp.Topic, tp.Partition, err)
		}
	}
	states, err := t.meta.PartitionProducers(ctx, lead)
	if err != nil {
		return nil, fmt.Errorf("%w: read producer state of %s/%d: %w", ErrStorage, tp.Topic, tp.Partition, err)
	}
	// The local files are a cache of what this node wrote under an earlier
	// epoch. Reuse them when they are provably the durable log (see
	// recoverLocal); otherwise start empty at the durable offset, which is
	// always correct: the object store serves the history.
	recovered := recoverLocal(dir, st)
	if recovered == nil {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("%w: clear hot tier: %w", ErrStorage, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := writeEpochFile(dir, lead.Epoch); err != nil {
		for _, s := range recovered {
			s.w.Close()
			s.rf.Close()
		}
		return nil, fmt.Errorf("%w: hot tier epoch: %w", ErrStorage, err)
	}
	p := &Partition{
		t:          t,
		tp:         tp,
		topicID:    id,
		lead:       lead,
		dir:        dir,
		next:       st.DurableOffset,
		hw:         st.DurableOffset,
		logStart:   st.LogStartOffset,
		epochStart: st.DurableOffset,
		changed:    make(chan struct{}),
		group:      newFlushGroup(),
		segs:       recovered,
	}
	if len(recovered) > 0 {
		t.logger.Info("hot tier recovered from local disk", "topic", tp.Topic, "partition", tp.Partition,
			"segments", len(recovered), "from", recovered[0].refs[0].BaseOffset, "to", st.DurableOffset-1)
	}
	p.loadProducers(states)
	if err := p.loadTxns(ctx); err != nil {
		for _, s := range recovered {
			s.w.Close()
			s.rf.Close()
		}
		return nil, err
	}
	if err := p.newSegmentLocked(p.next); err != nil {
		return nil, err
	}
	return p, nil
}

// newSegmentLocked seals the active segment (if any) and starts a new one at base.
func (p *Partition) newSegmentLocked(base int64) error {
	if n := len(p.segs); n > 0 && !p.segs[n-1].w.Sealed() {
		if err := p.segs[n-1].w.Seal(); err != nil {
			return fmt.Errorf("%w: seal local segment: %w", ErrStorage, err)
		}
	}
	path := filepath.Join(p.dir, fmt.Sprintf("%020d.seg", base))
	w, err := segment.Create(path, base)
	if err != nil {
		return fmt.Errorf("%w: create local segment: %w", ErrStorage, err)
	}
	rf, err := os.Open(path)
	if err != nil {
		w.Close()
		return fmt.Errorf("%w: open local segment: %w", ErrStorage, err)
	}
	p.segs = append(p.segs, &localSeg{path: path, w: w, rf: rf, size: w.Size()})
	p.evictLocked()
	return nil
}

// evictLocked drops the oldest sealed local segments while the hot tier
// holds more than its budget. Only durable segments go: they are in the
// object store.
func (p *Partition) evictLocked() {
	var total int64
	for _, s := range p.segs {
		total += s.size
	}
	for len(p.segs) > 1 && total > p.t.cfg.HotTierBytes {
		s := p.segs[0]
		if n := len(s.refs); n > 0 && s.refs[n-1].LastOffset >= p.hw {
			return
		}
		total -= s.size
		p.segs = p.segs[1:]
		s.removed = true
		s.w.Close()
		if s.users == 0 {
			s.rf.Close()
		}
		os.Remove(s.path)
	}
}

// Append assigns offsets to one validated record batch (RecordBatch v2,
// described by h), rewrites its baseOffset and partitionLeaderEpoch in place,
// and appends it to the local segment. When Append returns the batch is in
// the hot tier (acks=1 may be answered). wait blocks until the batch is
// durable (object store + etcd) and returns nil, or returns the reason it
// never will be (ErrNotLeader, ErrStorage, ErrClosed, ctx.Err()).
func (p *Partition) Append(ctx context.Context, batch []byte, h kbatch.Header) (baseOffset int64, wait func(context.Context) error, err error) {
	return p.append(ctx, batch, h, txnCheck{})
}

// append is Append, with what a transactional batch needs (AppendTxn).
func (p *Partition) append(ctx context.Context, batch []byte, h kbatch.Header, tc txnCheck) (baseOffset int64, wait func(context.Context) error, err error) {
	n := int64(len(batch))
	if n > segment.MaxBlockSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrRecordTooLarge, n, segment.MaxBlockSize)
	}
	if err := p.t.buf.acquire(ctx, n, p.t.closing); err != nil {
		return 0, nil, err
	}
	select {
	case <-p.t.closing:
		p.t.buf.release(n)
		return 0, nil, ErrClosed
	default:
	}

	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		p.t.buf.release(n)
		return 0, nil, err
	}
	if h.ProducerID >= 0 {
		dup, err := p.checkSequenceLocked(h)
		if err != nil {
			p.mu.Unlock()
			p.t.buf.release(n)
			return 0, nil, err
		}
		if dup != nil {
			// A retry of a batch we already have: answer with its offset
			// once it is durable, store nothing.
			base, g := dup.Base, dup.g
			p.mu.Unlock()
			p.t.buf.release(n)
			if g == nil {
				return base, func(context.Context) error { return nil }, nil
			}
			return base, g.wait, nil
		}
	}
	if h.IsTransactional() {
		if err := p.checkTxnLocked(h, tc); err != nil {
			p.mu.Unlock()
			p.t.buf.release(n)
			return 0, nil, err
		}
	}
	if h.ProducerID >= 0 {
		p.makeRoomLocked(h.ProducerID, 0)
	}
	base := p.next
	kbatch.SetBaseOffset(batch, base)
	kbatch.SetPartitionLeaderEpoch(batch, p.lead.Epoch)
	meta := segment.BlockMeta{
		BaseOffset:   base,
		LastOffset:   base + int64(h.LastOffsetDelta),
		MaxTimestamp: h.MaxTimestamp,
		BatchCount:   1,
	}
	// Stored as the client sent it: no zstd under the partition lock on
	// the produce path. The roller compresses uncompressed batches when it
	// writes the partition's segment objects; zstd over a client's
	// snappy/lz4/zstd/gzip output would save almost nothing anyway.
	block := segment.AppendRawBlock(nil, meta, batch)
	g, err := p.appendBlockLocked(block, meta, n)
	if err != nil {
		p.mu.Unlock()
		p.t.buf.release(n)
		p.close(err, false)
		return 0, nil, err
	}
	if h.ProducerID >= 0 {
		p.recordSequenceLocked(h, base, meta.LastOffset, g, time.Now())
		if h.IsTransactional() {
			p.openTxnLocked(h.ProducerID, base)
		}
		p.addGroupPIDLocked(h.ProducerID)
	}
	p.mu.Unlock()

	p.t.metrics.appendedBytes.Add(float64(n))
	p.t.metrics.appendedRecords.Add(float64(h.NumRecords))
	if p.t.buf.load() >= int64(p.t.cfg.FlushBytes) {
		p.t.wakeFlusher()
	}
	return base, g.wait, nil
}

// makeRoomLocked seals the open flush group when adding producer pid's
// state and extra more commit operations (aborted-index entries) would
// take its commit past MaxCommitProducers.
func (p *Partition) makeRoomLocked(pid int64, extra int) {
	need := len(p.groupPIDs) + len(p.groupAborted) + extra
	if _, ok := p.groupPIDs[pid]; !ok {
		need++
	}
	if need > p.t.meta.MaxCommitProducers() && len(p.blocks) > 0 {
		p.sealGroupLocked()
		p.t.wakeFlusher()
	}
}

func (p *Partition) addGroupPIDLocked(pid int64) {
	if p.groupPIDs == nil {
		p.groupPIDs = make(map[int64]struct{})
	}
	p.groupPIDs[pid] = struct{}{}
}

// appendBlockLocked writes an encoded block (meta, n bytes of batch) to the
// active local segment, assigns its offsets and adds it to the open flush
// group, which it returns. An error leaves the partition to be closed.
func (p *Partition) appendBlockLocked(block []byte, meta segment.BlockMeta, n int64) (*flushGroup, error) {
	active := p.segs[len(p.segs)-1]
	if active.size >= p.t.cfg.LocalSegmentBytes && len(active.refs) > 0 {
		if err := p.newSegmentLocked(meta.BaseOffset); err != nil {
			return nil, err
		}
		active = p.segs[len(p.segs)-1]
	}
	ref, err := active.w.Append(block)
	if err != nil {
		// The local file may now hold a partial block after offsets that
		// were handed out; only a fresh open is safe.
		return nil, fmt.Errorf("%w: append to local segment: %w", ErrStorage, err)
	}
	if raw, ok := segment.RawBlockPayload(block); ok {
		// Tailing consumers read what was just appended: they find its
		// batches here, with no disk read, decompression or CRC pass.
		p.t.decoded.put(localSpanKey(active.path, ref.Pos, p.lead.Epoch), raw)
	}
	active.refs = append(active.refs, ref)
	active.size = active.w.Size()
	p.pending = append(p.pending, meta)
	p.blocks = append(p.blocks, block)
	g := p.group
	g.bytes += n
	p.next = meta.LastOffset + 1
	return g, nil
}

// localSpanKey names a local block in the decoded cache. The epoch keeps a
// reopened partition (same paths, new files) apart.
func localSpanKey(path string, pos int64, epoch int32) string {
	return path + "@" + strconv.FormatInt(pos, 10) + "#" + strconv.FormatInt(int64(epoch), 10)
}

func (g *flushGroup) wait(ctx context.Context) error {
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sealGroupLocked moves the open group to the sealed ones and starts a new
// one. The open group must hold blocks.
func (p *Partition) sealGroupLocked() {
	p.sealed = append(p.sealed, &pendingGroup{blocks: p.blocks, metas: p.pending, g: p.group, pids: pidList(p.groupPIDs), aborted: p.groupAborted})
	p.blocks, p.pending, p.group, p.groupPIDs, p.groupAborted = nil, nil, newFlushGroup(), nil, nil
}

func pidList(m map[int64]struct{}) []int64 {
	out := make([]int64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

// takePending hands the flusher the oldest pending group (the first sealed
// one, else the open one) and the state of the producers that appended in
// it, as of its last offset. more reports that another group is waiting.
func (p *Partition) takePending() (pg pendingGroup, producers []byte, stable int64, more, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err != nil:
		return pendingGroup{}, nil, 0, false, false
	case len(p.sealed) > 0:
		pg = *p.sealed[0]
		p.sealed[0] = nil
		p.sealed = p.sealed[1:]
		if len(p.sealed) == 0 {
			p.sealed = nil
		}
	case len(p.blocks) > 0:
		pg = pendingGroup{blocks: p.blocks, metas: p.pending, g: p.group, pids: pidList(p.groupPIDs), aborted: p.groupAborted}
		p.blocks, p.pending, p.group, p.groupPIDs, p.groupAborted = nil, nil, newFlushGroup(), nil, nil
	default:
		return pendingGroup{}, nil, 0, false, false
	}
	cut := pg.metas[len(pg.metas)-1].LastOffset + 1
	return pg, p.producerDeltaLocked(pg.pids, cut), p.stableAsOfLocked(cut), len(p.sealed) > 0, true
}

// advance records that every offset below hw is durable and wakes waiters.
func (p *Partition) advance(hw int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil || hw <= p.hw {
		return
	}
	p.hw = hw
	p.closeTxnsLocked(hw)
	close(p.changed)
	p.changed = make(chan struct{})
}

// close stops the partition: later appends fail with err, pending appends
// complete with err, readers are woken. removeFiles deletes the hot tier.
func (p *Partition) close(err error, removeFiles bool) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	p.err = err
	groups := []*flushGroup{p.group}
	for _, sg := range p.sealed {
		groups = append(groups, sg.g)
	}
	p.blocks, p.pending, p.group, p.groupPIDs, p.groupAborted, p.sealed = nil, nil, newFlushGroup(), nil, nil, nil
	close(p.changed)
	segs := p.segs
	p.segs = nil
	for _, s := range segs {
		s.removed = true
		s.w.Close()
		if s.users == 0 {
			s.rf.Close()
		}
	}
	p.mu.Unlock()

	// Sealed groups first: they hold the earlier offsets.
	for _, g := range append(groups[1:], groups[0]) {
		p.t.buf.release(g.bytes)
		g.complete(err)
	}
	if removeFiles {
		os.RemoveAll(p.dir)
	}
	p.t.forget(p)
}

func (p *Partition) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil
}

// HighWatermark is the durable offset: consumers see offsets below it.
func (p *Partition) HighWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hw
}

// LogStartOffset is the first retained offset.
func (p *Partition) LogStartOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logStart
}

// LeaderEpoch is this node's leader epoch for the partition.
func (p *Partition) LeaderEpoch() int32 { return p.lead.Epoch }

// Leadership is the leadership this node holds the partition under; writes
// of state kept with the leader (share groups) are conditional on it.
func (p *Partition) Leadership() metadata.Leadership { return p.lead }

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the end offset of the
// given leader epoch as this leader knows it. For the current epoch that is
// the high watermark; for any earlier one, the offset where the current
// epoch began (durable data is never truncated, so a consumer never needs
// to go back further than that). An epoch above ours is unknown: ok false.
func (p *Partition) EndOffsetForEpoch(epoch int32) (endOffset int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case epoch > p.lead.Epoch:
		return -1, false
	case epoch == p.lead.Epoch:
		return p.hw, true
	default:
		return min(p.epochStart, p.hw), true
	}
}

// ProducerInfo describes one idempotent producer's state in a partition,
// for DescribeProducers.
type ProducerInfo struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32
	LastTimestamp int64 // unix ms of its last append
	FirstOffset   int64 // offset of its oldest remembered batch
	// TxnStartOffset is the first offset of its open transaction, else -1.
	TxnStartOffset int64
	// CoordinatorEpoch is the number of the last transaction whose marker
	// the partition took (metadata.TxnState.Seq), else -1.
	CoordinatorEpoch int32
}

// Producers returns the idempotent producers this partition remembers.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for id, st := range p.producers {
		pi := ProducerInfo{ProducerID: id, ProducerEpoch: st.Epoch, LastSequence: -1, LastTimestamp: st.LastSeen, FirstOffset: -1, TxnStartOffset: -1, CoordinatorEpoch: -1}
		if t := p.txns[id]; t != nil {
			pi.TxnStartOffset = t.first
		}
		if st.MarkerSeq > 0 {
			pi.CoordinatorEpoch = st.MarkerSeq
		}
		if n := len(st.Batches); n > 0 {
			pi.LastSequence = st.Batches[n-1].LastSeq
			pi.FirstOffset = st.Batches[0].Base
		}
		out = append(out, pi)
	}
	return out
}

// Changed returns a channel closed the next time the high watermark advances
// (or the partition closes). Fetch long-polls on it.
func (p *Partition) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}
