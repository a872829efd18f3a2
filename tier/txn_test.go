package tier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// txnBatch builds a transactional batch of n records of producer pid.
func txnBatch(t *testing.T, pid int64, seq int32, n int, tag string) ([]byte, kbatch.Header) {
	t.Helper()
	recs := make([]kbatch.Record, n)
	for i := range recs {
		recs[i] = kbatch.Record{Timestamp: time.Now().UnixMilli(), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	b, err := kbatch.Build(recs, kbatch.BuildOptions{ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := kbatch.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs[0]
}

var verified = func(context.Context) error { return nil }

func appendTxnWait(t *testing.T, p *Partition, b []byte, h kbatch.Header) int64 {
	t.Helper()
	ctx := context.Background()
	base, wait, err := p.AppendTxn(ctx, b, h, verified)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
	return base
}

func markerWait(t *testing.T, p *Partition, m Marker) int64 {
	t.Helper()
	ctx := context.Background()
	base, wait, err := p.AppendMarker(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
	return base
}

// committedRead reads p at read_committed from offset 0 and returns the
// values of its data records (markers left out) and the aborted list.
func committedRead(t *testing.T, p *Partition) ([]string, []metadata.AbortedTxn, int64) {
	t.Helper()
	res, err := p.ReadIsolated(context.Background(), 0, 1<<20, true, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = kbatch.Iterate(res.Batches, func(h kbatch.Header, b []byte) error {
		if h.IsControl() {
			return nil
		}
		recs, err := kbatch.Records(b)
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, res.Aborted, res.LastStableOffset
}

// TestTransactionsSurviveTakeoverAndRoll: an aborted transaction's range
// and an open transaction (so the last stable offset) are in etcd, not in
// the leader's memory: a node taking over with an empty disk, after the
// roller rewrote the data into segment objects, reports the same LSO and
// aborted list, and a commit marker it writes releases the open
// transaction. Markers are taken once per transaction.
func TestTransactionsSurviveTakeoverAndRoll(t *testing.T) {
	e := newEnvConfigs(t, 1, map[string]string{"segment.bytes": "1000"})
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond})
	p := e.partition(tr, 0)
	// Enough plain records first for the roller to have something to do.
	fill(t, p, 40, "fill", time.Now().UnixMilli())
	o := p.HighWatermark()

	b, h := batch(t, 1, "before", time.Now().UnixMilli())
	if _, err := appendWait(t, p, b, h); err != nil { // o+0
		t.Fatal(err)
	}
	b, h = txnBatch(t, 7, 0, 2, "aborted") // o+1, o+2
	appendTxnWait(t, p, b, h)
	if at := markerWait(t, p, Marker{ProducerID: 7, Commit: false, Seq: 1}); at != o+3 {
		t.Fatalf("abort marker at %d, want %d", at, o+3)
	}
	b, h = txnBatch(t, 8, 0, 2, "open") // o+4, o+5
	appendTxnWait(t, p, b, h)
	b, h = batch(t, 1, "after", time.Now().UnixMilli())
	if _, err := appendWait(t, p, b, h); err != nil { // o+6
		t.Fatal(err)
	}
	// A transactional batch the coordinator did not verify is refused.
	b, h = txnBatch(t, 9, 0, 1, "unverified")
	if _, _, err := p.AppendTxn(context.Background(), b, h, func(context.Context) error { return ErrInvalidTxnState }); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("unverified transactional batch: %v, want ErrInvalidTxnState", err)
	}
	if _, _, err := p.Append(context.Background(), b, h); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("transactional batch through Append: %v, want ErrInvalidTxnState", err)
	}

	wantAborted := []metadata.AbortedTxn{{ProducerID: 7, First: o + 1, Last: o + 3}}
	check := func(p *Partition, when string) {
		t.Helper()
		got, aborted, lso := committedRead(t, p)
		want := fmt.Sprintf("[%d:before-0 %d:aborted-0 %d:aborted-1]", o, o+1, o+2)
		if lso != o+4 || int64(len(got)) != o+3 || fmt.Sprint(got[o:]) != want || fmt.Sprint(aborted) != fmt.Sprint(wantAborted) {
			t.Fatalf("%s: read_committed got %d records ending %v, aborted %v, LSO %d; want %d records ending %s, aborted %v, LSO %d",
				when, len(got), got[max(0, len(got)-3):], aborted, lso, o+3, want, wantAborted, o+4)
		}
		if hw := p.HighWatermark(); hw != o+7 {
			t.Fatalf("%s: high watermark %d, want %d", when, hw, o+7)
		}
	}
	check(p, "leader")

	tp := metadata.TP{Topic: e.topic, Partition: 0}
	waitFor(t, func() bool {
		es := tr.meta.IndexEntries(tp, 0)
		return len(es) > 0 && !isFlushObject(es[0].Object)
	})
	tr2 := e.tier(Config{MaintenanceInterval: time.Hour})
	p2 := e.partition(tr2, 0)
	check(p2, "new leader on an empty disk after the roll")

	// The coordinator commits the open transaction through the new leader.
	if at := markerWait(t, p2, Marker{ProducerID: 8, Commit: true, Seq: 1}); at != o+7 {
		t.Fatalf("commit marker at %d, want %d", at, o+7)
	}
	// A late duplicate of the same marker appends nothing.
	if at := markerWait(t, p2, Marker{ProducerID: 8, Commit: true, Seq: 1}); at != -1 || p2.HighWatermark() != o+8 {
		t.Fatalf("duplicate marker: at %d, high watermark %d; want nothing appended (%d)", at, p2.HighWatermark(), o+8)
	}
	got, aborted, lso := committedRead(t, p2)
	if lso != o+8 || int64(len(got)) != o+6 || fmt.Sprint(aborted) != fmt.Sprint(wantAborted) {
		t.Fatalf("after the commit: %d records, aborted %v, LSO %d; want %d data records, LSO %d", len(got), aborted, lso, o+6, o+8)
	}
	// DeleteRecords past the aborted range drops it from the index.
	if err := p2.DeleteRecords(context.Background(), o+5); err != nil {
		t.Fatal(err)
	}
	if a, err := tr2.meta.AbortedTxns(context.Background(), tp, 0); err != nil || len(a) != 0 {
		t.Fatalf("aborted index after DeleteRecords past it: %v, %v; want empty", a, err)
	}
}

// TestOpenTransactionHoldsRetention: DeleteRecords cannot move the log
// start past an open transaction's first offset.
func TestOpenTransactionHoldsDeleteRecords(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	b, h := batch(t, 2, "plain", 1)
	if _, err := appendWait(t, p, b, h); err != nil {
		t.Fatal(err)
	}
	b, h = txnBatch(t, 5, 0, 1, "open")
	appendTxnWait(t, p, b, h) // offset 2
	if err := p.DeleteRecords(context.Background(), 3); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("DeleteRecords past the open transaction: %v, want ErrOffsetOutOfRange", err)
	}
	if err := p.DeleteRecords(context.Background(), 2); err != nil {
		t.Fatalf("DeleteRecords up to the open transaction: %v", err)
	}
}

// TestMarkerStateIsCommittedWithItsGroup: a marker appended after its
// producer's batch's flush group was sealed belongs to a later group; the
// earlier group's commit must record the producer as it was before the
// marker (transaction open, no marker taken). Otherwise a new leader,
// after that later group is lost, would hold the transaction open and drop
// the coordinator's retried marker as a duplicate: the LSO would never
// move again.
func TestMarkerStateIsCommittedWithItsGroup(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	unblock, _ := stallFlusher(t, e, p)
	defer unblock()
	b, h := txnBatch(t, 7, 0, 1, "open")
	if _, _, err := p.AppendTxn(context.Background(), b, h, verified); err != nil {
		t.Fatal(err)
	}
	most := int64(tr.meta.MaxCommitProducers())
	for pid := int64(100); pid < 100+most; pid++ { // the last one seals the group
		b, h := idemBatch(t, pid, 0, 0, 1, fmt.Sprint(pid))
		if _, _, err := p.Append(context.Background(), b, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.AppendMarker(context.Background(), Marker{ProducerID: 7, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	sealed := len(p.sealed)
	p.mu.Unlock()
	if sealed != 1 {
		t.Fatalf("%d sealed groups, want 1 (the batch's group, before the marker's)", sealed)
	}
	pg, producers, _, _, ok := p.takePending()
	if !ok {
		t.Fatal("no pending group")
	}
	defer func() { p.t.buf.release(pg.g.bytes); pg.g.complete(ErrClosed) }()
	var states map[string]producerState
	if err := json.Unmarshal(producers, &states); err != nil {
		t.Fatal(err)
	}
	st := states["7"]
	if st.Txn == nil || *st.Txn != 1 || st.MarkerSeq != 0 {
		t.Fatalf("the batch's group commits producer 7 as %s; want its transaction open at 1 and no marker (the marker is in a later group)", producers)
	}
}

// TestDuplicateMarkerWaitsForTheFirst: a marker taken once and retried
// (the coordinator's next attempt) is answered durable only when the first
// copy is.
func TestDuplicateMarkerWaitsForTheFirst(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	b, h := txnBatch(t, 7, 0, 1, "t")
	appendTxnWait(t, p, b, h)
	unblock, _ := stallFlusher(t, e, p)
	m := Marker{ProducerID: 7, Commit: true, Seq: 1}
	_, first, err := p.AppendMarker(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	at, dup, err := p.AppendMarker(context.Background(), m)
	if err != nil || at != -1 {
		t.Fatalf("duplicate marker: at %d, %v; want nothing appended", at, err)
	}
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := dup(short); err == nil {
		t.Fatal("the duplicate marker's wait returned while the first copy was not durable")
	}
	unblock()
	waitAll(t, []func(context.Context) error{first, dup}, 10*time.Second)
}

// TestVerificationIgnoresOtherProducersMarkers: markers for other
// producers arriving while a producer's first transactional batch is being
// verified do not make it verify again; a marker for the same producer
// does.
func TestVerificationIgnoresOtherProducersMarkers(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	calls := 0
	b, h := txnBatch(t, 7, 0, 1, "mine")
	_, wait, err := p.AppendTxn(ctx, b, h, func(context.Context) error {
		calls++
		for i := range 5 {
			if _, _, err := p.AppendMarker(ctx, Marker{ProducerID: 50 + int64(i), Commit: true, Seq: 1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("append with other producers' markers during verification: %v after %d verifications; want success after 1", err, calls)
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
	calls = 0
	b, h = txnBatch(t, 8, 0, 1, "other")
	_, _, err = p.AppendTxn(ctx, b, h, func(context.Context) error {
		calls++
		if calls == 1 {
			_, _, err := p.AppendMarker(ctx, Marker{ProducerID: 8, Commit: false, Seq: 1})
			return err
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("append with its own producer's marker during verification: %v after %d verifications; want success after 2", err, calls)
	}
}
