package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-io/strata/cmd/node"
)

// TestManyShortLivedIdempotentProducers is issue 7, case c: cron jobs, CLI
// runs and serverless calls each open one idempotent producer, write a record
// and go away. Thousands of them on one partition must not stop the node:
// a producer on another topic keeps getting acks meanwhile, etcd stays small,
// and every record is stored exactly once.
func TestManyShortLivedIdempotentProducers(t *testing.T) {
	const (
		producers   = 9000
		concurrency = 32
		// maxAckGap is the longest the steady producer may go without an
		// ack: generous for a shared 2-core machine, far below "never".
		maxAckGap = 15 * time.Second
		maxDBSize = 256 << 20
	)
	n := startNodeForTest(t)
	addr := n.KafkaAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	admin := newClient(t, addr)
	createTopic(t, ctx, admin, "many", 1)
	createTopic(t, ctx, admin, "steady", 1)

	// Every client the test opens, so that a stuck node cannot hang the
	// test: franz-go waits for an in-flight idempotent produce whatever the
	// context says, until its client is closed.
	var clients sync.Map // *onceClient → struct{}
	abort := func() {
		clients.Range(func(k, _ any) bool {
			go k.(*onceClient).close()
			return true
		})
	}

	// The steady producer: one long-lived idempotent client on another
	// topic, one record at a time, recording when each ack came.
	steadyCl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("steady"))
	if err != nil {
		t.Fatal(err)
	}
	steady := &onceClient{cl: steadyCl}
	clients.Store(steady, struct{}{})
	defer steady.close()
	stopSteady := make(chan struct{})
	var (
		steadyMu   sync.Mutex
		lastAck    = time.Now()
		worstGap   time.Duration
		steadyAcks int
		steadyErr  error
	)
	steadyDone := make(chan struct{})
	go func() {
		defer close(steadyDone)
		for i := 0; ; i++ {
			select {
			case <-stopSteady:
				return
			default:
			}
			err := steady.cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("s-%d", i))}).FirstErr()
			now := time.Now()
			steadyMu.Lock()
			if err != nil {
				steadyErr = fmt.Errorf("steady record %d: %w", i, err)
				steadyMu.Unlock()
				return
			}
			worstGap = max(worstGap, now.Sub(lastAck))
			lastAck = now
			steadyAcks++
			steadyMu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// The short-lived producers: a new client each, one record, close.
	start := time.Now()
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	pctx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= producers || pctx.Err() != nil {
					return
				}
				if err := produceOnce(pctx, addr, i, &clients); err != nil {
					if pctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
						failed.Store(true)
					}
					return
				}
			}
		}()
	}
	// Watch the steady producer while the others run: stop at once when it
	// stalls (or a producer fails), rather than waiting on a stuck node.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	stalled := false
	for !stalled {
		select {
		case <-done:
		case <-tick.C:
			steadyMu.Lock()
			gap, serr, acks := time.Since(lastAck), steadyErr, steadyAcks
			steadyMu.Unlock()
			if gap > maxAckGap || serr != nil || failed.Load() {
				stalled = true
			}
			if sec := int(time.Since(start).Seconds()); sec%10 == 0 || stalled {
				t.Logf("%ds: %d producers started, steady producer %d acks", sec, min(next.Load(), producers), acks)
			}
			continue
		}
		break
	}
	tick.Stop()
	elapsed := time.Since(start)
	if stalled {
		stopProducers()
		abort()
	}
	close(stopSteady)
	<-done
	<-steadyDone
	steadyMu.Lock()
	worstGap = max(worstGap, time.Since(lastAck))
	t.Logf("%d producers in %v (%d started); steady producer: %d acks, longest gap %v",
		producers, elapsed.Round(time.Millisecond), min(next.Load(), producers), steadyAcks, worstGap.Round(time.Millisecond))
	if steadyErr != nil && !stalled {
		t.Errorf("steady producer: %v", steadyErr)
	}
	if stalled || worstGap > maxAckGap {
		t.Errorf("steady producer on another topic went %v without an ack (max %v)", worstGap.Round(time.Millisecond), maxAckGap)
	}
	steadyMu.Unlock()
	if failed.Load() {
		t.Errorf("short-lived producer: %v", firstErr)
	}
	if size := etcdDBSize(t, ctx, n.EtcdEndpoints()); size > maxDBSize {
		t.Errorf("etcd database is %d MiB, want under %d MiB", size>>20, maxDBSize>>20)
	} else {
		t.Logf("etcd database: %.1f MiB", float64(size)/(1<<20))
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every record once: as many offsets as producers, each value once.
	if hw := highWatermarks(t, ctx, admin, "many", 1)[0]; hw != producers {
		t.Errorf("high watermark %d, want %d (one record per producer)", hw, producers)
	}
	got := consumeN(t, ctx, addr, "many", producers)
	seen := make(map[string]int, producers)
	for _, r := range got {
		seen[r.Value]++
	}
	for i := range producers {
		v := producerValue(int64(i))
		if c := seen[v]; c != 1 {
			t.Errorf("record %q read %d times, want once", v, c)
		}
	}
}

func producerValue(i int64) string { return fmt.Sprintf("p-%05d", i) }

// onceClient is a kgo client that may be closed from two places.
type onceClient struct {
	cl   *kgo.Client
	once sync.Once
}

func (c *onceClient) close() { c.once.Do(c.cl.Close) }

// produceOnce is one short-lived idempotent producer (franz-go's default:
// acks=all, idempotent): a new client, one record, close. The client is in
// clients while it lives.
func produceOnce(ctx context.Context, addr string, i int64, clients *sync.Map) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("many"))
	if err != nil {
		return err
	}
	c := &onceClient{cl: cl}
	clients.Store(c, struct{}{})
	defer func() {
		c.close()
		clients.Delete(c)
	}()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(producerValue(i))}).FirstErr(); err != nil {
		return fmt.Errorf("producer %d: %w", i, err)
	}
	return nil
}

// etcdDBSize is the largest database size the node's etcd members report.
func etcdDBSize(t *testing.T, ctx context.Context, endpoints []string) int64 {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	var size int64
	for _, ep := range endpoints {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			t.Fatalf("etcd status of %s: %v", ep, err)
		}
		size = max(size, st.DbSize)
	}
	return size
}

// startNodeForTest starts a node the way startBroker does and returns it, for
// tests that need more than its Kafka address. Its log is printed only when
// the test failed.
func startNodeForTest(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.AutoCreateTopics = true
	cfg.DefaultPartitions = 1

	logs := &tailBuffer{max: 256 << 10}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("start node: %v\nnode log:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
		if t.Failed() {
			t.Logf("node log (tail):\n%s", logs.String())
		}
	})
	return n
}
