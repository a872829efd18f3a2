package share

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// The tests run against a real etcd (embedded) through metadata.Store; the
// log is a slice of record batches encoded as Kafka encodes them.

func openStore(t *testing.T) (*metadata.Store, metadata.Leadership) {
	t.Helper()
	ctx := context.Background()
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	st, err := metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints(), Cluster: "sharetest"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateTopic(ctx, "q", 1, nil); err != nil {
		t.Fatal(err)
	}
	l, err := st.AcquireLeadership(ctx, metadata.TP{Topic: "q", Partition: 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return st, l
}

// testLog is a log of batches of `per` records each, n records in all, with
// a control batch (a transaction marker) at offset ctrl when ctrl >= 0.
type testLog struct {
	batches [][]byte
	bases   []int64
	hw      int64
}

func newTestLog(n, per int, ctrl int64) *testLog {
	l := &testLog{}
	for off := int64(0); off < int64(n); {
		k := int64(per)
		attrs := int16(0)
		if off == ctrl {
			k, attrs = 1, 0x20
		}
		b := kmsg.RecordBatch{FirstOffset: off, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(k - 1), NumRecords: int32(k)}
		raw := b.AppendTo(nil)
		binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12)) // Length
		l.batches = append(l.batches, raw)
		l.bases = append(l.bases, off)
		off += k
		l.hw = off
	}
	return l
}

func (l *testLog) read(_ context.Context, offset int64, maxBytes int) ([]byte, int64, int64, error) {
	var out []byte
	for i, raw := range l.batches {
		end := l.hw
		if i+1 < len(l.bases) {
			end = l.bases[i+1]
		}
		if end <= offset {
			continue
		}
		if len(out) > 0 && len(out)+len(raw) > maxBytes {
			break
		}
		out = append(out, raw...)
	}
	return out, l.hw, 0, nil
}

func count(rs []Range) int {
	n := 0
	for _, r := range rs {
		n += int(r.Last - r.First + 1)
	}
	return n
}

// TestPartitionStateSurvivesReload: acquisitions and acknowledgements are
// stored before they return, so a new leader (a fresh load) sees accepted
// records as done, acquired ones as available with their delivery count,
// and skips the control batch; 64 deltas fold into a snapshot.
func TestPartitionStateSurvivesReload(t *testing.T) {
	ctx := context.Background()
	st, lead := openStore(t)
	log := newTestLog(40, 5, 20)
	cfg := Config{LockDuration: time.Minute, DeliveryLimit: 3}
	earliest := func() (int64, error) { return 0, nil }
	p, err := load(ctx, st, "g", lead, cfg, earliest)
	if err != nil {
		t.Fatal(err)
	}
	_, rs, err := p.Acquire(ctx, "m1", 10, 1<<20, log.read)
	if err != nil || count(rs) != 10 || rs[0].First != 0 {
		t.Fatalf("first acquire: %v %v", rs, err)
	}
	// m2 gets the next records, never m1's.
	_, rs2, err := p.Acquire(ctx, "m2", 10, 1<<20, log.read)
	if err != nil || rs2[0].First != 10 {
		t.Fatalf("second acquire: %v %v", rs2, err)
	}
	if err := p.Acknowledge(ctx, "m2", []AckBatch{{First: 0, Last: 0, Types: []int8{AckAccept}}}, false); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("m2 acknowledging m1's record: %v, want ErrInvalidRecordState", err)
	}
	if err := p.Acknowledge(ctx, "m1", []AckBatch{{First: 0, Last: 9, Types: []int8{AckAccept}}}, false); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Start != 10 || s.Acquired != 10 {
		t.Fatalf("after accepting 0-9: %+v", s)
	}

	// A new leader loads what was stored: 0-9 done, m2's 10-19 available
	// again with delivery count 1.
	p2, err := load(ctx, st, "g", lead, cfg, earliest)
	if err != nil {
		t.Fatal(err)
	}
	_, rs3, err := p2.Acquire(ctx, "m3", 100, 1<<20, log.read)
	if err != nil {
		t.Fatal(err)
	}
	if rs3[0].First != 10 || rs3[0].Count != 2 {
		t.Fatalf("after reload, acquired %v; want 10-19 delivered a second time first", rs3)
	}
	// The control batch at offset 20 is never handed out.
	for _, r := range rs3 {
		if r.First <= 20 && r.Last >= 20 {
			t.Fatalf("control record 20 acquired: %v", rs3)
		}
	}
	if n := count(rs3); n != 30 { // 10-19 and 21-40 (the batches after the marker end at 40)
		t.Fatalf("acquired %d records after reload, want 30: %v", n, rs3)
	}
	if err := p2.Acknowledge(ctx, "m3", []AckBatch{{First: 10, Last: 39, Types: []int8{AckAccept}}}, false); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("acknowledging the control record 20: %v, want ErrInvalidRecordState", err)
	}
}

// TestPartitionSnapshots: every acknowledgement is a delta; every
// SnapshotEvery deltas they fold into the snapshot, and the stored state
// loads to the same window.
func TestPartitionSnapshots(t *testing.T) {
	ctx := context.Background()
	st, lead := openStore(t)
	log := newTestLog(200, 1, -1)
	p, err := load(ctx, st, "g", lead, Config{}, func() (int64, error) { return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, rs, err := p.Acquire(ctx, "m", 100, 1<<20, log.read); err != nil || count(rs) != 100 {
		t.Fatalf("acquired %v (%v)", rs, err)
	}
	for o := int64(0); o < 100; o++ {
		if err := p.Acknowledge(ctx, "m", []AckBatch{{First: o, Last: o, Types: []int8{AckAccept}}}, false); err != nil {
			t.Fatal(err)
		}
	}
	ld, err := st.LoadShareState(ctx, "g", lead.TopicID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ld.SnapRev == 0 || len(ld.Deltas) >= SnapshotEvery || ld.Snapshot.Seq < SnapshotEvery {
		t.Fatalf("snapshot seq %d with %d deltas after 101 writes: not folded", ld.Snapshot.Seq, len(ld.Deltas))
	}
	if s := StoredStats(ld); s.Start != 100 || s.InFlight != 0 {
		t.Fatalf("stored state %+v, want start 100 and nothing in flight", s)
	}
}

// TestPartitionFencedAndReset: a write under an old leadership fails with
// ErrFenced; an admin reset makes the next write fail so the state is
// loaded again at the new start offset.
func TestPartitionFencedAndReset(t *testing.T) {
	ctx := context.Background()
	st, lead := openStore(t)
	log := newTestLog(20, 5, -1)
	cfg := Config{LockDuration: time.Minute}
	m := NewManager(st)
	k := Key{Group: "g", Topic: lead.TopicID, Partition: 0}
	p, err := m.Partition(ctx, k, lead, cfg, func() (int64, error) { return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Acquire(ctx, "m", 5, 1<<20, log.read); err != nil {
		t.Fatal(err)
	}
	// Another node takes the partition over.
	lead2, err := st.AcquireLeadership(ctx, metadata.TP{Topic: "q", Partition: 0}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Acknowledge(ctx, "m", []AckBatch{{First: 0, Last: 4, Types: []int8{AckAccept}}}, false); !IsFenced(err) {
		t.Fatalf("acknowledge under the old leadership: %v, want ErrFenced", err)
	}
	// The new leader loads: 0-4 were acquired, not accepted: delivered
	// again.
	p2, err := m.Partition(ctx, k, lead2, cfg, func() (int64, error) { return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, rs, err := p2.Acquire(ctx, "m", 5, 1<<20, log.read); err != nil || rs[0].First != 0 || rs[0].Count != 2 {
		t.Fatalf("new leader acquired %v (%v), want 0-4 at delivery 2", rs, err)
	}
	// An admin moves the start to 15.
	if err := st.ResetShareState(ctx, "g", lead2.TopicID, 0, 15); err != nil {
		t.Fatal(err)
	}
	if err := p2.Acknowledge(ctx, "m", []AckBatch{{First: 0, Last: 4, Types: []int8{AckAccept}}}, false); !errors.Is(err, metadata.ErrShareStateChanged) {
		t.Fatalf("acknowledge after a reset: %v, want ErrShareStateChanged", err)
	}
	p3, err := m.Partition(ctx, k, lead2, cfg, func() (int64, error) { return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, rs, err := p3.Acquire(ctx, "m", 100, 1<<20, log.read); err != nil || rs[0].First != 15 {
		t.Fatalf("after the reset acquired %v (%v), want from 15", rs, err)
	}
}
