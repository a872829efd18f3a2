//go:build !e2edev

package e2e

// Consumer groups end to end: real clients (franz-go with two balancers,
// sarama's consumer group, kcat -G on librdkafka, kafkajs's consumer) in one
// group over a 6-partition topic, members joining and leaving while records
// flow. Every acknowledged record must be processed by some member; nothing
// may be lost. Duplicates are allowed by the at-least-once contract of a
// rebalance and are only reported. After the clients leave, the committed
// offsets must be the high watermarks. TestGroupResumeAfterRestart restarts
// the node under a running group.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/cmd/node"
)

const groupPartitions = 6

// tally counts what the members of a group processed.
type tally struct {
	mu       sync.Mutex
	seen     map[[2]int64]int // (partition, offset) -> times processed
	byMember map[string]int
	changed  chan struct{} // closed and replaced on every add
}

func newTally() *tally {
	return &tally{seen: make(map[[2]int64]int), byMember: make(map[string]int), changed: make(chan struct{})}
}

func (t *tally) add(member string, partition int32, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen[[2]int64{int64(partition), offset}]++
	t.byMember[member]++
	close(t.changed)
	t.changed = make(chan struct{})
}

// distinct returns how many different records were processed.
func (t *tally) distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

func (t *tally) of(member string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byMember[member]
}

// missing returns up to 10 of the acknowledged records not processed yet.
func (t *tally) missing(acked []rec) []rec {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []rec
	for _, r := range acked {
		if t.seen[[2]int64{int64(r.Partition), r.Offset}] == 0 && len(out) < 10 {
			out = append(out, r)
		}
	}
	return out
}

// waitUntil blocks until cond holds (checked after every processed record
// and every 100ms) or ctx ends.
func (t *tally) waitUntil(tb testing.TB, ctx context.Context, what string, cond func() bool) {
	tb.Helper()
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.mu.Lock()
			defer t.mu.Unlock()
			tb.Fatalf("timed out waiting for %s: %d distinct records processed, by member %v", what, len(t.seen), t.byMember)
		}
	}
}

// check fails unless every acknowledged record was processed, and reports
// duplicates.
func (t *tally) check(tb testing.TB, acked []rec) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	missing, dups := 0, 0
	for _, r := range acked {
		if t.seen[[2]int64{int64(r.Partition), r.Offset}] == 0 {
			if missing < 10 {
				tb.Errorf("acknowledged record never processed: %v", r)
			}
			missing++
		}
	}
	for _, n := range t.seen {
		dups += n - 1
	}
	if missing > 0 {
		tb.Fatalf("%d of %d acknowledged records were never processed", missing, len(acked))
	}
	if len(t.seen) != len(acked) {
		tb.Fatalf("processed %d distinct records, %d were produced", len(t.seen), len(acked))
	}
	tb.Logf("%d records processed once each, %d redelivered after rebalances; by member %v", len(acked), dups, t.byMember)
}

// flowProducer produces records in small chunks in the background, so that
// members join and leave while records flow.
type flowProducer struct {
	mu    sync.Mutex
	acked []rec
	done  chan struct{}
	err   error
}

func startFlow(t *testing.T, ctx context.Context, cl *kgo.Client, topic, prefix string, n int) *flowProducer {
	f := &flowProducer{done: make(chan struct{})}
	rs := testRecords(prefix, n, groupPartitions)
	go func() {
		defer close(f.done)
		const chunk = 25
		for start := 0; start < n; start += chunk {
			batch := rs[start:min(start+chunk, n)]
			for _, r := range batch {
				r.Topic = topic
			}
			res := cl.ProduceSync(ctx, batch...)
			if err := res.FirstErr(); err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return
			}
			f.mu.Lock()
			for _, pr := range res {
				f.acked = append(f.acked, fromKgo(pr.Record))
			}
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return f
}

// wait returns the acknowledged records once the producer is done.
func (f *flowProducer) wait(t *testing.T) []rec {
	t.Helper()
	<-f.done
	if f.err != nil {
		t.Fatalf("producing: %v", f.err)
	}
	return f.acked
}

// groupScenario runs the join/leave sequence with members made by start
// (stop makes a member leave the group gracefully):
//
//  1. a third of the records is produced; member 1 joins and processes them;
//  2. member 2 joins while the second third flows;
//  3. member 3 joins and member 1 leaves while the last third flows;
//  4. a last batch is produced, which members 2 and 3 share; they leave.
//
// Every acknowledged record must have been processed, members 2 and 3 must
// each have had partitions, and the committed offsets must end at the high
// watermarks.
//
// quiet makes member 1 leave only once the last third has been processed:
// kcat drops a record it polls after its stop signal yet commits past it
// (its consume callback returns early once told to stop), a client
// artefact no broker can prevent.
func groupScenario(t *testing.T, addr, topic, group string, total int, quiet bool, start func(name string, tl *tally) (stop func())) {
	ctx := testContext(t)
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if n := ensureTopic(t, ctx, prod, topic); n != groupPartitions {
		t.Fatalf("topic %s has %d partitions, want %d", topic, n, groupPartitions)
	}
	tl := newTally()
	third := total / 3

	acked := startFlow(t, ctx, prod, topic, topic+"-1", third).wait(t)
	stop1 := start("m1", tl)
	tl.waitUntil(t, ctx, "m1 to process the first third", func() bool { return tl.distinct() >= third })

	flow := startFlow(t, ctx, prod, topic, topic+"-2", third)
	stop2 := start("m2", tl)
	acked = append(acked, flow.wait(t)...)
	acked = append(acked, trickle(t, ctx, prod, topic, topic+"-2t", tl, "m2 to take part", func() bool { return tl.of("m2") > 0 })...)
	waitAll(t, ctx, tl, acked, "the second third")

	flow = startFlow(t, ctx, prod, topic, topic+"-3", total-2*third)
	stop3 := start("m3", tl)
	acked = append(acked, trickle(t, ctx, prod, topic, topic+"-3t", tl, "m3 to take part", func() bool { return tl.of("m3") > 0 })...)
	if !quiet {
		stop1()
	}
	acked = append(acked, flow.wait(t)...)
	waitAll(t, ctx, tl, acked, "the last third")
	if quiet {
		stop1()
	}

	acked = append(acked, produceAll(t, ctx, prod, topic, testRecords(topic+"-4", 120, groupPartitions))...)
	waitAll(t, ctx, tl, acked, "the records after m1 left")
	stop2()
	stop3()

	tl.check(t, acked)
	checkCommitted(t, ctx, addr, group, topic)
}

// trickle produces one record per partition every 100ms until cond holds,
// so a member that joined after a batch was consumed still gets records,
// however long its rebalance takes (cooperative protocols need two). It
// returns the acknowledged records.
func trickle(t *testing.T, ctx context.Context, cl *kgo.Client, topic, prefix string, tl *tally, what string, cond func() bool) []rec {
	t.Helper()
	var acked []rec
	for i := 0; !cond(); i++ {
		if ctx.Err() != nil {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			t.Fatalf("timed out waiting for %s: by member %v", what, tl.byMember)
		}
		acked = append(acked, produceAll(t, ctx, cl, topic, testRecords(fmt.Sprint(prefix, i), groupPartitions, groupPartitions))...)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return acked
}

// waitAll waits until every acknowledged record was processed; on a
// timeout it names some that were not and the committed offsets.
func waitAll(t *testing.T, ctx context.Context, tl *tally, acked []rec, what string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		tl.mu.Lock()
		ch := tl.changed
		tl.mu.Unlock()
		if tl.distinct() >= len(acked) {
			return
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-wctx.Done():
			t.Fatalf("timed out waiting for %s: %d of %d records processed; not processed (first 10): %v",
				what, tl.distinct(), len(acked), tl.missing(acked))
		}
	}
}

// committed returns the group's committed offsets of topic's partitions
// (-1 where nothing is committed).
func committed(t *testing.T, ctx context.Context, addr, group, topic string) []int64 {
	t.Helper()
	cl := rawClient(t, addr)
	parts := make([]int32, groupPartitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: parts}}
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: parts}}}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("OffsetFetch %s: %v", group, err)
	}
	out := make([]int64, groupPartitions)
	for i := range out {
		out[i] = -1
	}
	fill := func(p int32, off int64, code int16) {
		if code != 0 {
			t.Fatalf("OffsetFetch %s partition %d: %v", group, p, kerr.ErrorForCode(code))
		}
		out[p] = off
	}
	if len(resp.Groups) > 0 {
		g := resp.Groups[0]
		if g.ErrorCode != 0 {
			t.Fatalf("OffsetFetch %s: %v", group, kerr.ErrorForCode(g.ErrorCode))
		}
		for _, rt := range g.Topics {
			for _, p := range rt.Partitions {
				fill(p.Partition, p.Offset, p.ErrorCode)
			}
		}
		return out
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetFetch %s: %v", group, kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			fill(p.Partition, p.Offset, p.ErrorCode)
		}
	}
	return out
}

// checkCommitted fails unless the group's committed offsets are the high
// watermarks: the members committed everything they processed before they
// left. Clients may commit a moment after they leave (kcat), so it polls.
func checkCommitted(t *testing.T, ctx context.Context, addr, group, topic string) {
	t.Helper()
	hw := highWatermarks(t, ctx, rawClient(t, addr), topic, groupPartitions)
	var got []int64
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		got = committed(t, ctx, addr, group, topic)
		if fmt.Sprint(got) == fmt.Sprint(hw) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("committed offsets %v, high watermarks %v", got, hw)
}

// kgoMember starts a franz-go group member that processes whatever it
// polls, commits it before letting a rebalance proceed
// (BlockRebalanceOnPoll), and leaves the group when stopped.
func kgoMember(t *testing.T, addr, group, topic string, balancer kgo.GroupBalancer, extra ...kgo.Opt) func(string, *tally) func() {
	return func(name string, tl *tally) func() {
		opts := append([]kgo.Opt{
			kgo.ClientID(name),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.Balancers(balancer),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(200 * time.Millisecond),
			kgo.HeartbeatInterval(200 * time.Millisecond),
			kgo.SessionTimeout(6 * time.Second),
			kgo.BlockRebalanceOnPoll(),
			kgo.DisableAutoCommit(),
		}, extra...)
		cl := newClient(t, addr, opts...)
		stopping, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stopping:
					return
				default:
				}
				pctx, pcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				fs := cl.PollFetches(pctx)
				pcancel()
				n := 0
				fs.EachRecord(func(r *kgo.Record) {
					tl.add(name, r.Partition, r.Offset)
					n++
				})
				if n > 0 {
					// Not cut short by stop: what was processed is
					// committed before the member goes.
					cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
					if err := cl.CommitUncommittedOffsets(cctx); err != nil {
						t.Logf("%s: commit: %v", name, err)
					}
					ccancel()
				}
				cl.AllowRebalance()
			}
		}()
		return func() {
			close(stopping)
			<-done
			cl.Close() // leaves the group (a static member does not)
		}
	}
}

func TestGroupFranz(t *testing.T) {
	addr := startBroker(t, withPartitions(groupPartitions))
	for _, b := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(b.name, func(t *testing.T) {
			topic, group := "grp-franz-"+b.name, "franz-"+b.name
			groupScenario(t, addr, topic, group, 3000, false, kgoMember(t, addr, group, topic, b.balancer))
		})
	}
}

// TestGroupFranzStatic: static members (group.instance.id, KIP-345). A
// member that restarts with its instance id takes its place and partitions
// back without a rebalance: the other member loses nothing meanwhile. A
// static member that stops for good is evicted when its session ends, and
// the other takes over its partitions from their committed offsets.
func TestGroupFranzStatic(t *testing.T) {
	addr := startBroker(t, withPartitions(groupPartitions))
	ctx := testContext(t)
	topic, group := "grp-franz-static", "franz-static"
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ensureTopic(t, ctx, prod, topic)
	tl := newTally()

	var mu sync.Mutex
	assigned := map[string][]int32{}
	revoked := map[string]int{}
	member := func(name, instance string) func() {
		return kgoMember(t, addr, group, topic, kgo.RangeBalancer(),
			kgo.InstanceID(instance),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				assigned[name] = m[topic] // eager (range): the whole new assignment
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				if len(m[topic]) > 0 {
					revoked[name]++
				}
			}),
		)(name, tl)
	}
	owned := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(assigned[name])
	}

	acked := produceAll(t, ctx, prod, topic, testRecords("static-1", 600, groupPartitions))
	stopA := member("a", "instance-a")
	tl.waitUntil(t, ctx, "a alone", func() bool { return tl.distinct() >= len(acked) })
	stopB := member("b", "instance-b")
	tl.waitUntil(t, ctx, "b to get partitions", func() bool { return owned("b") > 0 })
	mu.Lock()
	revokedB := revoked["b"]
	mu.Unlock()
	acked = append(acked, produceAll(t, ctx, prod, topic, testRecords("static-2", 600, groupPartitions))...)
	tl.waitUntil(t, ctx, "a and b", func() bool { return tl.distinct() >= len(acked) })

	// a restarts: a new client with the same instance id.
	stopA()
	flow := startFlow(t, ctx, prod, topic, "static-3", 600)
	stopA2 := member("a2", "instance-a")
	acked = append(acked, flow.wait(t)...)
	tl.waitUntil(t, ctx, "records after a's restart", func() bool { return tl.distinct() >= len(acked) })
	mu.Lock()
	if revoked["b"] != revokedB {
		t.Errorf("b lost partitions when a restarted with its instance id (a rebalance)")
	}
	if fmt.Sprint(sortedParts(assigned["a2"])) != fmt.Sprint(sortedParts(assigned["a"])) {
		t.Errorf("restarted a got partitions %v, a had %v", assigned["a2"], assigned["a"])
	}
	mu.Unlock()

	// a stops for good: after its session timeout b takes everything.
	stopA2()
	acked = append(acked, produceAll(t, ctx, prod, topic, testRecords("static-4", 300, groupPartitions))...)
	tl.waitUntil(t, ctx, "b to take over after a's session ended", func() bool { return tl.distinct() >= len(acked) })
	stopB()
	tl.check(t, acked)
	checkCommitted(t, ctx, addr, group, topic)
}

func sortedParts(ps []int32) []int32 {
	out := append([]int32(nil), ps...)
	slices.Sort(out)
	return out
}

// saramaHandler processes and marks every message of its claims.
type saramaHandler struct {
	name string
	tl   *tally
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.tl.add(h.name, m.Partition, m.Offset)
			sess.MarkMessage(m, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

func TestGroupSarama(t *testing.T) {
	addr := startBroker(t, withPartitions(groupPartitions))
	for _, strategy := range []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange(), sarama.NewBalanceStrategyRoundRobin(), sarama.NewBalanceStrategySticky()} {
		t.Run(strategy.Name(), func(t *testing.T) {
			topic, group := "grp-sarama-"+strategy.Name(), "sarama-"+strategy.Name()
			start := func(name string, tl *tally) func() {
				cfg := sarama.NewConfig() // sarama's default protocol version
				cfg.ClientID = name
				cfg.Consumer.Return.Errors = true
				cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
				cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
				cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
				cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
				cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
				cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
				if err != nil {
					t.Fatalf("sarama consumer group: %v", err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					for err := range cg.Errors() {
						t.Logf("%s: %v", name, err)
					}
				}()
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						if err := cg.Consume(ctx, []string{topic}, saramaHandler{name, tl}); err != nil && ctx.Err() == nil {
							t.Logf("%s: consume: %v", name, err)
							time.Sleep(100 * time.Millisecond)
						}
					}
				}()
				return func() {
					cancel()
					if err := cg.Close(); err != nil { // commits and leaves
						t.Errorf("%s: close: %v", name, err)
					}
					wg.Wait()
				}
			}
			groupScenario(t, addr, topic, group, 1500, false, start)
		})
	}
}

// lockedBuffer is a concurrency-safe buffer for a subprocess's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestGroupKcat runs kcat's balanced consumer (-G, librdkafka 2.0.2, which
// speaks JoinGroup v5, SyncGroup v3, OffsetCommit v7) as the members; each
// prints "partition offset" per record and is stopped with SIGTERM, which
// commits and leaves the group.
func TestGroupKcat(t *testing.T) {
	kcat := requireTool(t, "kcat")
	addr := startBroker(t, withPartitions(groupPartitions))
	for _, strategy := range []string{"range,roundrobin", "cooperative-sticky"} {
		t.Run(strategy, func(t *testing.T) {
			topic, group := "grp-kcat-"+strategy[:5], "kcat-"+strategy[:5]
			groupScenario(t, addr, topic, group, 1500, true, kcatMember(t, kcat, addr, group, topic, strategy))
		})
	}
}

// kcatMember starts kcat -G members with the given assignment strategy.
func kcatMember(t *testing.T, kcat, addr, group, topic, strategy string) func(string, *tally) func() {
	return func(name string, tl *tally) func() {
		cmd := exec.Command(kcat, "-b", addr, "-G", group, "-q", "-u",
			"-X", "partition.assignment.strategy="+strategy,
			"-X", "client.id="+name,
			"-X", "auto.offset.reset=earliest",
			"-X", "auto.commit.interval.ms=100",
			"-X", "heartbeat.interval.ms=200",
			"-X", "fetch.wait.max.ms=200",
			"-f", "%p %o\n", topic)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start kcat: %v", err)
		}
		read := make(chan struct{})
		go func() {
			defer close(read)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var p int32
				var o int64
				if _, err := fmt.Sscanf(sc.Text(), "%d %d", &p, &o); err != nil {
					t.Errorf("%s: unexpected output line %q", name, sc.Text())
					continue
				}
				tl.add(name, p, o)
			}
		}()
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			// SIGTERM: kcat closes its consumer, which commits and
			// leaves the group.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			exited := make(chan error, 1)
			go func() { <-read; exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("%s exited with %v; stderr:\n%s", name, err, tail(stderr.String()))
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("%s did not exit 30s after SIGTERM; stderr:\n%s", name, tail(stderr.String()))
			}
			if t.Failed() {
				t.Logf("%s stderr:\n%s", name, tail(stderr.String()))
			}
		}
		t.Cleanup(stop)
		return stop
	}
}

// kafkajsGroupResult is group_consume.js's output.
type kafkajsGroupResult struct {
	Version  string       `json:"version"`
	Produced []kafkajsRec `json:"produced"`
	Consumed []struct {
		Member    string `json:"member"`
		Partition int32  `json:"partition"`
		Offset    string `json:"offset"`
	} `json:"consumed"`
}

// TestGroupKafkajs runs kafkajs 2.2.4's consumer.run() as the members: the
// script produces in thirds with kafkajs and makes the members join and
// leave between them (testdata/kafkajs/group_consume.js).
func TestGroupKafkajs(t *testing.T) {
	nodeBin := requireTool(t, "node")
	env := []string{"NODE_PATH=" + nodePath(t), "KAFKAJS_NO_PARTITIONER_WARNING=1"}
	addr := startBroker(t, withPartitions(groupPartitions))
	ctx := testContext(t)
	topic, group := "grp-kafkajs", "kafkajs"
	ensureTopic(t, ctx, rawClient(t, addr), topic)
	cfg, _ := json.Marshal(map[string]any{
		"broker": addr, "topic": topic, "groupId": group, "count": 1500, "partitions": groupPartitions,
		"timeoutMs": int(testTimeout.Milliseconds()) - 10000,
	})
	out, stderr := runCmd(t, ctx, nil, env, nodeBin, "testdata/kafkajs/group_consume.js", string(cfg))
	var res kafkajsGroupResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("group_consume.js output is not JSON (%v):\n%s\nstderr:\n%s", err, tail(out), tail(stderr))
	}
	if res.Version != "2.2.4" {
		t.Fatalf("kafkajs version %q, want 2.2.4: %s", res.Version, setupHint)
	}
	produced := fromKafkajs(t, res.Produced)
	if len(produced) < 1500 {
		t.Fatalf("kafkajs acknowledged %d records, want at least 1500", len(produced))
	}
	tl := newTally()
	for _, c := range res.Consumed {
		off, err := strconv.ParseInt(c.Offset, 10, 64)
		if err != nil {
			t.Fatalf("consumed offset %q: %v", c.Offset, err)
		}
		tl.add(c.Member, c.Partition, off)
	}
	tl.check(t, produced)
	for _, m := range []string{"m1", "m2", "m3"} {
		if tl.of(m) == 0 {
			t.Errorf("kafkajs member %s processed nothing", m)
		}
	}
	checkCommitted(t, ctx, addr, group, topic)
}

// groupNode is an in-process node that can be restarted on the same data
// dir and Kafka address, as a real node restarts.
type groupNode struct {
	t    *testing.T
	cfg  node.Config
	n    *node.Node
	logs *tailBuffer
}

func startGroupNode(t *testing.T) *groupNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = addr
	cfg.HTTPAddr = ""
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.AutoCreateTopics = true
	cfg.DefaultPartitions = groupPartitions
	g := &groupNode{t: t, cfg: cfg, logs: &tailBuffer{max: 256 << 10}}
	g.start()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("node log (tail):\n%s", g.logs.String())
		}
	})
	return g
}

func (g *groupNode) start() {
	g.t.Helper()
	logger := slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, g.cfg, logger)
	if err != nil {
		g.t.Fatalf("start node: %v\nnode log:\n%s", err, g.logs.String())
	}
	g.n = n
}

func (g *groupNode) stop() {
	if g.n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.n.Close(ctx); err != nil {
		g.t.Errorf("close node: %v", err)
	}
	g.n = nil
}

func (g *groupNode) restart() {
	g.t.Helper()
	g.stop()
	g.start()
}

// TestGroupResumeAfterRestart: a group member commits, the node restarts
// under it, and the group resumes at the committed offsets: the member
// (rejoining by itself) gets the records produced after the restart and none
// committed before, and a new member of the group later starts where the
// first one committed, not at the start its reset policy names.
func TestGroupResumeAfterRestart(t *testing.T) {
	gn := startGroupNode(t)
	addr := gn.cfg.KafkaAddr
	ctx := testContext(t)
	topic, group := "grp-restart", "restart"
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if n := ensureTopic(t, ctx, prod, topic); n != groupPartitions {
		t.Fatalf("%d partitions", n)
	}
	before := produceAll(t, ctx, prod, topic, testRecords("before", 600, groupPartitions))

	tl := newTally()
	stop := kgoMember(t, addr, group, topic, kgo.CooperativeStickyBalancer())("x", tl)
	tl.waitUntil(t, ctx, "the records before the restart", func() bool { return tl.distinct() >= len(before) })
	checkCommitted(t, ctx, addr, group, topic)
	tl.check(t, before)

	gn.restart()
	after := produceAll(t, ctx, prod, topic, testRecords("after", 600, groupPartitions))
	all := append(append([]rec{}, before...), after...)
	tl.waitUntil(t, ctx, "the records after the restart", func() bool { return tl.distinct() >= len(all) })
	// Membership is not kept across a restart: x's first commits after it
	// fail (UNKNOWN_MEMBER_ID), x joins again and processes from its last
	// commit (at least once), committing as it goes.
	checkCommitted(t, ctx, addr, group, topic)
	stop()
	tl.mu.Lock()
	for _, r := range before {
		if n := tl.seen[[2]int64{int64(r.Partition), r.Offset}]; n != 1 {
			t.Errorf("record committed before the restart processed %d times: %v", n, r)
		}
	}
	tl.mu.Unlock()
	tl.check(t, all)
	checkCommitted(t, ctx, addr, group, topic)

	// Once more across a restart with nobody in the group: a new member
	// starts at the committed offsets.
	gn.restart()
	tailRecs := produceAll(t, ctx, prod, topic, testRecords("tail", 60, groupPartitions))
	tl2 := newTally()
	stop = kgoMember(t, addr, group, topic, kgo.RangeBalancer())("y", tl2)
	tl2.waitUntil(t, ctx, "the tail", func() bool { return tl2.distinct() >= len(tailRecs) })
	stop()
	tl2.check(t, tailRecs)
}

// TestGroupRejoinAfterLeave: a client that left its group joins it again at
// once (a known failure of another object-store broker), and finds its
// committed offsets.
func TestGroupRejoinAfterLeave(t *testing.T) {
	addr := startBroker(t, withPartitions(groupPartitions))
	ctx := testContext(t)
	topic, group := "grp-rejoin", "rejoin"
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ensureTopic(t, ctx, prod, topic)
	var acked []rec
	tl := newTally()
	for i := range 3 {
		acked = append(acked, produceAll(t, ctx, prod, topic, testRecords(fmt.Sprint("round", i), 120, groupPartitions))...)
		stop := kgoMember(t, addr, group, topic, kgo.CooperativeStickyBalancer())(fmt.Sprint("round", i), tl)
		tl.waitUntil(t, ctx, fmt.Sprintf("round %d", i), func() bool { return tl.distinct() >= len(acked) })
		stop()
	}
	tl.check(t, acked)
	for i := range 3 {
		if got := tl.of(fmt.Sprint("round", i)); got != 120 {
			t.Errorf("round %d processed %d records, want its own 120 (committed offsets not honoured?)", i, got)
		}
	}
}
