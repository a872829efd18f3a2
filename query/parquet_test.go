package query

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/strata-io/strata/segment/kbatch"
)

// liveHeap returns the bytes of live heap objects: it collects garbage
// first, so the answer does not depend on the collector's pacing, and
// twice, so that sync.Pools (arrow-go's buffers, zstd encoders) no longer
// count what they merely cache.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakSink is a file that measures the live heap every MiB written to it,
// so a row group's being written (column after column, page after page) is
// measured in the middle, not only between batches.
type peakSink struct {
	f        *os.File
	written  int64
	sampled  int64
	peak     uint64
	nSamples int
}

func (s *peakSink) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.written += int64(n)
	if s.written-s.sampled >= 1<<20 {
		s.sample()
	}
	return n, err
}

func (s *peakSink) sample() {
	s.sampled = s.written
	s.nSamples++
	s.peak = max(s.peak, liveHeap())
}

// memRecord is row i of the memory test: no key, 100 bytes cut from src at
// a place that depends on i, one header on every tenth row.
func memRecord(src []byte, i int) kbatch.Record {
	at := (i * 7919) % (len(src) - 100)
	rec := kbatch.Record{Offset: int64(i), Timestamp: 1_767_225_600_000 + int64(i), Value: src[at : at+100]}
	if i%10 == 0 {
		rec.Headers = []kbatch.RecordHeader{{Key: "h", Value: src[at : at+3]}}
	}
	return rec
}

// writeMemParquet exports rows records of memRecord to path in batches of
// batchRows, with row groups of at most rgBytes, and returns the peak live
// heap above the live heap before it started.
func writeMemParquet(t *testing.T, path string, src []byte, rows, batchRows int, rgBytes int64) uint64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := liveHeap()
	sink := &peakSink{f: f}
	pw, err := newParquetWriter(sink, Schema, ParquetRowGroupRows, rgBytes)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConverter(BatchOptions{MaxRows: batchRows})
	write := func() {
		rec := c.Flush()
		if rec == nil {
			return
		}
		err := pw.Write(rec, 0)
		rec.Release() // the writer holds what it needs
		if err != nil {
			t.Fatal(err)
		}
		sink.sample()
	}
	for i := range rows {
		rec := memRecord(src, i)
		if c.Append("memtest", int32(i%3), &rec) {
			write()
		}
	}
	write()
	c.Release()
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	sink.sample()
	if sink.peak < base {
		return 0
	}
	return sink.peak - base
}

// TestParquetMemoryBounded exports a topic and one four times its size
// with the same (small) row group bound: the larger export must not need
// more memory, because the writer holds one row group, not the file. The
// live heap is measured after a collection at every MiB written and after
// every batch, not sampled by time, so the comparison is deterministic up
// to the collector's own bookkeeping. It also reads the files back: every
// row once, in order, in row groups within the bounds.
func TestParquetMemoryBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes heap measurements vary (sync.Pool drops items at random)")
	}
	const (
		rgBytes   = 4 << 20
		batchRows = 8 << 10
		small     = 64 << 10 // about 2 row groups of ~145-byte rows
	)
	src := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	dir := t.TempDir()
	// A first export warms what is allocated once (zstd encoders, pools).
	writeMemParquet(t, filepath.Join(dir, "warm.parquet"), src, small, batchRows, rgBytes)
	peakSmall := writeMemParquet(t, filepath.Join(dir, "small.parquet"), src, small, batchRows, rgBytes)
	peakLarge := writeMemParquet(t, filepath.Join(dir, "large.parquet"), src, 4*small, batchRows, rgBytes)
	t.Logf("peak live heap: %d rows %.1f MiB, %d rows %.1f MiB (row groups of %d MiB)",
		small, float64(peakSmall)/(1<<20), 4*small, float64(peakLarge)/(1<<20), rgBytes>>20)
	if peakLarge > peakSmall+max(peakSmall/4, 2<<20) {
		t.Errorf("exporting 4x the rows took %.1f MiB at peak, %.1f MiB for 1x: memory grows with the topic",
			float64(peakLarge)/(1<<20), float64(peakSmall)/(1<<20))
	}
	// One row group buffered, one batch being added, and the writer's own
	// buffers (a page per column, the compressor's window).
	if limit := uint64(2*rgBytes + 16<<20); peakLarge > limit {
		t.Errorf("peak live heap %.1f MiB, want at most %.1f MiB for row groups of %d MiB",
			float64(peakLarge)/(1<<20), float64(limit)/(1<<20), rgBytes>>20)
	}

	for _, c := range []struct {
		name string
		rows int
	}{{"small.parquet", small}, {"large.parquet", 4 * small}} {
		pf, err := file.OpenParquetFile(filepath.Join(dir, c.name), false)
		if err != nil {
			t.Fatal(err)
		}
		md := pf.MetaData()
		if md.NumRows != int64(c.rows) {
			t.Errorf("%s: %d rows, want %d", c.name, md.NumRows, c.rows)
		}
		// Row groups are cut on batch boundaries before they pass the
		// byte bound.
		wantGroups := (c.rows*145 + rgBytes - 1) / rgBytes
		if n := md.NumRowGroups(); n < wantGroups || n > 2*wantGroups {
			t.Errorf("%s: %d row groups, want about %d", c.name, n, wantGroups)
		}
		for i := range md.NumRowGroups() {
			if n := md.RowGroup(i).NumRows(); n%batchRows != 0 && i != md.NumRowGroups()-1 {
				t.Errorf("%s: row group %d has %d rows, not whole batches", c.name, i, n)
			}
		}
		if c.name == "small.parquet" {
			checkMemParquet(t, pf, src, c.rows)
		}
		pf.Close()
	}
}

// checkMemParquet reads pf back and compares every row with memRecord.
func checkMemParquet(t *testing.T, pf *file.Reader, src []byte, rows int) {
	t.Helper()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 10000}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 10000)
	defer tr.Release()
	i := 0
	for tr.Next() {
		rec := tr.RecordBatch()
		topic := rec.Column(colTopic).(*array.String)
		part := rec.Column(colPartition).(*array.Int32)
		off := rec.Column(colOffset).(*array.Int64)
		ts := rec.Column(colTimestamp).(*array.Timestamp)
		key := rec.Column(colKey).(*array.Binary)
		val := rec.Column(colValue).(*array.Binary)
		hl := rec.Column(colHeaders).(*array.List)
		hs := hl.ListValues().(*array.Struct)
		hv := hs.Field(1).(*array.Binary)
		for j := range int(rec.NumRows()) {
			want := memRecord(src, i)
			start, end := hl.ValueOffsets(j)
			ok := topic.Value(j) == "memtest" && part.Value(j) == int32(i%3) && off.Value(j) == want.Offset &&
				int64(ts.Value(j)) == want.Timestamp && key.IsNull(j) && bytes.Equal(val.Value(j), want.Value) &&
				int(end-start) == len(want.Headers)
			if ok && len(want.Headers) == 1 {
				ok = hs.Field(0).(*array.String).Value(int(start)) == "h" && bytes.Equal(hv.Value(int(start)), want.Headers[0].Value)
			}
			if !ok {
				t.Fatalf("row %d does not read back as written", i)
			}
			i++
		}
	}
	if i != rows {
		t.Errorf("read %d rows back, want %d", i, rows)
	}
}

var _ io.Writer = (*peakSink)(nil)

// cloneBatch deep-copies rec into fresh memory, as a new batch from a scan
// would be: a writer that kept batches it should have let go would show in
// the heap.
func cloneBatch(rec arrow.RecordBatch) arrow.RecordBatch {
	var clone func(d arrow.ArrayData) arrow.ArrayData
	clone = func(d arrow.ArrayData) arrow.ArrayData {
		bufs := make([]*memory.Buffer, len(d.Buffers()))
		for i, b := range d.Buffers() {
			if b != nil {
				bufs[i] = memory.NewBufferBytes(bytes.Clone(b.Bytes()))
			}
		}
		var children []arrow.ArrayData
		for _, c := range d.Children() {
			children = append(children, clone(c))
		}
		return newData(d.DataType(), d.Len(), bufs, children, d.NullN())
	}
	cols := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		d := clone(c.Data())
		cols[i] = array.MakeFromData(d)
		d.Release()
	}
	out := array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out
}

// BenchmarkParquetWriter writes batches of 64 Ki rows of 100-byte random
// values as Parquet: the encoding cost alone, and the memory the writer
// holds. peakLiveMiB, measured after the timed
// rounds by an export that collects garbage at every MiB written, must not
// grow with the row count: the writer holds one row group at most (about
// 450,000 such rows).
func BenchmarkParquetWriter(b *testing.B) {
	const batchRows = 64 << 10
	// Values that do not repeat within a page, so that they do not
	// compress (the pages of a column chunk are compressed apart).
	src := make([]byte, batchRows*100)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	c := NewConverter(BatchOptions{MaxRows: batchRows})
	for i := range batchRows {
		rec := kbatch.Record{Offset: int64(i), Timestamp: 1_767_225_600_000 + int64(i), Value: src[i*100 : (i+1)*100]}
		c.Append("bench100", int32(i%6), &rec)
	}
	tmpl := c.Flush()
	c.Release()
	defer tmpl.Release()
	// export writes total rows to w; fresh, each batch is a new copy of
	// tmpl (for the memory measure), else tmpl itself (for the timing,
	// which copying would distort).
	export := func(w io.Writer, total int, fresh bool, after func()) {
		pw, err := NewParquetWriter(w, tmpl.Schema())
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < total; n += batchRows {
			rec := tmpl
			if fresh {
				rec = cloneBatch(tmpl)
			} else {
				rec.Retain()
			}
			err := pw.Write(rec, 0)
			rec.Release()
			if err != nil {
				b.Fatal(err)
			}
			after()
		}
		if err := pw.Close(); err != nil {
			b.Fatal(err)
		}
		after()
	}
	for _, total := range []int{256 << 10, 512 << 10, 1 << 20, 2 << 20} {
		b.Run(fmt.Sprintf("rows=%d", total), func(b *testing.B) {
			b.SetBytes(int64(total) * 100)
			b.ReportAllocs()
			for b.Loop() {
				export(io.Discard, total, false, func() {})
			}
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.StopTimer()
			f, err := os.Create(filepath.Join(b.TempDir(), "bench.parquet"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			base := liveHeap()
			sink := &peakSink{f: f}
			export(sink, total, true, sink.sample)
			b.ReportMetric(float64(sink.peak-min(sink.peak, base))/(1<<20), "peakLiveMiB")
		})
	}
}
