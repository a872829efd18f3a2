package tier

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
	"github.com/strata-io/strata/segment/kbatch"
)

// readKeyed reads p from offset 0 to its high watermark and returns every
// record, failing the test if offsets do not increase.
func readKeyed(t *testing.T, p *Partition) []kbatch.Record {
	t.Helper()
	var out []kbatch.Record
	cur := int64(0)
	for {
		res, err := p.Read(context.Background(), cur, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) == 0 {
			if cur < res.HighWatermark {
				t.Fatalf("read at %d (high watermark %d) returned nothing", cur, res.HighWatermark)
			}
			return out
		}
		err = kbatch.Iterate(res.Batches, func(h kbatch.Header, b []byte) error {
			recs, err := kbatch.Records(b)
			for _, r := range recs {
				if r.Offset < cur {
					continue
				}
				if n := len(out); n > 0 && r.Offset <= out[n-1].Offset {
					t.Fatalf("offset %d after %d", r.Offset, out[n-1].Offset)
				}
				r.Key, r.Value = append([]byte(nil), r.Key...), append([]byte(nil), r.Value...)
				if r.Value == nil {
					r.Value = nil
				}
				out = append(out, r)
			}
			cur = h.LastOffset() + 1
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompactionKeepsTheLatestValuePerKey produces random puts and deletes
// over 300 keys in batches of every codec to a compacted topic, lets the
// roller and the compactor run, and checks, on the leader and on a node
// with an empty disk (which reads the compacted segment objects): every
// key's last record read is its latest value (a deleted key is gone or a
// tombstone), offsets only increase, and the log did shrink.
func TestCompactionKeepsTheLatestValuePerKey(t *testing.T) {
	e := newEnvConfigs(t, 1, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0",
	})
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond})
	p := e.partition(tr, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	latest := map[string]*string{} // nil: deleted
	codecs := []kbatch.Codec{kbatch.None, kbatch.Gzip, kbatch.Snappy, kbatch.LZ4, kbatch.Zstd}
	produced := 0
	for b := 0; b < 300; b++ {
		recs := make([]kbatch.Record, 10)
		for i := range recs {
			k := fmt.Sprintf("key-%03d", rng.IntN(300))
			recs[i] = kbatch.Record{Key: []byte(k), Timestamp: time.Now().UnixMilli()}
			if rng.IntN(5) == 0 {
				latest[k] = nil
			} else {
				v := fmt.Sprintf("%s=%d", k, b*10+i)
				recs[i].Value = []byte(v)
				latest[k] = &v
			}
		}
		batch, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: codecs[b%len(codecs)]})
		if err != nil {
			t.Fatal(err)
		}
		hs, err := kbatch.Validate(batch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := appendWait(t, p, batch, hs[0]); err != nil {
			t.Fatal(err)
		}
		produced += len(recs)
	}
	tp := metadata.TP{Topic: e.topic, Partition: 0}
	waitFor(t, func() bool {
		st, err := tr.meta.Compaction(context.Background(), tp)
		return err == nil && st.Passes > 0 && st.Cleaned > int64(produced)/2
	})
	check := func(p *Partition, when string) int {
		t.Helper()
		recs := readKeyed(t, p)
		last := map[string]kbatch.Record{}
		for _, r := range recs {
			last[string(r.Key)] = r
		}
		for k, v := range latest {
			r, ok := last[k]
			switch {
			case v == nil && ok && r.Value != nil:
				t.Fatalf("%s: deleted key %s reads as %q", when, k, r.Value)
			case v != nil && (!ok || string(r.Value) != *v):
				t.Fatalf("%s: key %s reads as %q (present %v), want %q", when, k, r.Value, ok, *v)
			}
		}
		return len(recs)
	}
	if n := check(p, "leader"); n >= produced {
		t.Fatalf("the leader reads %d records of %d produced: it serves its uncompacted local segments", n, produced)
	}
	tr2 := e.tier(Config{MaintenanceInterval: time.Hour})
	n := check(e.partition(tr2, 0), "a node with an empty disk")
	if n >= produced {
		t.Fatalf("compacted log holds %d records of %d produced: nothing was compacted", n, produced)
	}
	st, _ := tr.meta.Compaction(context.Background(), tp)
	t.Logf("%d records produced, %d read back after %d passes (read %d B, wrote %d B, %d PUTs)", produced, n, st.Passes, st.BytesRead, st.BytesWritten, st.Puts)
}

// BenchmarkCompaction rolls 16 MiB of 1 KiB records over 4,000 keys (each
// key written 4 times) into segment objects, then times one compaction
// pass over all of it (fs store), and reports input MB/s, what the pass
// read per input byte (the key map's read of the dirty part, then the
// rewrite's), and what it wrote per GB of input: bytes and PUTs.
func BenchmarkCompaction(b *testing.B) {
	for range b.N {
		b.StopTimer()
		e := newEnvWith(b, 1, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"}, 0)
		tr := e.tier(Config{MaintenanceInterval: time.Hour})
		p := e.partition(tr, 0)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(3, 4))
		var waits []func(context.Context) error
		for i := 0; i < 16*1024; i += 16 {
			recs := make([]kbatch.Record, 16)
			for j := range recs {
				value := make([]byte, 1024)
				for k := 0; k < len(value); k += 8 {
					v := rng.Uint64()
					for m := 0; m < 8; m++ {
						value[k+m] = byte(v >> (8 * m))
					}
				}
				recs[j] = kbatch.Record{Key: []byte(fmt.Sprintf("key-%05d", (i+j)%4000)), Value: value, Timestamp: 1}
			}
			batch, _ := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.Zstd})
			hs, _ := kbatch.Validate(batch)
			_, wait, err := p.Append(ctx, batch, hs[0])
			if err != nil {
				b.Fatal(err)
			}
			waits = append(waits, wait)
		}
		for _, w := range waits {
			if err := w(ctx); err != nil {
				b.Fatal(err)
			}
		}
		topic, _ := tr.meta.Topic(e.topic)
		tc := topiccfg.Parse(topic.Configs)
		later := time.Now().Add(time.Hour)
		for {
			rolled, err := p.roll(ctx, tc, later)
			if err != nil {
				b.Fatal(err)
			}
			if !rolled {
				break
			}
		}
		var input int64
		for _, e := range tr.meta.IndexEntries(metadata.TP{Topic: e.topic, Partition: 0}, 0) {
			input += e.Size
		}
		b.StartTimer()
		start := time.Now()
		if ran, err := p.compact(ctx, tc, later); err != nil || !ran {
			b.Fatalf("compaction pass: ran %v, %v", ran, err)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		st, err := tr.meta.Compaction(ctx, metadata.TP{Topic: e.topic, Partition: 0})
		if err != nil {
			b.Fatal(err)
		}
		gb := float64(input) / (1 << 30)
		b.ReportMetric(float64(input)/(1<<20)/elapsed.Seconds(), "input_MB/s")
		b.ReportMetric(float64(st.BytesRead)/float64(input), "read_per_input_byte")
		b.ReportMetric(float64(st.BytesWritten)/(1<<20)/gb, "written_MB/GB")
		b.ReportMetric(float64(st.Puts)/gb, "PUTs/GB")
		b.ReportMetric(float64(st.RecordsOut)/float64(st.RecordsIn), "kept_ratio")
	}
}

// TestCompactionDropsAbortedDataAndOldMarkers: compaction drops an aborted
// transaction's records at once, and transaction markers once they are in
// the clean part and older than delete.retention.ms; a committed
// transaction's records stay.
func TestCompactionDropsAbortedDataAndOldMarkers(t *testing.T) {
	e := newEnvConfigs(t, 1, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0",
	})
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond})
	p := e.partition(tr, 0)
	keyed := func(pid int64, seq int32, key, value string) ([]byte, kbatch.Header) {
		opts := kbatch.BuildOptions{}
		if pid > 0 {
			opts = kbatch.BuildOptions{ProducerID: pid, BaseSequence: seq, Transactional: true}
		}
		b, err := kbatch.Build([]kbatch.Record{{Key: []byte(key), Value: []byte(value), Timestamp: time.Now().UnixMilli()}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := kbatch.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		return b, hs[0]
	}
	fillKeys := func(prefix string, n int) {
		for i := range n {
			b, h := keyed(0, 0, fmt.Sprintf("%s-%d", prefix, i), "filler")
			if _, err := appendWait(t, p, b, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, h := keyed(7, 0, "x", "aborted")
	appendTxnWait(t, p, b, h)
	markerWait(t, p, Marker{ProducerID: 7, Commit: false, Seq: 1})
	b, h = keyed(8, 0, "y", "committed")
	appendTxnWait(t, p, b, h)
	markerWait(t, p, Marker{ProducerID: 8, Commit: true, Seq: 1})
	fillKeys("a", 40)
	tp := metadata.TP{Topic: e.topic, Partition: 0}
	waitFor(t, func() bool {
		st, err := tr.meta.Compaction(context.Background(), tp)
		return err == nil && st.Cleaned > 10
	})
	fillKeys("b", 40) // a later pass finds the markers in the clean part
	waitFor(t, func() bool {
		st, err := tr.meta.Compaction(context.Background(), tp)
		return err == nil && st.Cleaned > 60
	})
	tr2 := e.tier(Config{MaintenanceInterval: time.Hour})
	p2 := e.partition(tr2, 0)
	res, err := p2.Read(context.Background(), 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	markers, values := 0, map[string]string{}
	cur := int64(0)
	for cur < p2.HighWatermark() {
		res, err = p2.Read(context.Background(), cur, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) == 0 {
			break
		}
		err = kbatch.Iterate(res.Batches, func(h kbatch.Header, b []byte) error {
			cur = h.LastOffset() + 1
			if h.IsControl() {
				markers++
				return nil
			}
			recs, err := kbatch.Records(b)
			for _, r := range recs {
				values[string(r.Key)] = string(r.Value)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := values["x"]; ok || values["y"] != "committed" || markers != 0 {
		t.Fatalf("after compaction: x=%q (aborted: want gone), y=%q (want committed), %d markers (want 0)", values["x"], values["y"], markers)
	}
}
