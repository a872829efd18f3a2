package query_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/segment/kbatch"
)

// benchBatches builds nb batches of per records shaped like typical events:
// a 16-byte key, a 100-byte value, one header.
func benchBatches(b *testing.B, nb, per int, codec kbatch.Codec) (batches [][]byte, rawBytes int) {
	b.Helper()
	for i := 0; i < nb; i++ {
		recs := make([]kbatch.Record, per)
		for j := range recs {
			n := i*per + j
			recs[j] = kbatch.Record{
				Timestamp: 1_767_225_600_000 + int64(n),
				Key:       []byte(fmt.Sprintf("user-%011d", n)),
				Value:     []byte(fmt.Sprintf(`{"n":%d,"page":"/p/%d","pad":"%s"}`, n, n%100, strings.Repeat("x", 60))),
				Headers:   []kbatch.RecordHeader{{Key: "source", Value: []byte("web")}},
			}
			rawBytes += len(recs[j].Key) + len(recs[j].Value) + 9
		}
		batch, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: codec})
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, batch)
	}
	return batches, rawBytes
}

// BenchmarkConvert measures decoding Kafka batches and converting their
// records to Arrow batches of the default schema: the CPU cost of every
// export surface, without I/O.
func BenchmarkConvert(b *testing.B) {
	for _, codec := range []kbatch.Codec{kbatch.None, kbatch.Zstd, kbatch.LZ4} {
		b.Run(codec.String(), func(b *testing.B) {
			const nb, per = 200, 500
			batches, raw := benchBatches(b, nb, per, codec)
			c := query.NewConverter(query.BatchOptions{})
			defer c.Release()
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, batch := range batches {
					recs, err := kbatch.Records(batch)
					if err != nil {
						b.Fatal(err)
					}
					for j := range recs {
						if c.Append("events", 0, &recs[j]) {
							c.Flush().Release()
						}
					}
				}
				if rec := c.Flush(); rec != nil {
					rec.Release()
				}
			}
			b.ReportMetric(float64(nb*per)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkHTTPStream reads a whole topic from a real node through the HTTP
// Arrow endpoint and decodes it on the client: object-store GETs, block
// and batch decompression, conversion, IPC encoding and decoding.
func BenchmarkHTTPStream(b *testing.B) {
	n := startNode(b)
	const parts, total = 3, 60_000
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	ctx := testContext(b)
	recs := make([]*kgo.Record, 0, 5000)
	for i := 0; i < total; i++ {
		recs = append(recs, &kgo.Record{Topic: "bench",
			Key:   []byte(fmt.Sprintf("user-%011d", i)),
			Value: []byte(fmt.Sprintf(`{"n":%d,"page":"/p/%d","pad":"%s"}`, i, i%100, strings.Repeat("x", 60)))})
		if len(recs) == cap(recs) {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	cl.Close()
	url := "http://" + n.HTTPAddr() + "/v1/topics/bench/arrow"
	b.ReportAllocs()
	b.ResetTimer()
	var wire int64
	for i := 0; i < b.N; i++ {
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
		if rd.Err() != nil || rows != total {
			b.Fatalf("%d rows, %v", rows, rd.Err())
		}
		rd.Release()
		resp.Body.Close()
		wire += cr.n
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(wire)/1e6/b.Elapsed().Seconds(), "ipcMB/s")
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
