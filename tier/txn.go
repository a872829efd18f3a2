package tier

// Transactions in a partition (Kafka's semantics, see segment/FORMAT.md
// "Transaction markers"):
//   - A producer's first transactional batch in a partition opens its
//     transaction there, at that batch's base offset, once the coordinator
//     has confirmed that the partition is in the producer's ongoing
//     transaction (AppendTxn's verify; KIP-890 part 1).
//   - A marker (AppendMarker: a control batch the coordinator asks for)
//     closes it. Once the marker is durable the transaction leaves the
//     partition's open set, and an aborted one joins the aborted index.
//   - The last stable offset (LSO) is the first offset of the oldest open
//     transaction, else the high watermark; read_committed readers stop
//     there.
// Open transactions live in the producer state (producerState.Txn), which
// every flush commit carries for the producers that changed; the aborted
// index is in etcd (metadata.AbortedTxn), committed with the marker. Both
// survive node loss and the roller.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
)

// Transaction errors, mapped by ingest to Kafka's codes.
var (
	// ErrInvalidTxnState: a transactional batch for a partition that is not
	// (or no longer) in the producer's ongoing transaction.
	ErrInvalidTxnState = errors.New("tier: the partition is not in the producer's ongoing transaction")
	// errVerifyRace: a marker was written between the verification and the
	// append; verify again.
	errVerifyRace = errors.New("tier: transaction changed during verification")
)

// openTxn is a producer's transaction in one partition.
type openTxn struct {
	first  int64 // offset of its first batch here
	marker int64 // offset of its marker, -1 until written
	abort  bool
}

// LastStableOffset is the first offset of the oldest open transaction, or
// the high watermark.
func (p *Partition) LastStableOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lsoLocked()
}

func (p *Partition) lsoLocked() int64 {
	lso := p.hw
	for _, t := range p.txns {
		lso = min(lso, t.first)
	}
	return lso
}

// stableAsOfLocked is the last stable offset as of cut (the end of a
// flush group): transactions whose marker is below cut are closed then.
func (p *Partition) stableAsOfLocked(cut int64) int64 {
	lso := cut
	for _, t := range p.txns {
		if t.first < cut && (t.marker < 0 || t.marker >= cut) {
			lso = min(lso, t.first)
		}
	}
	return lso
}

// txnAsOfLocked is what a flush commit ending at cut records of pid's open
// transaction: its first offset, or nil when none is open as of cut.
func (p *Partition) txnAsOfLocked(pid, cut int64) *int64 {
	t := p.txns[pid]
	if t == nil || t.first >= cut || (t.marker >= 0 && t.marker < cut) {
		return nil
	}
	first := t.first
	return &first
}

// OpenTxnStart returns the first offset of pid's open transaction here.
func (p *Partition) OpenTxnStart(pid int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.txns[pid]; t != nil {
		return t.first, true
	}
	return -1, false
}

// AbortedTxns returns the aborted transactions a read_committed consumer
// reading [from, to) must know of: those whose marker is at or after from
// and whose first offset is below to. They are durable (in etcd).
func (p *Partition) AbortedTxns(from, to int64) []metadata.AbortedTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].Last >= from })
	var out []metadata.AbortedTxn
	for _, a := range p.aborted[i:] {
		if a.First < to {
			out = append(out, a)
		}
	}
	return out
}

// AppendTxn appends a transactional batch. The first batch of the
// producer's transaction in this partition needs the coordinator's word
// that the partition is in that transaction: verify asks it (an etcd read)
// and returns an error to refuse. A marker written while verify runs makes
// the append verify again.
func (p *Partition) AppendTxn(ctx context.Context, batch []byte, h kbatch.Header, verify func(context.Context) error) (int64, func(context.Context) error, error) {
	for attempt := 0; attempt < 3; attempt++ {
		p.mu.Lock()
		t := p.txns[h.ProducerID]
		markers := p.markerVersionLocked(h.ProducerID)
		p.mu.Unlock()
		verified := false
		if t == nil {
			if err := verify(ctx); err != nil {
				return 0, nil, err
			}
			verified = true
		}
		base, wait, err := p.append(ctx, batch, h, txnCheck{verified: verified, markers: markers})
		if errors.Is(err, errVerifyRace) {
			continue
		}
		return base, wait, err
	}
	return 0, nil, fmt.Errorf("%w: transaction markers keep arriving", ErrInvalidTxnState)
}

// txnCheck is what append needs to accept a transactional batch.
type txnCheck struct {
	verified bool   // the coordinator confirmed the partition is in the transaction
	markers  uint64 // the producer's marker count when the verification began
}

// checkTxnLocked decides whether a transactional batch may be appended.
func (p *Partition) checkTxnLocked(h kbatch.Header, tc txnCheck) error {
	t := p.txns[h.ProducerID]
	switch {
	case t != nil && t.marker < 0:
		return nil
	case t != nil:
		// Its marker is written but not yet durable: the coordinator has
		// not finished this transaction, so no new one can have begun.
		return fmt.Errorf("%w: producer %d's transaction is ending", ErrInvalidTxnState, h.ProducerID)
	case !tc.verified:
		return fmt.Errorf("%w: producer %d's first transactional batch here was not verified with its coordinator", ErrInvalidTxnState, h.ProducerID)
	case tc.markers != p.markerVersionLocked(h.ProducerID):
		return errVerifyRace
	}
	return nil
}

// markerVersionLocked counts the markers taken for pid since its state was
// loaded: only a marker for the same producer can end the transaction a
// verification saw.
func (p *Partition) markerVersionLocked(pid int64) uint64 {
	if st := p.producers[pid]; st != nil {
		return st.markerVersions
	}
	return 0
}

// openTxnLocked records that pid's transaction begins at base, when it is
// not open yet.
func (p *Partition) openTxnLocked(pid, base int64) {
	if p.txns[pid] != nil {
		return
	}
	if p.txns == nil {
		p.txns = make(map[int64]*openTxn)
	}
	p.txns[pid] = &openTxn{first: base, marker: -1}
}

// Marker is a transaction marker the coordinator writes.
type Marker struct {
	ProducerID    int64
	ProducerEpoch int16
	Commit        bool
	// Seq is the transaction's number (metadata.TxnState.Seq), written as
	// the control record's coordinator epoch. A partition takes each
	// transaction's marker once: a marker whose (epoch, seq) is not newer
	// than the last one it took is a late duplicate and is dropped.
	Seq int32
}

// AppendMarker appends a transaction marker (a control batch) for m's
// producer and returns a wait for its durability, as Append does. A
// duplicate or late marker appends nothing and waits for nothing.
func (p *Partition) AppendMarker(ctx context.Context, m Marker) (int64, func(context.Context) error, error) {
	now := time.Now().UnixMilli()
	batch := markerBatch(m, now)
	n := int64(len(batch))
	if err := p.t.buf.acquire(ctx, n, p.t.closing); err != nil {
		return 0, nil, err
	}
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		p.t.buf.release(n)
		return 0, nil, err
	}
	st := p.producers[m.ProducerID]
	if st != nil && (m.ProducerEpoch < st.Epoch || m.ProducerEpoch == st.Epoch && m.Seq <= st.MarkerSeq) {
		// Taken already (or older): answer once the marker taken is
		// durable, so a retry never reports durable what is not.
		wait := func(context.Context) error { return nil }
		if g := st.markerGroup; g != nil && st.markerAt >= p.hw {
			wait = g.wait
		}
		p.mu.Unlock()
		p.t.buf.release(n)
		return -1, wait, nil
	}
	extra := 1
	if t := p.txns[m.ProducerID]; !m.Commit && t != nil && t.marker < 0 {
		extra++ // the aborted index entry
	}
	p.makeRoomLocked(m.ProducerID, extra)
	base := p.next
	kbatch.SetBaseOffset(batch, base)
	kbatch.SetPartitionLeaderEpoch(batch, p.lead.Epoch)
	meta := segment.BlockMeta{BaseOffset: base, LastOffset: base, MaxTimestamp: now, BatchCount: 1}
	g, err := p.appendBlockLocked(segment.AppendBlock(nil, meta, batch), meta, n)
	if err != nil {
		p.mu.Unlock()
		p.t.buf.release(n)
		p.close(err, false)
		return 0, nil, err
	}
	prevEpoch, prevSeq, versions := int16(-1), int32(0), uint64(0)
	if st != nil {
		prevEpoch, prevSeq, versions = st.Epoch, st.MarkerSeq, st.markerVersions
	}
	if st == nil || m.ProducerEpoch != st.Epoch {
		// A new epoch (the coordinator fenced the producer): its batches
		// start again at sequence 0.
		if st == nil {
			delete(p.forget, m.ProducerID)
			if p.producers == nil {
				p.producers = make(map[int64]*producerState)
			}
		}
		st = &producerState{Epoch: m.ProducerEpoch}
		p.producers[m.ProducerID] = st
	}
	st.prevEpoch, st.prevMarkerSeq = prevEpoch, prevSeq
	st.markerAt, st.markerGroup, st.markerVersions = base, g, versions+1
	st.MarkerSeq = m.Seq
	st.LastSeen = time.Now().UnixMilli()
	if t := p.txns[m.ProducerID]; t != nil && t.marker < 0 {
		t.marker, t.abort = base, !m.Commit
		if t.abort {
			p.groupAborted = append(p.groupAborted, metadata.AbortedTxn{ProducerID: m.ProducerID, First: t.first, Last: base})
		}
	}
	p.addGroupPIDLocked(m.ProducerID)
	p.mu.Unlock()
	p.t.wakeFlusher()
	return base, g.wait, nil
}

// markerBatch builds a control batch of one record, as Kafka writes
// transaction markers: key (version 0, type 0 abort / 1 commit), value
// (version 0, coordinator epoch).
func markerBatch(m Marker, now int64) []byte {
	typ := int16(0)
	if m.Commit {
		typ = 1
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(m.Seq))
	b, err := kbatch.Build([]kbatch.Record{{Key: key, Value: val, Timestamp: now}},
		kbatch.BuildOptions{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, BaseSequence: -1, Transactional: true, Control: true})
	if err != nil {
		panic(fmt.Sprintf("tier: build marker: %v", err)) // one small record: cannot fail
	}
	return b
}

// closeTxnsLocked takes the transactions whose marker is now durable (below
// hw) out of the open set, and adds the aborted ones to the aborted index.
func (p *Partition) closeTxnsLocked(hw int64) {
	added := false
	for pid, t := range p.txns {
		if t.marker >= 0 && t.marker < hw {
			delete(p.txns, pid)
			if t.abort {
				p.aborted = append(p.aborted, metadata.AbortedTxn{ProducerID: pid, First: t.first, Last: t.marker})
				added = true
			}
		}
	}
	if added {
		// Several closed by one commit come in map order.
		sort.Slice(p.aborted, func(i, j int) bool { return p.aborted[i].Last < p.aborted[j].Last })
	}
}

// dropAbortedBelowLocked forgets aborted transactions whose marker is below
// the log start: no reader can reach their records.
func (p *Partition) dropAbortedBelowLocked(logStart int64) {
	i := sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].Last >= logStart })
	if i > 0 {
		p.aborted = append(p.aborted[:0], p.aborted[i:]...)
	}
}

// loadTxns restores the open transactions from the producer state and the
// aborted index from etcd, when the partition opens.
func (p *Partition) loadTxns(ctx context.Context) error {
	for pid, st := range p.producers {
		if st.Txn != nil {
			p.openTxnLocked(pid, *st.Txn)
		}
	}
	aborted, err := p.t.meta.AbortedTxns(ctx, p.tp, p.logStart)
	if err != nil {
		return fmt.Errorf("%w: read aborted transactions of %s/%d: %w", ErrStorage, p.tp.Topic, p.tp.Partition, err)
	}
	p.aborted = aborted
	return nil
}
