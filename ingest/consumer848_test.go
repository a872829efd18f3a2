package ingest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// member848 is a franz-go group member that records what it owns and reads.
type member848 struct {
	name string
	cl   *kgo.Client

	mu      sync.Mutex
	owned   map[int32]bool
	emptied bool // it owned partitions, then none, while in the group
	stop    context.CancelFunc
	done    chan struct{}
}

func startMember848(t *testing.T, addr, group, topic, name string, serverSide bool, seen func(string), extra ...kgo.Opt) *member848 {
	t.Helper()
	m := &member848{name: name, owned: map[int32]bool{}, done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID(name),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
	}
	if serverSide {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { seen(string(r.Value)) })
			m.mu.Lock()
			if len(m.owned) == 0 && fs.NumRecords() > 0 {
				m.emptied = true // read records while owning nothing
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *member848) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owned)
}

func (m *member848) close() {
	m.stop()
	<-m.done
	m.cl.Close() // commits and leaves the group
}

// describe848 returns, per member client id, the partitions the member is
// assigned and its type (0 classic, 1 consumer), once the group is Stable.
func describe848(ctx context.Context, cl *kgo.Client, group string) (state string, members map[string][]int32, types map[string]int8, err error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", nil, nil, err
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return "", nil, nil, err
	}
	members, types = map[string][]int32{}, map[string]int8{}
	for _, m := range g.Members {
		var ps []int32
		for _, tp := range m.Assignment.TopicPartitions {
			ps = append(ps, tp.Partitions...)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		members[m.ClientID] = ps
		types[m.ClientID] = m.MemberType
	}
	return g.State, members, types, nil
}

// TestConsumerGroup848: franz-go members on the KIP-848 protocol join,
// leave and rejoin while records flow; partitions move between them without
// the staying member ever losing all of its partitions; a classic member
// shares the group with them; nothing produced is left unread and the
// committed offsets end at the high watermarks.
func TestConsumerGroup848(t *testing.T) {
	n := startNode(t, nil)
	const topic, group, parts = "c848", "g848", 6
	n.createTopic(topic, parts)
	setGroupConfigs(t, n.addr, group, map[string]string{"consumer.heartbeat.interval.ms": "1000"})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	admin := mustClient(t, n.addr)

	var mu sync.Mutex
	seen := map[string]bool{}
	see := func(v string) { mu.Lock(); seen[v] = true; mu.Unlock() }

	// A bounded producer, running while members come and go.
	prodCtx, stopProd := context.WithCancel(ctx)
	produced := make(chan int, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			produced <- 0
			return
		}
		defer cl.Close()
		i := 0
		for ; i < 20000 && prodCtx.Err() == nil; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		produced <- i
	}()

	waitSplit := func(want map[string]int) map[string]int8 {
		t.Helper()
		var last string
		for ctx.Err() == nil {
			state, members, types, err := describe848(ctx, admin, group)
			if err == nil && state == "Stable" && len(members) == len(want) {
				ok := true
				for name, k := range want {
					ok = ok && len(members[name]) == k
				}
				if ok {
					return types
				}
			}
			last = fmt.Sprintf("%s %v %v", state, members, err)
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("group never reached %v; last %s", want, last)
		return nil
	}

	a := startMember848(t, n.addr, group, topic, "a", true, see)
	defer a.close()
	waitSplit(map[string]int{"a": 6})
	b := startMember848(t, n.addr, group, topic, "b", true, see)
	waitSplit(map[string]int{"a": 3, "b": 3})
	b.close()
	waitSplit(map[string]int{"a": 6})
	b = startMember848(t, n.addr, group, topic, "b", true, see)
	defer b.close()
	waitSplit(map[string]int{"a": 3, "b": 3})

	// A classic member (franz-go's cooperative-sticky, JoinGroup and
	// SyncGroup) joins the same group.
	c := startMember848(t, n.addr, group, topic, "c", false, see)
	defer c.close()
	types := waitSplit(map[string]int{"a": 2, "b": 2, "c": 2})
	if types["a"] != 1 || types["b"] != 1 || types["c"] != 0 {
		t.Errorf("member types %v, want a and b consumer (1), c classic (0)", types)
	}
	for ctx.Err() == nil && c.ownedCount() != 2 {
		time.Sleep(100 * time.Millisecond)
	}

	stopProd()
	total := <-produced
	if total < 100 {
		t.Fatalf("produced only %d records", total)
	}
	for ctx.Err() == nil {
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k == total {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	if len(seen) != total {
		t.Fatalf("members read %d distinct records of %d produced", len(seen), total)
	}
	mu.Unlock()
	for _, m := range []*member848{a, b, c} {
		m.mu.Lock()
		if m.emptied {
			t.Errorf("member %s read records while it owned no partition", m.name)
		}
		m.mu.Unlock()
	}
	if a.ownedCount() == 0 {
		t.Errorf("member a owns nothing at the end")
	}

	// Committed offsets reach the high watermarks once the members commit.
	for _, m := range []*member848{a, b, c} {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Errorf("member %s commit: %v", m.name, err)
		}
	}
	adm := kadm.NewClient(admin)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(lo kadm.ListedOffset) {
		o, ok := offs.Lookup(topic, lo.Partition)
		if lo.Err != nil || !ok || o.Err != nil || o.At != lo.Offset {
			t.Errorf("partition %d: committed %v (%v, found %v), high watermark %d (%v)", lo.Partition, o.At, o.Err, ok, lo.Offset, lo.Err)
		}
	})
}

// TestConsumerGroup848JoinsAClassicGroup: a classic group of two franz-go
// members is running when a KIP-848 member joins it: the group becomes a
// consumer group with the classic members in it, the partitions are split
// over all three, and every record is still read.
func TestConsumerGroup848JoinsAClassicGroup(t *testing.T) {
	n := startNode(t, nil)
	const topic, group = "up848", "upgrade"
	n.createTopic(topic, 6)
	setGroupConfigs(t, n.addr, group, map[string]string{"consumer.heartbeat.interval.ms": "1000"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin := mustClient(t, n.addr)
	var mu sync.Mutex
	seen := map[string]bool{}
	see := func(v string) { mu.Lock(); seen[v] = true; mu.Unlock() }
	produceNumberedRR := func(from, k int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := from; i < from+k; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceNumberedRR(0, 60)
	a := startMember848(t, n.addr, group, topic, "a", false, see)
	defer a.close()
	b := startMember848(t, n.addr, group, topic, "b", false, see)
	defer b.close()
	// The classic group settles: three partitions each.
	for ctx.Err() == nil && (a.ownedCount() != 3 || b.ownedCount() != 3) {
		time.Sleep(100 * time.Millisecond)
	}
	c := startMember848(t, n.addr, group, topic, "c", true, see)
	defer c.close()
	var last string
	for ctx.Err() == nil {
		state, members, types, err := describe848(ctx, admin, group)
		last = fmt.Sprintf("%s %v %v %v", state, members, types, err)
		if err == nil && state == "Stable" && len(members["a"]) == 2 && len(members["b"]) == 2 && len(members["c"]) == 2 &&
			types["a"] == 0 && types["b"] == 0 && types["c"] == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("the group never split over the classic and the new member: %s", last)
	}
	produceNumberedRR(60, 60)
	for ctx.Err() == nil {
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k == 120 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("read %d of 120 records", len(seen))
}

// TestConsumerGroup848StaticAndRegex: a static member (group.instance.id)
// that leaves for a moment (epoch -2) keeps its partitions: the other
// member never gets them, and the restarted instance has them back. A
// member subscribed by regex gets a topic created after it joined.
func TestConsumerGroup848StaticAndRegex(t *testing.T) {
	n := startNode(t, nil)
	const group = "static848"
	n.createTopic("st", 4)
	setGroupConfigs(t, n.addr, group, map[string]string{"consumer.heartbeat.interval.ms": "1000"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin := mustClient(t, n.addr)
	nop := func(string) {}
	waitFor848 := func(want map[string]int) {
		t.Helper()
		var last string
		for ctx.Err() == nil {
			st, members, _, err := describe848(ctx, admin, group)
			last = fmt.Sprintf("%s %v %v", st, members, err)
			ok := err == nil && st == "Stable" && len(members) == len(want)
			for k, v := range want {
				ok = ok && len(members[k]) == v
			}
			if ok {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("group never reached %v: %s", want, last)
	}
	s1 := startMember848(t, n.addr, group, "st", "s1", true, nop, kgo.InstanceID("inst-1"))
	other := startMember848(t, n.addr, group, "st", "other", true, nop)
	defer other.close()
	waitFor848(map[string]int{"s1": 2, "other": 2})
	_, before, _, _ := describe848(ctx, admin, group)
	s1.close() // a static member's close is a temporary leave (-2)
	time.Sleep(3 * time.Second)
	if k := other.ownedCount(); k != 2 {
		t.Fatalf("while the static member was away the other member owned %d partitions, want its 2", k)
	}
	s1 = startMember848(t, n.addr, group, "st", "s1", true, nop, kgo.InstanceID("inst-1"))
	defer s1.close()
	waitFor848(map[string]int{"s1": 2, "other": 2})
	_, after, _, _ := describe848(ctx, admin, group)
	if fmt.Sprint(before["s1"]) != fmt.Sprint(after["s1"]) {
		t.Errorf("the static member had %v, came back with %v", before["s1"], after["s1"])
	}

	// Regex: a member of another group subscribed to ^rx-.*$ gets rx-b,
	// created after it joined, and reads it.
	n.createTopic("rx-a", 1)
	var mu sync.Mutex
	seen := map[string]bool{}
	rx := startMember848(t, n.addr, "regex848", "", "rx", true, func(v string) { mu.Lock(); seen[v] = true; mu.Unlock() },
		kgo.ConsumeRegex(), kgo.ConsumeTopics("rx-.*"), kgo.MetadataMinAge(500*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	defer rx.close()
	n.createTopic("rx-b", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "rx-a", Value: []byte("a")}, &kgo.Record{Topic: "rx-b", Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		mu.Lock()
		done := seen["a"] && seen["b"]
		mu.Unlock()
		if done {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the regex member read %v, want a (rx-a) and b (rx-b)", seen)
}

// TestConsumerGroup848Transactions: a franz-go GroupTransactSession whose
// group uses the KIP-848 protocol reads one topic and writes another
// exactly once: TxnOffsetCommit takes the member's epoch as its
// generation.
func TestConsumerGroup848Transactions(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("eos-in", 2)
	n.createTopic("eos-out", 2)
	setGroupConfigs(t, n.addr, "eos848", map[string]string{"consumer.heartbeat.interval.ms": "1000"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.DefaultProduceTopic("eos-in"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const total = 200
	for i := range total {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(n.addr), kgo.TransactionalID("eos848-tx"), kgo.ConsumerGroup("eos848"), kgo.ServerSideBalancer(),
		kgo.ConsumeTopics("eos-in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("eos-out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < total && ctx.Err() == nil {
		fs := sess.PollFetches(ctx)
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		k := 0
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
			k++
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end transaction: %v", err)
		}
		if committed {
			done += k
		}
	}
	adm := kadm.NewClient(mustClient(t, n.addr))
	offs, err := adm.FetchOffsets(ctx, "eos848")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != total {
		t.Fatalf("committed offsets sum to %d, want %d: %v", sum, total, offs)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.ConsumeTopics("eos-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := map[string]int{}
	for len(got) < total && ctx.Err() == nil {
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
	}
	for v, c := range got {
		if c != 1 {
			t.Errorf("%s written %d times", v, c)
		}
	}
	if len(got) != total {
		t.Fatalf("read %d distinct records from eos-out, want %d", len(got), total)
	}
}
