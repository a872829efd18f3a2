package query_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/segment/kbatch"
)

// TestConverterRoundTrip converts records of every shape (null, empty and
// long keys and values, up to four headers with null values) under several
// row and byte bounds, so that buffers start small, grow mid-batch, are
// handed over and reused (or not, while the batches are held), and checks
// every row, the batch bounds, and that every buffer is released (a
// checked allocator).
func TestConverterRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	blob := make([]byte, 3000)
	for i := range blob {
		blob[i] = byte(rng.Uint32())
	}
	bytesOf := func(i int) []byte {
		switch rng.IntN(6) {
		case 0:
			return nil
		case 1:
			return []byte{}
		case 2:
			n := rng.IntN(len(blob))
			return blob[:n] // up to 3 KB: makes buffers grow mid-batch
		default:
			return []byte(fmt.Sprintf("v%d-%s", i, bytes.Repeat([]byte("x"), rng.IntN(200))))
		}
	}
	var recs []kbatch.Record
	for i := range 4000 {
		r := kbatch.Record{Offset: int64(i) * 3, Timestamp: 1_767_225_600_000 - int64(i), Key: bytesOf(i), Value: bytesOf(i)}
		for h := range rng.IntN(5) {
			r.Headers = append(r.Headers, kbatch.RecordHeader{Key: fmt.Sprintf("h%d", h), Value: bytesOf(i)})
		}
		recs = append(recs, r)
	}
	for _, o := range []struct{ rows, bytes int }{{1, 0}, {7, 0}, {1000, 0}, {0, 100 << 10}, {0, 0}, {1200, 1 << 20}} {
		t.Run(fmt.Sprintf("rows=%d,bytes=%d", o.rows, o.bytes), func(t *testing.T) {
			for _, alloc := range []string{"recycled", "held", "checked"} {
				opts := query.BatchOptions{MaxRows: o.rows, MaxBytes: o.bytes}
				var mem *memory.CheckedAllocator
				if alloc == "checked" {
					mem = memory.NewCheckedAllocator(memory.NewGoAllocator())
					opts.Allocator = mem
				}
				c := query.NewConverter(opts)
				var got []row
				var held []arrow.RecordBatch // "held": read at the end, so no buffer may be reused early
				batches := 0
				flush := func() {
					rec := c.Flush()
					if rec == nil {
						return
					}
					if o.rows > 0 && rec.NumRows() > int64(o.rows) {
						t.Errorf("batch of %d rows, bound %d", rec.NumRows(), o.rows)
					}
					batches++
					if alloc == "held" {
						held = append(held, rec)
						return
					}
					got = append(got, rowsOf(t, rec)...)
					rec.Release()
				}
				for i := range recs {
					// Each partition's records come in their own batches.
					p := int32(i / 1500)
					if i%1500 == 0 {
						flush()
					}
					if c.Append("conv", p, &recs[i]) {
						flush()
					}
				}
				flush()
				c.Release()
				for _, rec := range held {
					got = append(got, rowsOf(t, rec)...)
					rec.Release()
				}
				if mem != nil {
					mem.AssertSize(t, 0)
				}
				want := make([]row, len(recs))
				for i := range recs {
					r := &recs[i]
					k := &kgo.Record{Topic: "conv", Partition: int32(i / 1500), Offset: r.Offset, Key: r.Key, Value: r.Value}
					for _, h := range r.Headers {
						k.Headers = append(k.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
					}
					want[i] = fromKgo(k)
					want[i].Timestamp = r.Timestamp
				}
				diffRows(t, alloc, got, want)
				if o.rows == 1 && batches != len(recs) {
					t.Errorf("%d batches of one row for %d records", batches, len(recs))
				}
			}
		})
	}
}

// TestHTTPParquet downloads topics as Parquet and reads them back with
// arrow-go's reader: every record of every shape, each column as the Arrow
// stream has it, compressed with zstd.
func TestHTTPParquet(t *testing.T) {
	n := startNode(t)
	const topic, parts, per = "pq", 3, 400
	recs := produce(t, n.KafkaAddr(), topic, parts, per)
	for _, c := range []struct {
		name   string
		params url.Values
		keep   func(r *kgo.Record) bool
	}{
		{"everything", url.Values{}, nil},
		{"one partition, small batches", url.Values{"partition": {"1"}, "batch_rows": {"13"}}, func(r *kgo.Record) bool { return r.Partition == 1 }},
		{"offset range", url.Values{"partition": {"0,2"}, "from": {"100"}, "to": {"300"}},
			func(r *kgo.Record) bool { return r.Partition != 1 && r.Offset >= 100 && r.Offset < 300 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := fmt.Sprintf("http://%s/v1/topics/%s/parquet?%s", n.HTTPAddr(), topic, c.params.Encode())
			req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s %v: %.200s", u, resp.Status, err, data)
			}
			pf, err := file.NewParquetReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			if cc, err := pf.MetaData().RowGroup(0).ColumnChunk(5); err != nil || cc.Compression().String() != "ZSTD" {
				t.Errorf("value column chunk %v (%v), want ZSTD", cc, err)
			}
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 100}, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Release()
			tr := array.NewTableReader(tbl, 100)
			defer tr.Release()
			var got []row
			for tr.Next() {
				got = append(got, rowsOf(t, asSchema(t, tr.RecordBatch()))...)
			}
			// Partitions in turn, each in offset order, as in the Arrow
			// stream.
			for i := 1; i < len(got); i++ {
				a, b := got[i-1], got[i]
				if a.Partition > b.Partition || a.Partition == b.Partition && a.Offset >= b.Offset {
					t.Fatalf("row %d (%d/%d) after row %d (%d/%d)", i, b.Partition, b.Offset, i-1, a.Partition, a.Offset)
				}
			}
			diffRows(t, c.name, got, wantRows(recs, c.keep))
		})
	}
}

// asSchema relabels a batch read back from Parquet with query.Schema:
// Parquet names a list's element "element" where Arrow says "item"; the
// data must be the same.
func asSchema(t testing.TB, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	if rec.NumCols() != int64(len(query.Schema.Fields())) {
		t.Fatalf("%d columns, want %d", rec.NumCols(), len(query.Schema.Fields()))
	}
	cols := make([]arrow.Array, rec.NumCols())
	for i, f := range query.Schema.Fields() {
		d := rec.Column(i).Data()
		got := d.DataType().String()
		if i == 6 {
			got = bytes.NewBufferString(got).String()
		}
		nd := array.NewData(f.Type, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
		cols[i] = array.MakeFromData(nd)
		nd.Release()
	}
	out := array.NewRecordBatch(query.Schema, cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	t.Cleanup(out.Release)
	return out
}

// TestScanArrowOrderAndErrors drives ScanArrow with several partitions read
// at once (GOMAXPROCS raised so that it starts a worker per partition):
// batches come a partition at a time in offset order whatever the workers'
// pace; an error from fn or a cancelled context stops it with that error,
// the bounds of the partitions delivered in full, and every batch released
// (a checked allocator), with no goroutine left (TestMain).
func TestScanArrowOrderAndErrors(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	e := newReaderEnv(t)
	const topic, parts, per = "order", 3, 500
	recs := produce(t, e.node.KafkaAddr(), topic, parts, per)
	ctx := testContext(t)
	r := query.New(e.meta, e.bucket, nil)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := r.Topic(topic); err == nil || time.Now().After(deadline) {
			break
		}
	}
	scan := func(ctx context.Context, partitions []int32, fn func(int, arrow.RecordBatch) error) ([]query.Bounds, []row, error) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		var got []row
		n := 0
		b, err := r.ScanArrow(ctx, topic, partitions, query.Range{}, query.BatchOptions{MaxRows: 37, Allocator: mem}, func(rec arrow.RecordBatch) error {
			n++
			got = append(got, rowsOf(t, rec)...)
			return fn(n, rec)
		})
		return b, got, err
	}

	b, got, err := scan(ctx, []int32{2, 0, 1}, func(int, arrow.RecordBatch) error { return nil })
	if err != nil || len(b) != 3 {
		t.Fatalf("ScanArrow: %d bounds, %v", len(b), err)
	}
	order := map[int32]int{2: 0, 0: 1, 1: 2}
	for i := 1; i < len(got); i++ {
		a, c := got[i-1], got[i]
		if order[a.Partition] > order[c.Partition] || a.Partition == c.Partition && a.Offset >= c.Offset {
			t.Fatalf("row %d (%d/%d) after row %d (%d/%d): want partitions 2, 0, 1 in turn, each in offset order", i, c.Partition, c.Offset, i-1, a.Partition, a.Offset)
		}
	}
	sortRows(got)
	diffRows(t, "all partitions", got, wantRows(recs, nil))

	stop := errors.New("enough")
	b, got, err = scan(ctx, nil, func(n int, _ arrow.RecordBatch) error {
		if n == 20 { // partition 0 is 14 batches (13 of 37 rows and one of 19)
			return stop
		}
		return nil
	})
	if want := per + 6*37; err != stop || len(b) != 1 || len(got) != want {
		t.Errorf("fn error: %v, %d bounds, %d rows; want %v, 1, %d", err, len(b), len(got), stop, want)
	}

	cctx, cancel := context.WithCancel(ctx)
	b, _, err = scan(cctx, nil, func(n int, _ arrow.RecordBatch) error {
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(b) != 0 {
		t.Errorf("cancelled: %v, %d bounds; want context.Canceled and none", err, len(b))
	}
}
