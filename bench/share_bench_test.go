package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkShareConsumers measures a queue on one partition of one node
// (fs store): b.N records of 100 B are produced first, then taken and
// accepted by 1, 4 or 16 franz-go share consumers of one group (KIP-932),
// against a classic consumer group, whose one member is all a single
// partition can use. It reports records/s from the first poll to the last
// record accepted (share) or read and committed (classic).
func BenchmarkShareConsumers(b *testing.B) {
	for _, mode := range []string{"share-1", "share-4", "share-16", "classic-group"} {
		b.Run(mode, func(b *testing.B) {
			n := startNode(b, "queue", 1)
			ctx := testCtx(b)
			admin, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()))
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			if err := setShareEarliest(ctx, admin, "bench-group"); err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 100)
			recs := make([]*kgo.Record, 0, 1000)
			for i := 0; i < b.N; i++ {
				recs = append(recs, &kgo.Record{Topic: "queue", Value: value})
				if len(recs) == cap(recs) || i == b.N-1 {
					if err := admin.ProduceSync(ctx, recs...).FirstErr(); err != nil {
						b.Fatal(err)
					}
					recs = recs[:0]
				}
			}
			consumers := 1
			if mode != "classic-group" {
				consumers, _ = strconv.Atoi(mode[len("share-"):])
			}
			var done atomic.Int64
			all := make(chan struct{})
			var once sync.Once
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.SetBytes(100)
			b.ResetTimer()
			start := time.Now()
			for c := range consumers {
				opts := []kgo.Opt{kgo.SeedBrokers(n.KafkaAddr()), kgo.ConsumeTopics("queue"), kgo.ClientID(fmt.Sprint("c", c))}
				if mode == "classic-group" {
					opts = append(opts, kgo.ConsumerGroup("bench-classic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
				} else {
					opts = append(opts, kgo.ShareGroup("bench-group"))
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for cctx.Err() == nil {
						fs := cl.PollFetches(cctx)
						k := int64(0)
						fs.EachRecord(func(r *kgo.Record) {
							if mode != "classic-group" {
								r.Ack(kgo.AckAccept)
							}
							k++
						})
						if k == 0 {
							continue
						}
						if mode == "classic-group" {
							if err := cl.CommitUncommittedOffsets(cctx); err != nil && cctx.Err() == nil {
								b.Error(err)
							}
						}
						if done.Add(k) >= int64(b.N) {
							if mode != "classic-group" {
								_ = cl.FlushAcks(cctx)
							}
							once.Do(func() { close(all) })
						}
					}
				}()
			}
			select {
			case <-all:
			case <-ctx.Done():
				b.Fatalf("took %d of %d records before the time limit", done.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			wg.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

// setShareEarliest makes a share group start at the log's beginning.
func setShareEarliest(ctx context.Context, cl *kgo.Client, group string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value = "share.auto.offset.reset", kmsg.StringPtr("earliest")
	rr.Configs = append(rr.Configs, c)
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if code := resp.Resources[0].ErrorCode; code != 0 {
		return fmt.Errorf("group config: error %d", code)
	}
	return nil
}
