package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/metadata"
)

// TestClusterSurvivesKillNine runs three `strata serve` processes on one
// etcd and one object store, kills one with kill -9 while an idempotent
// producer is mid-stream, and checks what a platform team cares about: the
// dead node's partitions move to the others, every acknowledged record is
// there exactly once, in order per partition.
func TestClusterSurvivesKillNine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	procs, seeds := startProcCluster(t, ctx, 3)
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
	topic := "ha"
	ensureTopic(t, ctx, cl, topic)
	leaders := waitLeaders(t, ctx, cl, topic, 6)
	perNode := map[int32]int{}
	for _, l := range leaders {
		perNode[l]++
	}
	if len(perNode) < 2 {
		t.Fatalf("6 partitions led by %v: not spread over the nodes", perNode)
	}

	const total = 30000
	stream := newKeyedStream(ctx, cl, topic)
	stream.produce(0, total/3)
	// Kill a node that leads something while records are in flight.
	victim := 1
	for id, n := range perNode {
		if n > 0 {
			victim = int(id)
			break
		}
	}
	go stream.produce(total/3, total)
	procs[victim].kill(t)
	t.Logf("killed node %d (led %d partitions) with kill -9", victim, perNode[int32(victim)])
	stream.wait(t)
	for _, l := range waitLeaders(t, ctx, cl, topic, 6) {
		if l == int32(victim) {
			t.Fatalf("a partition is still led by the dead node %d", victim)
		}
	}
	var live []string
	for id, p := range procs {
		if id != victim {
			live = append(live, p.kafkaAddr)
		}
	}
	checkEachKeyOnce(t, consumeN(t, ctx, live[0], topic, total, kgo.SeedBrokers(live...)), total)
}

// waitLeaders polls until every one of the n partitions of topic has a
// leader (a node that just learnt of the topic through its watch may not
// know it yet) and returns them.
func waitLeaders(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, n int) map[int32]int32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaders := partitionLeaders(t, ctx, cl, topic)
		ok := len(leaders) == n
		for _, l := range leaders {
			ok = ok && l >= 0
		}
		if ok {
			return leaders
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: leaders %v, want %d partitions with a leader", topic, leaders, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// partitionLeaders returns the leader node of each partition of topic.
func partitionLeaders(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) map[int32]int32 {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	out := map[int32]int32{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			out[p.Partition] = p.Leader
		}
	}
	return out
}

// TestClusterOneCoordinatorPerGroup starts two nodes on one etcd and store
// and a consumer group whose two members bootstrap from different nodes:
// they must end up in one group (one coordinator), splitting the
// partitions, not in two groups that each read everything.
func TestClusterOneCoordinatorPerGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() })
	store := "file://" + t.TempDir()
	var addrs []string
	for id := int32(0); id < 2; id++ {
		cfg := node.DefaultConfig()
		cfg.NodeID = id
		cfg.DataDir = t.TempDir()
		cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", ""
		cfg.EtcdEndpoints = etcd.Endpoints()
		cfg.ObjectStore = store
		cfg.FlushInterval = 10 * time.Millisecond
		cfg.DefaultPartitions = 6
		n, err := node.Start(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n.Close(ctx)
		})
		addrs = append(addrs, n.KafkaAddr())
	}
	admin := newClient(t, addrs[0], kgo.SeedBrokers(addrs...))
	ensureTopic(t, ctx, admin, "shared")
	produceAll(t, ctx, admin, "shared", testRecords("shared", 600, 6))

	members := make([]*kgo.Client, 2)
	for i := range members {
		members[i] = newClient(t, addrs[i], kgo.ConsumerGroup("one-group"), kgo.ConsumeTopics("shared"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		go func(cl *kgo.Client) {
			for ctx.Err() == nil {
				if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
					return
				}
			}
		}(members[i])
	}
	// Wait until the coordinator (wherever it is) reports both members.
	deadline := time.Now().Add(time.Minute)
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"one-group"}
		resp, err := req.RequestWith(ctx, admin)
		if err == nil && len(resp.Groups) == 1 && resp.Groups[0].ErrorCode == 0 &&
			resp.Groups[0].State == "Stable" && len(resp.Groups[0].Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group never had both members under one coordinator: %+v, %v", resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And only one node claims to coordinate it.
	coordinators := 0
	for _, a := range addrs {
		cl := newClient(t, a, kgo.SeedBrokers(a))
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "one-group"
		req.CoordinatorKeys = []string{"one-group"}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		id := resp.NodeID
		if len(resp.Coordinators) == 1 {
			id = resp.Coordinators[0].NodeID
		}
		if id == 0 || id == 1 {
			coordinators |= 1 << id
		}
	}
	if coordinators != 1 && coordinators != 2 {
		t.Fatalf("nodes disagree on the coordinator of one-group (bitmask %b)", coordinators)
	}
}

// TestClusterPausedLeaderIsFenced pauses a leader (SIGSTOP) longer than its
// etcd lease while an idempotent producer keeps writing. Its partitions move
// to the live nodes; when it wakes up (SIGCONT) it still holds appends it
// had taken before the pause and will try to commit them under its old
// leadership. Fencing must refuse those commits: in the end every record is
// there exactly once.
func TestClusterPausedLeaderIsFenced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	procs, seeds := startProcCluster(t, ctx, 3)
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
	topic := "paused"
	ensureTopic(t, ctx, cl, topic)
	victim := int32(-1)
	for _, l := range waitLeaders(t, ctx, cl, topic, 6) {
		victim = l
		break
	}

	const total = 20000
	stream := newKeyedStream(ctx, cl, topic)
	stream.produce(0, total/4)
	proc := procs[victim].cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Logf("paused node %d", victim)
	go stream.produce(total/4, total)
	// Longer than the 10s lease: the other nodes take its partitions.
	deadline := time.Now().Add(time.Minute)
	for {
		ls := partitionLeaders(t, ctx, newClient(t, seeds[(victim+1)%3], kgo.SeedBrokers(seeds[(victim+1)%3])), topic)
		moved := len(ls) == 6
		for _, l := range ls {
			if l == victim || l < 0 {
				moved = false
			}
		}
		if moved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("partitions of the paused node never moved")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed node %d after its partitions moved", victim)
	stream.wait(t)
	checkEachKeyOnce(t, consumeN(t, ctx, seeds[(victim+1)%3], topic, total, kgo.SeedBrokers(seeds...)), total)
	// Give the woken node time to try its stale commits, then read again:
	// nothing it held may have slipped in.
	time.Sleep(2 * time.Second)
	var sum int64
	for _, hw := range highWatermarks(t, ctx, cl, topic, 6) {
		sum += hw
	}
	if sum != total {
		t.Fatalf("after the paused node woke up the partitions hold %d records, want %d", sum, total)
	}
}
