package e2e

// Object storage on a real MinIO: a node from nothing serves a gigabyte,
// retention deletes exactly the unreferenced objects, and a MinIO outage
// under an idempotent producer loses and duplicates nothing.

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier/objstore/miniotest"
)

// cluster is one etcd and one MinIO bucket that several nodes share.
type cluster struct {
	etcd  *metadata.Embedded
	minio *miniotest.Server
	url   string
}

func newMinIOCluster(t *testing.T) *cluster {
	t.Helper()
	m := miniotest.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	bucket := m.Bucket(t, "strata")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &cluster{etcd: e, minio: m, url: m.URL(bucket, "e2e")}
}

// start starts a node of the cluster with its own (fresh) data dir.
func (c *cluster) start(t *testing.T, mod func(*node.Config)) (*node.Node, func()) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.EtcdEndpoints = c.etcd.Endpoints()
	cfg.ObjectStore = c.url
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.DefaultPartitions = 6
	if mod != nil {
		mod(&cfg)
	}
	logs := &tailBuffer{max: 256 << 10}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("start node: %v\n%s", err, logs.String())
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.Close(ctx); err != nil {
				t.Errorf("close node: %v", err)
			}
			if t.Failed() {
				t.Logf("node log (tail):\n%s", logs.String())
			}
		})
	}
	t.Cleanup(stop)
	return n, stop
}

// bigValue is the deterministic 1 KiB value of record i of partition p, so
// a gigabyte can be checked byte for byte without keeping it in memory.
func bigValue(p int32, i int64, buf []byte) []byte {
	r := rand.New(rand.NewPCG(uint64(p)+1, uint64(i)))
	for j := 0; j+8 <= len(buf); j += 8 {
		binary.LittleEndian.PutUint64(buf[j:], r.Uint64())
	}
	return buf
}

func TestMinIONodeFromNothingServesAGigabyte(t *testing.T) {
	total := int64(1 << 30)
	if testing.Short() {
		total = 64 << 20
	}
	const size = 1024
	const partitions = 6
	c := newMinIOCluster(t)
	a, stopA := c.start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	topic := "gigabyte"

	prod := newClient(t, a.KafkaAddr(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedBytes(64<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ensureTopic(t, ctx, prod, topic)
	perPart := total / size / partitions
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := int64(0); i < perPart; i++ {
		for p := int32(0); p < partitions; p++ {
			wg.Add(1)
			r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "%d-%d", p, i), Value: bigValue(p, i, make([]byte, size))}
			prod.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else if r.Offset != i {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("record %d of partition %d acked at offset %d", i, p, r.Offset))
				}
			})
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d produces failed; first: %v", n, firstErr.Load())
	}
	t.Logf("produced %d MiB acks=all to MinIO in %v", total>>20, time.Since(start).Round(time.Millisecond))
	prod.Close()
	stopA()

	// A new node, empty disk, same etcd and bucket.
	b, _ := c.start(t, nil)
	start = time.Now()
	cons := newClient(t, b.KafkaAddr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(32<<20), kgo.FetchMaxPartitionBytes(8<<20))
	next := make([]int64, partitions)
	buf := make([]byte, size)
	var got int64
	firstByte := time.Duration(0)
	for got < perPart*partitions {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", got, perPart*partitions)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch error on partition %d: %v", fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if firstByte == 0 {
				firstByte = time.Since(start)
			}
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			if want := fmt.Sprintf("%d-%d", r.Partition, r.Offset); string(r.Key) != want {
				t.Fatalf("partition %d offset %d: key %q, want %q", r.Partition, r.Offset, r.Key, want)
			}
			if string(r.Value) != string(bigValue(r.Partition, r.Offset, buf)) {
				t.Fatalf("partition %d offset %d: value differs from what was produced", r.Partition, r.Offset)
			}
			next[r.Partition]++
			got++
		})
	}
	t.Logf("new node with an empty disk: first record after %v, all %d MiB in %v", firstByte.Round(time.Millisecond), total>>20, time.Since(start).Round(time.Millisecond))
}

func TestMinIORetentionDeletesExactlyTheUnreferencedObjects(t *testing.T) {
	c := newMinIOCluster(t)
	n, _ := c.start(t, func(cfg *node.Config) {
		cfg.MaintenanceInterval = 50 * time.Millisecond
		cfg.SweepInterval = 100 * time.Millisecond
		cfg.SweepGrace = time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Small batches: retention deletes whole batches at the least, as Kafka.
	cl := newClient(t, n.KafkaAddr(), kgo.ProducerBatchMaxBytes(16<<10))
	topic := "retained"
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 2, 1
	for k, v := range map[string]string{"retention.bytes": "200000", "segment.bytes": "100000"} {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, resp)
	}
	var rs []*kgo.Record
	for i := 0; i < 4000; i++ {
		rs = append(rs, &kgo.Record{Partition: int32(i % 2), Key: fmt.Appendf(nil, "k%d", i), Value: bigValue(0, int64(i), make([]byte, 400))})
	}
	produceAll(t, ctx, cl, topic, rs)

	// Wait for retention to move the log start of both partitions.
	var starts [2]int64
	deadline := time.Now().Add(time.Minute)
	for starts[0] == 0 || starts[1] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("log start offsets %v: retention did not advance them", starts)
		}
		for p := int32(0); p < 2; p++ {
			starts[p], _ = listOffset(t, ctx, cl, topic, p, -2)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An independent view: what is in the bucket (minio-go) against what the
	// metadata references (our own etcd client).
	meta, err := metadata.Open(ctx, metadata.Config{Endpoints: c.etcd.Endpoints(), Cluster: "strata"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	mc := c.minio.Client(t)
	list := func() map[string]bool {
		out := map[string]bool{}
		for obj := range mc.ListObjects(ctx, "strata", minio.ListObjectsOptions{Prefix: "e2e/", Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			out[obj.Key[len("e2e/"):]] = true
		}
		return out
	}
	// Retention keeps about retention.bytes: it must not have emptied the
	// partitions (the unit it deletes is about segment.bytes).
	for p := int32(0); p < 2; p++ {
		if hw, _ := listOffset(t, ctx, cl, topic, p, -1); hw-starts[p] < 200 {
			t.Fatalf("partition %d: log start %d, high watermark %d: retention deleted far more than retention.bytes asks", p, starts[p], hw)
		}
	}
	deadline = time.Now().Add(time.Minute)
	for {
		// The roller keeps writing objects and referencing them, and
		// retention keeps unreferencing them, while this looks: an object
		// referenced both before and after the listing was referenced all
		// along (a key is never referenced again once dropped), so the
		// listing must hold it. (Listing first and reading references
		// after once flagged an object the roller wrote in between.)
		before, err := meta.ReferencedObjects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		objs := list()
		refs, err := meta.ReferencedObjects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range refs {
			if _, was := before[k]; was && !objs[k] {
				t.Fatalf("object %s is referenced by the index but gone from the bucket", k)
			}
		}
		extra := 0
		for k := range objs {
			if _, ok := refs[k]; !ok {
				extra++
			}
		}
		if extra == 0 && len(objs) > 0 {
			t.Logf("%d objects left, all referenced", len(objs))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d unreferenced objects still in the bucket after a minute", extra)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Retention settles once everything is rolled: wait until the log start
	// offsets stop moving, then everything from them on must be readable.
	deadline = time.Now().Add(time.Minute)
	for {
		var now [2]int64
		for p := int32(0); p < 2; p++ {
			now[p], _ = listOffset(t, ctx, cl, topic, p, -2)
		}
		if now == starts {
			break
		}
		starts = now
		if time.Now().After(deadline) {
			t.Fatalf("log start offsets still moving after a minute: %v", starts)
		}
		time.Sleep(500 * time.Millisecond)
	}
	got := consumeN(t, ctx, n.KafkaAddr(), topic, int(4000-starts[0]-starts[1]))
	for _, r := range got {
		if r.Offset < starts[r.Partition] {
			t.Fatalf("read offset %d of partition %d below its log start %d", r.Offset, r.Partition, starts[r.Partition])
		}
	}
	if lo, _ := listOffset(t, ctx, cl, topic, 0, -2); lo < starts[0] {
		t.Fatalf("log start went back from %d to %d", starts[0], lo)
	}
}

func TestMinIOOutageLosesAndDuplicatesNothing(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	c := newMinIOCluster(t)
	n, _ := c.start(t, func(cfg *node.Config) {
		cfg.MaxBufferedBytes = 8 << 20
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topic := "outage"
	cl := newClient(t, n.KafkaAddr(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProduceRequestTimeout(5*time.Second))
	ensureTopic(t, ctx, cl, topic)

	const total = 30000
	stream := newKeyedStream(ctx, cl, topic)
	stream.produce(0, total/3)
	stream.wait(t)
	// The object store goes away while producers keep sending.
	c.minio.Stop(t)
	outageStart := time.Now()
	go stream.produce(total/3, total)
	// Data that was durable before the outage is still served (hot tier).
	early := consumeN(t, ctx, n.KafkaAddr(), topic, total/3)
	if len(early) < total/3 {
		t.Fatalf("during the outage only %d of %d durable records were readable", len(early), total/3)
	}
	if d := outage - time.Since(outageStart); d > 0 {
		time.Sleep(d) // the outage itself, not a synchronisation
	}
	if got := stream.acked.Load(); got > int64(total/3) {
		t.Fatalf("%d records acknowledged while the object store was down; only the %d before it may be", got, total/3)
	}
	c.minio.Restart(t)
	stream.wait(t)
	checkEachKeyOnce(t, consumeN(t, ctx, n.KafkaAddr(), topic, total), total)
}
