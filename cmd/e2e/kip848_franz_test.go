package e2e

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

// TestKIP848FranzCoordinatorKillNine: two franz-go members on the KIP-848
// protocol split six partitions on a three-node cluster while records
// flow; the group's coordinator is killed with kill -9. The next
// coordinator loads the group from etcd and carries on: the members keep
// their member ids (nobody was told it is unknown), they read every
// record produced, and their committed offsets reach the high watermarks.
func TestKIP848FranzCoordinatorKillNine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	procs, seeds := startProcCluster(t, ctx, 3)
	const topic, group = "k848", "k848-group"
	admin := newClient(t, seeds[0], kgo.SeedBrokers(seeds...))
	ensureTopic(t, ctx, admin, topic)
	setGroupConfigE2E(t, ctx, admin, group, map[string]string{"consumer.heartbeat.interval.ms": "1000"})

	var mu sync.Mutex
	seen := map[string]int{}
	produced := 0
	prodCtx, stopProd := context.WithCancel(ctx)
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for i := 0; i < 100000 && prodCtx.Err() == nil; i++ {
			if err := cl.ProduceSync(prodCtx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				if prodCtx.Err() == nil {
					t.Errorf("produce %d: %v", i, err)
				}
				return
			}
			mu.Lock()
			produced = i + 1
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var members []*kgo.Client
	var wg sync.WaitGroup
	readCtx, stopRead := context.WithCancel(ctx)
	for _, name := range []string{"m1", "m2"} {
		cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ServerSideBalancer(), kgo.ClientID(name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(500*time.Millisecond))
		members = append(members, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for readCtx.Err() == nil {
				cl.PollFetches(readCtx).EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					mu.Unlock()
				})
			}
		}()
	}
	killed := -1
	liveSeeds := func() []string {
		var out []string
		for id, p := range procs {
			if id != killed {
				out = append(out, p.kafkaAddr)
			}
		}
		return out
	}
	describe := func() (string, map[string]string, map[string]int) {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{group}
		// A fresh client each time, with a short timeout: a client
		// that cached the dead coordinator keeps retrying it.
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(liveSeeds()...))
		if err != nil {
			return err.Error(), nil, nil
		}
		defer cl.Close()
		resp, err := req.RequestWith(dctx, cl)
		if err != nil {
			return "request: " + err.Error(), nil, nil
		}
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			return fmt.Sprintf("answer: %+v", resp.Groups), nil, nil
		}
		ids, counts := map[string]string{}, map[string]int{}
		for _, m := range resp.Groups[0].Members {
			ids[m.ClientID] = m.MemberID
			for _, tp := range m.Assignment.TopicPartitions {
				counts[m.ClientID] += len(tp.Partitions)
			}
		}
		return resp.Groups[0].State, ids, counts
	}
	waitSplit := func() map[string]string {
		t.Helper()
		for ctx.Err() == nil {
			st, ids, counts := describe()
			if st == "Stable" && counts["m1"] == 3 && counts["m2"] == 3 {
				return ids
			}
			time.Sleep(250 * time.Millisecond)
		}
		st, ids, counts := describe()
		t.Fatalf("group never split 3/3: %s %v %v", st, ids, counts)
		return nil
	}
	before := waitSplit()

	coord := findCoordinator(t, ctx, admin, group)
	killed = coord
	procs[coord].kill(t)
	t.Logf("killed node %d, the coordinator of %s, with kill -9", coord, group)
	time.Sleep(3 * time.Second) // records keep flowing while the group moves
	after := waitSplit()
	for name, id := range before {
		if after[name] != id {
			t.Errorf("member %s rejoined as %s (was %s): the new coordinator did not carry the group on", name, after[name], id)
		}
	}

	stopProd()
	<-prodDone
	mu.Lock()
	total := produced
	mu.Unlock()
	for ctx.Err() == nil {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= total {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopRead()
	wg.Wait()
	mu.Lock()
	missing, dups := 0, 0
	for i := 0; i < total; i++ {
		switch seen[strconv.Itoa(i)] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	mu.Unlock()
	t.Logf("produced %d records; read again after the kill (allowed): %d", total, dups)
	if missing > 0 {
		t.Fatalf("%d of %d produced records were never read", missing, total)
	}
	for _, cl := range members {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	var live []string
	for id, p := range procs {
		if id != coord {
			live = append(live, p.kafkaAddr)
		}
	}
	adm := kadm.NewClient(newClient(t, live[0], kgo.SeedBrokers(live...)))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	ends.Each(func(lo kadm.ListedOffset) {
		if o, ok := offs.Lookup(topic, lo.Partition); !ok || o.At != lo.Offset {
			bad = append(bad, strconv.Itoa(int(lo.Partition)))
		}
	})
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("partitions %v: committed offsets %v, high watermarks %v", bad, offs, ends)
	}
}

// findCoordinator returns the node coordinating group.
func findCoordinator(t *testing.T, ctx context.Context, cl *kgo.Client, group string) int {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Coordinators) == 1 {
		if err := kerr.ErrorForCode(resp.Coordinators[0].ErrorCode); err != nil {
			t.Fatal(err)
		}
		return int(resp.Coordinators[0].NodeID)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return int(resp.NodeID)
}

// setGroupConfigE2E sets group configs (IncrementalAlterConfigs, GROUP).
func setGroupConfigE2E(t *testing.T, ctx context.Context, cl *kgo.Client, group string, kv map[string]string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for k, v := range kv {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
		t.Fatalf("group config: %v", err)
	}
}
