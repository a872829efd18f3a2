package query_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	pqmetadata "github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/segment/kbatch"
)

// The export benchmarks read the topic of the performance targets: 100-byte
// incompressible values, empty keys, 6 partitions, produced by franz-go
// with its default batching (and default snappy compression, which franz-go
// drops for batches it cannot shrink). STRATA_BENCH_ROWS changes the row
// count (default 1,000,000).
const (
	benchTopic      = "bench100"
	benchPartitions = 6
	benchValueSize  = 100
)

// benchRows is the size of the shared benchmark topic.
func benchRows(tb testing.TB) int {
	if s := os.Getenv("STRATA_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			tb.Fatalf("STRATA_BENCH_ROWS=%q", s)
		}
		return n
	}
	return 1_000_000
}

// sharedBench is one node holding the benchmark topic, made by the first
// benchmark that needs it and closed by TestMain, so that several
// benchmarks (and their b.N rounds) do not each produce a million records.
var sharedBench struct {
	sync.Mutex
	node  *node.Node
	rows  int
	dir   string
	close func()
}

// closeSharedBench stops the shared benchmark node, if one was started.
func closeSharedBench() {
	sharedBench.Lock()
	defer sharedBench.Unlock()
	if sharedBench.close != nil {
		sharedBench.close()
		sharedBench.close = nil
	}
}

// benchNode returns the node holding benchTopic with rows records.
func benchNode(b *testing.B) (*node.Node, int) {
	b.Helper()
	rows := benchRows(b)
	sharedBench.Lock()
	defer sharedBench.Unlock()
	if sharedBench.node != nil && sharedBench.rows == rows {
		return sharedBench.node, rows
	}
	if sharedBench.close != nil {
		sharedBench.close()
	}
	dir, err := os.MkdirTemp("", "strata-query-bench-*")
	if err != nil {
		b.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = dir
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlightAddr = "127.0.0.1:0"
	cfg.DefaultPartitions = benchPartitions
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		os.RemoveAll(dir)
		b.Fatalf("start node: %v", err)
	}
	sharedBench.node, sharedBench.rows, sharedBench.dir = n, rows, dir
	sharedBench.close = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
		os.RemoveAll(dir)
		sharedBench.node = nil
	}
	start := time.Now()
	produceRandom(b, ctx, n.KafkaAddr(), benchTopic, rows, benchValueSize)
	b.Logf("produced %d records of %d random bytes to %d partitions in %v", rows, benchValueSize, benchPartitions, time.Since(start).Round(time.Millisecond))
	// One untimed read warms the page cache and lets the node finish the
	// work producing left behind (flushes, index updates), so the first
	// timed round is not slower than the rest.
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/topics/" + benchTopic + "/arrow")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return n, rows
}

// produceRandom produces rows records with no key and a value of size
// random bytes, with franz-go's default batching.
func produceRandom(tb testing.TB, ctx context.Context, addr, topic string, rows, size int) {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	buf := make([]byte, size*4096)
	for i := 0; i < rows; i++ {
		j := i % 4096
		if j == 0 {
			buf = make([]byte, size*4096) // the client holds the old one until acked
			rand.Read(buf)
		}
		cl.Produce(ctx, &kgo.Record{Value: buf[j*size : (j+1)*size : (j+1)*size]}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	if p := failed.Load(); p != nil {
		tb.Fatalf("produce: %v", *p)
	}
}

// heapPeak samples the live heap as of the last garbage collection
// (runtime/metrics /gc/heap/live:bytes, no stop-the-world) every
// millisecond until Stop, and returns the highest sample above the live
// heap at the start. Unlike the heap in use, it leaves out garbage not yet
// collected, whose amount depends on the collector's pacing, not on what
// the code holds.
type heapPeak struct {
	stop chan struct{}
	done chan struct{}
	base uint64
	peak uint64
}

const heapLive = "/gc/heap/live:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapLive}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{}), done: make(chan struct{}), base: heapNow()}
	go func() {
		defer close(h.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := heapNow(); v > h.peak {
				h.peak = v
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop ends the sampling and returns the peak above the starting heap.
func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	<-h.done
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}

// BenchmarkHTTPStream100B reads the benchmark topic through the HTTP Arrow
// endpoint and decodes it on the client (both in this process, sharing the
// cores): the first target of the performance issue.
func BenchmarkHTTPStream100B(b *testing.B) {
	n, total := benchNode(b)
	url := "http://" + n.HTTPAddr() + "/v1/topics/" + benchTopic + "/arrow"
	b.SetBytes(int64(total) * benchValueSize)
	b.ReportAllocs()
	b.ResetTimer()
	var wire int64
	var peak uint64
	for i := 0; i < b.N; i++ {
		hp := startHeapPeak()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		cr := &countReader{r: resp.Body}
		rd, err := ipc.NewReader(cr)
		if err != nil {
			b.Fatal(err)
		}
		rows := int64(0)
		for rd.Next() {
			rows += rd.RecordBatch().NumRows()
		}
		if rd.Err() != nil || rows != int64(total) {
			b.Fatalf("%d rows, %v", rows, rd.Err())
		}
		rd.Release()
		resp.Body.Close()
		wire += cr.n
		peak = max(peak, hp.Stop())
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(wire)/1e6/b.Elapsed().Seconds(), "ipcMB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peakLiveMiB")
}

// BenchmarkParquetHTTP100B downloads the benchmark topic from the HTTP
// Parquet endpoint (conversion and Parquet encoding on the node, the client
// only counts bytes and checks the footer's row count): the Parquet export
// target, and its memory.
func BenchmarkParquetHTTP100B(b *testing.B) {
	n, total := benchNode(b)
	url := "http://" + n.HTTPAddr() + "/v1/topics/" + benchTopic + "/parquet"
	b.SetBytes(int64(total) * benchValueSize)
	b.ReportAllocs()
	b.ResetTimer()
	var size int64
	var peak uint64
	for i := 0; i < b.N; i++ {
		hp := startHeapPeak()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		tw := &tailWriter{}
		nb, err := io.Copy(tw, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s, %v", url, resp.Status, err)
		}
		if rows, err := parquetFooterRows(tw.buf); err != nil || rows != int64(total) {
			b.Fatalf("parquet footer: %d rows, %v; want %d", rows, err, total)
		}
		size += nb
		peak = max(peak, hp.Stop())
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(size)/float64(b.N)/1e6, "fileMB")
	b.ReportMetric(float64(peak)/(1<<20), "peakLiveMiB")
}

// tailWriter keeps the last 1 MiB written to it: enough for a footer.
type tailWriter struct{ buf []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	const keep = 1 << 20
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*keep {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
	}
	return len(p), nil
}

// parquetFooterRows reads the row count from the footer at the end of b.
func parquetFooterRows(b []byte) (int64, error) {
	if len(b) < 8 || string(b[len(b)-4:]) != "PAR1" {
		return 0, fmt.Errorf("no PAR1 trailer")
	}
	n := int(uint32(b[len(b)-8]) | uint32(b[len(b)-7])<<8 | uint32(b[len(b)-6])<<16 | uint32(b[len(b)-5])<<24)
	if n > len(b)-8 {
		return 0, fmt.Errorf("footer of %d bytes, %d kept", n, len(b)-8)
	}
	md, err := pqmetadata.NewFileMetaData(b[len(b)-8-n:len(b)-8], nil)
	if err != nil {
		return 0, err
	}
	return md.NumRows, nil
}

// BenchmarkConvert100B decodes Kafka batches of records of benchmark shape
// (no key, 100 random bytes, no headers; 1,000 records a batch) and converts
// them to Arrow batches: the per-record CPU cost of every export surface.
func BenchmarkConvert100B(b *testing.B) {
	for _, codec := range []kbatch.Codec{kbatch.None, kbatch.Snappy} {
		b.Run(codec.String(), func(b *testing.B) {
			const nb, per = 100, 1000
			vals := make([]byte, nb*per*benchValueSize)
			rand.Read(vals)
			var batches [][]byte
			for i := 0; i < nb; i++ {
				recs := make([]kbatch.Record, per)
				for j := range recs {
					k := i*per + j
					recs[j] = kbatch.Record{Timestamp: 1_767_225_600_000 + int64(k), Value: vals[k*benchValueSize : (k+1)*benchValueSize]}
				}
				batch, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: codec})
				if err != nil {
					b.Fatal(err)
				}
				batches = append(batches, batch)
			}
			c := query.NewConverter(query.BatchOptions{})
			defer c.Release()
			b.SetBytes(nb * per * benchValueSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, batch := range batches {
					recs, err := kbatch.Records(batch)
					if err != nil {
						b.Fatal(err)
					}
					for j := range recs {
						if c.Append(benchTopic, 0, &recs[j]) {
							c.Flush().Release()
						}
					}
				}
				if rec := c.Flush(); rec != nil {
					rec.Release()
				}
			}
			b.ReportMetric(float64(nb*per)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
