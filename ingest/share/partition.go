package share

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/strata-io/strata/metadata"
)

// Record states in memory: metadata's stored states plus Acquired.
const (
	available    = metadata.ShareAvailable
	acquired     = int8(1)
	acknowledged = metadata.ShareAcknowledged
	archived     = metadata.ShareArchived
)

// Acknowledgement types of ShareFetch and ShareAcknowledge.
const (
	AckGap     = int8(0)
	AckAccept  = int8(1)
	AckRelease = int8(2)
	AckReject  = int8(3)
	AckRenew   = int8(4) // KIP-1222, v2
)

// SnapshotEvery is how many deltas a partition writes before it folds them
// into its snapshot.
const SnapshotEvery = 64

// Errors of Acknowledge, mapped to Kafka codes by the caller.
var (
	// ErrInvalidRecordState: an acknowledged record is not acquired by
	// the member (never delivered to it, lock expired, already
	// acknowledged): INVALID_RECORD_STATE.
	ErrInvalidRecordState = errors.New("share: record not acquired by this member")
	// ErrInvalidRequest: malformed acknowledgement batches.
	ErrInvalidRequest = errors.New("share: malformed acknowledgement")
)

// Config is a share group's delivery settings.
type Config struct {
	// LockDuration is share.record.lock.duration.ms (default 30 s).
	LockDuration time.Duration
	// DeliveryLimit is share.delivery.count.limit (default 5).
	DeliveryLimit int16
	// MaxInFlight bounds the records in the window
	// (share.partition.max.record.locks, default 2000).
	MaxInFlight int
}

func (c Config) withDefaults() Config {
	if c.LockDuration <= 0 {
		c.LockDuration = 30 * time.Second
	}
	if c.DeliveryLimit <= 0 {
		c.DeliveryLimit = 5
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 2000
	}
	return c
}

// Store is where share state is kept; *metadata.Store implements it.
type Store interface {
	LoadShareState(ctx context.Context, group string, id metadata.TopicID, p int32) (metadata.ShareLoaded, error)
	AppendShareDelta(ctx context.Context, l metadata.Leadership, group string, snapRev int64, d metadata.ShareState) error
	SnapshotShareState(ctx context.Context, l metadata.Leadership, group string, snapRev int64, st metadata.ShareState) (int64, error)
}

type rec struct {
	state    int8
	count    int16
	member   string
	deadline time.Time
}

// Partition is one share group's state of one partition. Its methods are
// safe for concurrent use; each holds the partition's lock across its
// etcd write, so changes are stored in the order they are made.
type Partition struct {
	group string
	lead  metadata.Leadership
	store Store

	mu      sync.Mutex
	cfg     Config
	start   int64
	end     int64
	recs    []rec // recs[i] is offset start+i
	seq     int64
	snapRev int64
	deltas  int // since the snapshot
	changed map[int64]struct{}
	moved   bool // start or end changed since the last write
	broken  bool // a write failed: the state must be loaded again
	notify  chan struct{}
}

// load reads a partition's state; when none is stored it starts at
// initStart() and stores that first, so a later leader starts there too.
func load(ctx context.Context, store Store, group string, lead metadata.Leadership, cfg Config, initStart func() (int64, error)) (*Partition, error) {
	p := &Partition{group: group, lead: lead, store: store, cfg: cfg.withDefaults(), changed: map[int64]struct{}{}, notify: make(chan struct{})}
	ld, err := store.LoadShareState(ctx, group, lead.TopicID, lead.TP.Partition)
	if err != nil {
		return nil, err
	}
	if !ld.Found {
		start, err := initStart()
		if err != nil {
			return nil, err
		}
		st := metadata.ShareState{Start: start, End: start}
		rev, err := store.SnapshotShareState(ctx, lead, group, 0, st)
		if err != nil {
			return nil, err
		}
		p.start, p.end, p.snapRev = start, start, rev
		return p, nil
	}
	p.snapRev = ld.SnapRev
	p.fold(ld)
	return p, nil
}

// fold builds the window from a stored state: the snapshot, then each
// delta in order.
func (p *Partition) fold(ld metadata.ShareLoaded) {
	p.seq = ld.Snapshot.Seq
	p.start, p.end = ld.Snapshot.Start, ld.Snapshot.Start
	p.apply(ld.Snapshot)
	for _, d := range ld.Deltas {
		p.apply(d)
		p.seq = d.Seq
		p.deltas++
	}
}

// stored is a stored state folded into a window, for reading only.
func stored(ld metadata.ShareLoaded) *Partition {
	p := &Partition{changed: map[int64]struct{}{}}
	p.fold(ld)
	return p
}

// apply folds a stored snapshot or delta into the window.
func (p *Partition) apply(d metadata.ShareState) {
	if d.End > p.end {
		for o := p.end; o < d.End; o++ {
			p.recs = append(p.recs, rec{})
		}
		p.end = d.End
	}
	for _, r := range d.Runs {
		for o := max(r.First, p.start); o <= r.Last && o < p.end; o++ {
			p.recs[o-p.start] = rec{state: r.State, count: r.Count}
		}
	}
	p.advanceTo(d.Start)
}

// advanceTo moves start up to off (never down), dropping the window below.
func (p *Partition) advanceTo(off int64) {
	if off <= p.start {
		return
	}
	if off >= p.end {
		p.recs = p.recs[:0]
		p.start = off
		p.end = off
		p.moved = true
		return
	}
	p.recs = append(p.recs[:0], p.recs[off-p.start:]...)
	p.start = off
	p.moved = true
}

// advance moves start past every done record at the front of the window.
func (p *Partition) advance() {
	n := 0
	for n < len(p.recs) && (p.recs[n].state == acknowledged || p.recs[n].state == archived) {
		n++
	}
	if n > 0 {
		p.advanceTo(p.start + int64(n))
	}
}

func (p *Partition) set(off int64, r rec) {
	p.recs[off-p.start] = r
	p.changed[off] = struct{}{}
}

// wake tells waiting fetches that records may have become available.
func (p *Partition) wake() {
	close(p.notify)
	p.notify = make(chan struct{})
}

// expire ends the locks that passed their deadline.
func (p *Partition) expire(now time.Time) {
	woke := false
	for i := range p.recs {
		r := &p.recs[i]
		if r.state == acquired && now.After(r.deadline) {
			p.release(p.start+int64(i), r)
			woke = true
		}
	}
	if woke {
		p.wake()
	}
}

// release makes an acquired record available again, or archives it when it
// was delivered as often as allowed.
func (p *Partition) release(off int64, r *rec) {
	st := available
	if r.count >= p.cfg.DeliveryLimit {
		st = archived
	}
	p.set(off, rec{state: st, count: r.count})
}

// persist writes the changes since the last write as one delta; any failure
// marks the partition broken (the caller drops it and loads it again).
func (p *Partition) persist(ctx context.Context) error {
	if len(p.changed) == 0 && !p.moved {
		return nil
	}
	offs := make([]int64, 0, len(p.changed))
	for o := range p.changed {
		if o >= p.start && o < p.end {
			offs = append(offs, o)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	d := metadata.ShareState{Seq: p.seq + 1, Start: p.start, End: p.end, Runs: p.runs(offs)}
	if err := p.store.AppendShareDelta(ctx, p.lead, p.group, p.snapRev, d); err != nil {
		p.broken = true
		return err
	}
	p.seq++
	p.deltas++
	clear(p.changed)
	p.moved = false
	if p.deltas >= SnapshotEvery {
		offs = offs[:0]
		for i := range p.recs {
			if r := p.recs[i]; r.state != available || r.count != 0 {
				offs = append(offs, p.start+int64(i))
			}
		}
		st := metadata.ShareState{Seq: p.seq, Start: p.start, End: p.end, Runs: p.runs(offs)}
		rev, err := p.store.SnapshotShareState(ctx, p.lead, p.group, p.snapRev, st)
		if err != nil {
			// The deltas stand; an unknown outcome shows as a changed
			// snapshot at the next write, which reloads.
			return nil
		}
		p.snapRev, p.deltas = rev, 0
	}
	return nil
}

// runs groups sorted offsets into runs of equal stored state and count.
func (p *Partition) runs(offs []int64) []metadata.ShareRun {
	var out []metadata.ShareRun
	for _, o := range offs {
		r := p.recs[o-p.start]
		st := r.state
		if st == acquired {
			st = available
		}
		if n := len(out); n > 0 && out[n-1].Last == o-1 && out[n-1].State == st && out[n-1].Count == r.count {
			out[n-1].Last = o
			continue
		}
		out = append(out, metadata.ShareRun{First: o, Last: o, State: st, Count: r.count})
	}
	return out
}

// Range is a run of acquired offsets with their delivery count.
type Range struct {
	First, Last int64
	Count       int16
}

// Reader reads whole record batches of the partition from offset on, at
// most maxBytes (but at least one batch), below the high watermark. It
// returns the batches, the high watermark and the log start offset.
type Reader func(ctx context.Context, offset int64, maxBytes int) (batches []byte, hw, logStart int64, err error)

// Acquire hands member up to maxRecords records (whole batches, so a few
// more) and at most maxBytes of batches: first records released or whose
// lock expired, then new ones. It returns the batches holding them and the
// acquired offsets; the state is stored before it returns.
func (p *Partition) Acquire(ctx context.Context, member string, maxRecords, maxBytes int, read Reader) ([]byte, []Range, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return nil, nil, errBroken
	}
	now := time.Now()
	p.expire(now)
	deadline := now.Add(p.cfg.LockDuration)
	var (
		out    []byte
		ranges []Range
		got    int
	)
	take := func(off int64, count int16) {
		got++
		if n := len(ranges); n > 0 && ranges[n-1].Last == off-1 && ranges[n-1].Count == count {
			ranges[n-1].Last = off
			return
		}
		ranges = append(ranges, Range{First: off, Last: off, Count: count})
	}
	cursor := p.nextAvailable(p.start)
	for got < maxRecords && len(out) < maxBytes {
		if cursor >= p.end && len(p.recs) >= p.cfg.MaxInFlight {
			break // the window is full: new records wait for acknowledgements
		}
		batches, hw, logStart, err := read(ctx, cursor, maxBytes-len(out))
		if err != nil {
			if got > 0 {
				break // answer what was acquired
			}
			return nil, nil, err
		}
		if logStart > p.start {
			// Records below the log start are gone (retention or
			// DeleteRecords): nothing there can be delivered.
			p.advanceTo(logStart)
			if cursor < logStart {
				cursor = p.nextAvailable(logStart)
				continue
			}
		}
		if cursor >= hw || len(batches) == 0 {
			break
		}
		progressed := false
		for len(batches) >= 61 {
			base := int64(binary.BigEndian.Uint64(batches[0:8]))
			size := 12 + int(binary.BigEndian.Uint32(batches[8:12]))
			if size < 61 || size > len(batches) {
				break
			}
			attrs := binary.BigEndian.Uint16(batches[21:23])
			last := base + int64(binary.BigEndian.Uint32(batches[23:27]))
			control := attrs&0x20 != 0
			batch := batches[:size]
			batches = batches[size:]
			if last < cursor {
				continue
			}
			// Offsets between the cursor and this batch hold no
			// record (compacted away): they are done.
			for o := cursor; o < base; o++ {
				p.markGap(o)
			}
			include := false
			for o := max(base, cursor); o <= last; o++ {
				if o < p.start {
					continue
				}
				if o >= p.end {
					p.recs = append(p.recs, rec{})
					p.end = o + 1
					p.moved = true
				}
				r := p.recs[o-p.start]
				switch {
				case r.state != available:
				case control:
					p.set(o, rec{state: archived, count: r.count})
				case r.count >= p.cfg.DeliveryLimit:
					p.set(o, rec{state: archived, count: r.count})
				default:
					p.set(o, rec{state: acquired, count: r.count + 1, member: member, deadline: deadline})
					take(o, r.count+1)
					include = true
				}
			}
			if include {
				out = append(out, batch...)
			}
			cursor = last + 1
			progressed = true
			if got >= maxRecords || len(out) >= maxBytes {
				break
			}
		}
		if !progressed {
			break
		}
		if cursor < p.end {
			cursor = p.nextAvailable(cursor)
		}
	}
	p.advance()
	if err := p.persist(ctx); err != nil {
		return nil, nil, err
	}
	return out, ranges, nil
}

// markGap archives an offset that holds no record.
func (p *Partition) markGap(o int64) {
	if o < p.start {
		return
	}
	if o >= p.end {
		p.recs = append(p.recs, rec{state: archived})
		p.end = o + 1
		p.moved = true
		p.changed[o] = struct{}{}
		return
	}
	if r := p.recs[o-p.start]; r.state == available {
		p.set(o, rec{state: archived, count: r.count})
	}
}

// nextAvailable returns the first offset at or after from that is available
// in the window, or end.
func (p *Partition) nextAvailable(from int64) int64 {
	for o := max(from, p.start); o < p.end; o++ {
		if p.recs[o-p.start].state == available {
			return o
		}
	}
	return p.end
}

var errBroken = errors.New("share: partition state must be reloaded")

// AckBatch is one acknowledgement batch: Types holds one type for the whole
// range, or one per offset.
type AckBatch struct {
	First, Last int64
	Types       []int8
}

// Acknowledge applies member's acknowledgements: all or none of them. It
// returns ErrInvalidRequest or ErrInvalidRecordState when nothing was
// applied, or the error of storing them.
func (p *Partition) Acknowledge(ctx context.Context, member string, batches []AckBatch, renewAllowed bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return errBroken
	}
	now := time.Now()
	p.expire(now)
	maxType := AckReject
	if renewAllowed {
		maxType = AckRenew
	}
	for _, b := range batches {
		n := b.Last - b.First + 1
		if b.First < 0 || n <= 0 || (len(b.Types) != 1 && int64(len(b.Types)) != n) {
			return ErrInvalidRequest
		}
		for _, t := range b.Types {
			if t < AckGap || t > maxType {
				return ErrInvalidRequest
			}
		}
		for o := b.First; o <= b.Last; o++ {
			if o < p.start || o >= p.end {
				return fmt.Errorf("%w: offset %d outside [%d, %d)", ErrInvalidRecordState, o, p.start, p.end)
			}
			if r := p.recs[o-p.start]; r.state != acquired || r.member != member {
				return fmt.Errorf("%w: offset %d", ErrInvalidRecordState, o)
			}
		}
	}
	released := false
	for _, b := range batches {
		for o := b.First; o <= b.Last; o++ {
			t := b.Types[0]
			if len(b.Types) > 1 {
				t = b.Types[o-b.First]
			}
			r := p.recs[o-p.start]
			switch t {
			case AckGap, AckReject:
				p.set(o, rec{state: archived, count: r.count})
			case AckAccept:
				p.set(o, rec{state: acknowledged, count: r.count})
			case AckRelease:
				p.release(o, &r)
				released = true
			case AckRenew:
				p.recs[o-p.start].deadline = now.Add(p.cfg.LockDuration)
			}
		}
	}
	p.advance()
	if err := p.persist(ctx); err != nil {
		return err
	}
	if released {
		p.wake()
	}
	return nil
}

// ReleaseMember makes every record member holds available again (its share
// session closed). Nothing needs storing unless a record is archived.
func (p *Partition) ReleaseMember(ctx context.Context, member string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return
	}
	n := 0
	for i := range p.recs {
		if r := &p.recs[i]; r.state == acquired && r.member == member {
			p.release(p.start+int64(i), r)
			n++
		}
	}
	if n > 0 {
		p.advance()
		_ = p.persist(ctx) // a failure reloads the stored state, which is as safe
		p.wake()
	}
}

// Wait returns a channel closed when records may have become available
// (released, or a lock ended) and the time the next lock expires (zero:
// none).
func (p *Partition) Wait() (<-chan struct{}, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var next time.Time
	for _, r := range p.recs {
		if r.state == acquired && (next.IsZero() || r.deadline.Before(next)) {
			next = r.deadline
		}
	}
	return p.notify, next
}

// Stats is what describe and metrics show of a share partition.
type Stats struct {
	Start, End int64
	InFlight   int // records in the window not yet acknowledged or archived
	Acquired   int
	Available  int
}

// Stats returns the partition's counts now.
func (p *Partition) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(time.Now())
	return stateStats(p.start, p.end, p.recs)
}

func stateStats(start, end int64, recs []rec) Stats {
	s := Stats{Start: start, End: end}
	for _, r := range recs {
		switch r.state {
		case acquired:
			s.Acquired++
			s.InFlight++
		case available:
			s.Available++
			s.InFlight++
		}
	}
	return s
}

// StoredStats computes Stats from a stored state, for nodes that do not
// lead the partition (describe on the coordinator).
func StoredStats(ld metadata.ShareLoaded) Stats {
	p := stored(ld)
	return stateStats(p.start, p.end, p.recs)
}

// StoredRuns returns a stored state's start offset, reset epoch and the
// runs covering its whole window [start, end), each run one state and
// delivery count.
func StoredRuns(ld metadata.ShareLoaded) (start, epoch int64, runs []metadata.ShareRun) {
	p := stored(ld)
	offs := make([]int64, len(p.recs))
	for i := range offs {
		offs[i] = p.start + int64(i)
	}
	return p.start, ld.Snapshot.Epoch, p.runs(offs)
}
