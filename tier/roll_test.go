package tier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier/objstore"
)

// fill appends n durable batches of 10 records each and returns the values.
func fill(t *testing.T, p *Partition, n int, tag string, ts int64) []string {
	t.Helper()
	ctx := context.Background()
	var want []string
	for i := 0; i < n; i++ {
		b, h := batch(t, 10, fmt.Sprintf("%s%d", tag, i), ts)
		base, wait, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(ctx); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			want = append(want, fmt.Sprintf("%d:%s%d-%d", base+int64(j), tag, i, j))
		}
	}
	return want
}

func readAll(t *testing.T, p *Partition, from int64) []string {
	t.Helper()
	var out []string
	for cur := from; cur < p.HighWatermark(); {
		res, err := p.Read(context.Background(), cur, 64<<10, true)
		if err != nil {
			t.Fatalf("read at %d: %v", cur, err)
		}
		vs := values(t, res.Batches)
		if len(vs) == 0 {
			t.Fatalf("read at %d returned nothing below hw %d", cur, p.HighWatermark())
		}
		for _, v := range vs {
			var off int64
			fmt.Sscanf(v, "%d:", &off)
			if off >= cur {
				out = append(out, v)
			}
		}
		var last int64
		fmt.Sscanf(vs[len(vs)-1], "%d:", &last)
		cur = last + 1
	}
	return out
}

func listKeys(t *testing.T, b objstore.BucketReader, prefix string) []string {
	t.Helper()
	var keys []string
	if err := b.List(context.Background(), prefix, func(a objstore.Attrs) error {
		keys = append(keys, a.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestRollIntoSegmentObjects(t *testing.T) {
	e := newEnvConfigs(t, 1, map[string]string{"segment.bytes": "4000"})
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond})
	p := e.partition(tr, 0)
	now := time.Now().UnixMilli()
	want := fill(t, p, 60, "r", now)
	tp := metadata.TP{Topic: e.topic, Partition: 0}

	// Wait until the roller has turned most flush entries into segment entries.
	waitFor(t, func() bool {
		es := tr.meta.IndexEntries(tp, 0)
		return len(es) > 0 && !isFlushObject(es[0].Object) && len(es) < 30
	})
	if got := readAll(t, p, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after roll, read differs:\n got %d records\nwant %d", len(got), len(want))
	}
	if n := len(listKeys(t, e.bucket, "segments/")); n == 0 {
		t.Fatal("no segment objects written")
	}
	// A node with an empty disk reads the rolled segments (no hot tier).
	tr2 := e.tier(Config{MaintenanceInterval: time.Hour})
	p2 := e.partition(tr2, 0)
	if got := readAll(t, p2, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("new node reading rolled segments differs: got %d records, want %d", len(got), len(want))
	}
	// And ListOffsets by time still works through segment entries.
	if off, _, found, err := p2.OffsetForTimestamp(context.Background(), now+5); err != nil || !found || off != 5 {
		t.Fatalf("OffsetForTimestamp(now+5) on rolled data = %d, %v, %v; want 5", off, found, err)
	}
}

func TestRetentionBytesDeletesOldDataAndObjects(t *testing.T) {
	e := newEnvConfigs(t, 1, map[string]string{"retention.bytes": "3000"})
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond, SweepInterval: 20 * time.Millisecond, SweepGrace: 300 * time.Millisecond})
	p := e.partition(tr, 0)
	fill(t, p, 40, "old", time.Now().UnixMilli())
	hw := p.HighWatermark()
	waitFor(t, func() bool { return p.LogStartOffset() > 0 })
	if _, err := p.Read(context.Background(), 0, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v, want ErrOffsetOutOfRange", err)
	}
	// Retention keeps running; once it settles, etcd and the partition agree.
	waitFor(t, func() bool {
		st, err := tr.meta.PartitionState(context.Background(), metadata.TP{Topic: e.topic, Partition: 0})
		return err == nil && st.LogStartOffset == p.LogStartOffset()
	})
	// Data above the log start is intact. Retention may still move the log
	// start (it runs every 10 ms): the records read from one log start
	// are checked against that same one, read again if it moved meanwhile.
	for attempt := 0; ; attempt++ {
		ls := p.LogStartOffset()
		got, err := readFrom(t, p, ls)
		if moved := p.LogStartOffset() != ls; moved && attempt < 100 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("read from log start %d: %v", ls, err)
		}
		if int64(got) != hw-ls {
			t.Fatalf("retained %d records from log start %d, want %d", got, ls, hw-ls)
		}
		break
	}
	// Once the grace period passes, every object left is referenced.
	waitFor(t, func() bool {
		refs, err := tr.meta.ReferencedObjects(context.Background())
		if err != nil {
			return false
		}
		for _, k := range append(listKeys(t, e.bucket, "flush/"), listKeys(t, e.bucket, "segments/")...) {
			if _, ok := refs[k]; !ok {
				return false
			}
		}
		return true
	})
}

func TestSweepDeletesOnlyOldOrphans(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{SweepInterval: time.Hour, SweepGrace: 200 * time.Millisecond})
	p := e.partition(tr, 0)
	fill(t, p, 3, "keep", 1)
	ctx := context.Background()
	// An orphan: written, never committed (a node died between PUT and commit).
	orphan := fmt.Sprintf("flush/%013d-n9-deadbeef.sfo", time.Now().UnixMilli())
	if err := e.bucket.Put(ctx, orphan, []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	if n, err := tr.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep inside the grace period deleted %d (%v); want 0", n, err)
	}
	deadline := time.Now().Add(250 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // let the grace period pass
	}
	n, err := tr.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v); want just the orphan", n, err)
	}
	if _, err := e.bucket.Stat(ctx, orphan); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("orphan still there: %v", err)
	}
	for _, k := range listKeys(t, e.bucket, "flush/") {
		if strings.Contains(k, "deadbeef") {
			t.Fatal("orphan listed")
		}
	}
	// Committed data is untouched.
	tr2 := e.tier(Config{})
	if got := readAll(t, e.partition(tr2, 0), 0); len(got) != 30 {
		t.Fatalf("after sweep a new node reads %d records, want 30", len(got))
	}
}

func TestColdReadsShareOneGet(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	fill(t, p, 1, "cold", 1)
	// A node with an empty disk has no hot tier: reads go to the object store.
	tr2 := e.tier(Config{})
	p2 := e.partition(tr2, 0)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := p2.Read(context.Background(), 0, 1<<20, true); err != nil || len(values(t, res.Batches)) != 10 {
				t.Errorf("concurrent cold read: %v", err)
			}
		}()
	}
	wg.Wait()
	if gets := testutil.ToFloat64(tr2.metrics.objectGets); gets != 1 {
		t.Fatalf("8 concurrent and repeated cold reads of one run made %v GETs, want 1", gets)
	}
}

func TestRetentionKeepsAboutRetentionBytes(t *testing.T) {
	e := newEnvConfigs(t, 1, map[string]string{"retention.bytes": "200000", "segment.bytes": "100000"})
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond})
	p := e.partition(tr, 0)
	ctx := context.Background()
	// 20 batches of 100 incompressible 400-byte records, all in one flush.
	unblock := e.bucket.block()
	var waits []func(context.Context) error
	rng := uint64(1)
	for i := 0; i < 20; i++ {
		recs := make([]kbatch.Record, 100)
		for j := range recs {
			v := make([]byte, 400)
			for k := range v {
				rng = rng*6364136223846793005 + 1442695040888963407
				v[k] = byte(rng >> 56)
			}
			recs[j] = kbatch.Record{Timestamp: time.Now().UnixMilli(), Value: v}
		}
		b, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.None, ProducerID: -1})
		if err != nil {
			t.Fatal(err)
		}
		hs, _ := kbatch.Validate(b)
		_, wait, err := p.Append(ctx, b, hs[0])
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, wait)
	}
	unblock()
	for _, w := range waits {
		if err := w(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return p.LogStartOffset() > 0 })
	time.Sleep(100 * time.Millisecond) // let retention settle
	kept := p.HighWatermark() - p.LogStartOffset()
	// About 200 kB of 400-byte records is about 500; entries are ~100 kB.
	if kept < 250 || kept > 1000 {
		t.Fatalf("retention kept %d of 2000 records (log start %d); want about 500", kept, p.LogStartOffset())
	}
}

func TestMaxTimestampOffset(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	if _, _, found, err := p.MaxTimestampOffset(ctx); err != nil || found {
		t.Fatalf("empty partition: found %v, %v", found, err)
	}
	// Timestamps per batch of 3: 100.., 900.., 500..; the max is 902 at offset 5.
	for _, ts := range []int64{100, 900, 500} {
		b, h := batch(t, 3, "m", ts)
		_, wait, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	off, ts, found, err := p.MaxTimestampOffset(ctx)
	if err != nil || !found || off != 5 || ts != 902 {
		t.Fatalf("MaxTimestampOffset = %d, %d, %v, %v; want 5, 902", off, ts, found, err)
	}
}

// A roll or compaction that references its new object later than half the
// sweep grace after writing it gives up (the object stays an orphan): a
// reference landing after the grace could point at an object the sweeper
// already deleted.
func TestReferenceFreshGivesUpBeforeTheSweeperCouldDelete(t *testing.T) {
	tr := &Tier{cfg: Config{SweepGrace: 200 * time.Millisecond}}
	putAt := time.Now()
	var deadline time.Time
	err := tr.referenceFresh(context.Background(), putAt, func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		<-ctx.Done() // an etcd transaction that hangs
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if want := putAt.Add(100 * time.Millisecond); !deadline.Equal(want) {
		t.Fatalf("deadline %v after the put, want half the grace (100ms)", deadline.Sub(putAt))
	}
	if err := tr.referenceFresh(context.Background(), time.Now(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("a prompt reference failed: %v", err)
	}
}

// readFrom reads every record from offset from up to the high watermark
// and counts them, returning the first read error.
func readFrom(t *testing.T, p *Partition, from int64) (int, error) {
	n := 0
	for cur := from; cur < p.HighWatermark(); {
		res, err := p.Read(context.Background(), cur, 64<<10, true)
		if err != nil {
			return n, err
		}
		vs := values(t, res.Batches)
		if len(vs) == 0 {
			return n, fmt.Errorf("read at %d returned nothing below hw %d", cur, p.HighWatermark())
		}
		for _, v := range vs {
			var off int64
			fmt.Sscanf(v, "%d:", &off)
			if off >= cur {
				n++
			}
		}
		var last int64
		fmt.Sscanf(vs[len(vs)-1], "%d:", &last)
		cur = last + 1
	}
	return n, nil
}

// TestColdReadPrefetchesTheNextRuns: reading one run from the object store
// fetches the next readAheadRuns runs in the background, and no further.
func TestColdReadPrefetchesTheNextRuns(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	fill(t, e.partition(tr, 0), 6, "cold", 1) // six flushes: six runs of 10 records
	tr2 := e.tier(Config{})
	p2 := e.partition(tr2, 0)
	gets := func() float64 { return testutil.ToFloat64(tr2.metrics.objectGets) }
	if res, err := p2.Read(context.Background(), 0, 1, true); err != nil || len(values(t, res.Batches)) != 10 {
		t.Fatalf("cold read of the first run: %v", err)
	}
	waitFor(t, func() bool { return gets() == 1+readAheadRuns })
	time.Sleep(50 * time.Millisecond)
	if g := gets(); g != 1+readAheadRuns {
		t.Fatalf("%v GETs after reading one run, want %d (it and %d ahead)", g, 1+readAheadRuns, readAheadRuns)
	}
	// The next run is served from the prefetch and fetches one more.
	if res, err := p2.Read(context.Background(), 10, 1, true); err != nil || len(values(t, res.Batches)) != 10 {
		t.Fatalf("cold read of the second run: %v", err)
	}
	waitFor(t, func() bool { return gets() == 2+readAheadRuns })
}
