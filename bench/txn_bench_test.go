package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkTransactions produces b.N units of 100 records of 1 KiB, spread
// round-robin over 6 partitions of one node (fs store), from one franz-go
// client, and reports records/s and the p50/p99 time of a unit:
//   - idempotent: produce the 100 records and wait for every ack (Flush),
//     the plain idempotent acks=all baseline;
//   - transactional: Begin, produce, Flush, EndTransaction(commit), so a
//     unit also pays AddPartitionsToTxn and the markers' durable commit.
func BenchmarkTransactions(b *testing.B) {
	for _, mode := range []string{"idempotent", "transactional"} {
		b.Run(mode, func(b *testing.B) {
			const size, perTxn = 1024, 100
			n := startNode(b, "txbench", 6)
			opts := []kgo.Opt{kgo.SeedBrokers(n.KafkaAddr()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(time.Millisecond)}
			if mode == "transactional" {
				opts = append(opts, kgo.TransactionalID("bench-txn"))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := testCtx(b)
			value := make([]byte, size)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.SetBytes(size * perTxn)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				t0 := time.Now()
				if mode == "transactional" {
					if err := cl.BeginTransaction(); err != nil {
						b.Fatal(err)
					}
				}
				for j := range perTxn {
					cl.Produce(ctx, &kgo.Record{Topic: "txbench", Key: fmt.Appendf(nil, "%d-%d", i, j), Value: value}, func(_ *kgo.Record, err error) {
						if err != nil {
							b.Error(err)
						}
					})
				}
				if err := cl.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				if mode == "transactional" {
					if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
						b.Fatal(err)
					}
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N*perTxn)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99_ms")
		})
	}
}
