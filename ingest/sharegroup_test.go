package ingest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// setGroupConfigs sets configs of a group through IncrementalAlterConfigs.
func setGroupConfigs(t testing.TB, addr, group string, kv map[string]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for k, v := range kv {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
		t.Fatalf("set group configs %v: %v (%s)", kv, err, deref(resp.Resources[0].ErrorMessage))
	}
}

func produceNumbered(t testing.TB, addr, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Batches of at most 10 records: a share fetch hands out whole
	// batches, so the consumers can share the records.
	for i := from; i < from+n; i += 10 {
		var recs []*kgo.Record
		for j := i; j < min(i+10, from+n); j++ {
			recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(j))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func shareConsumer(t testing.TB, addr, topic, group string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ShareGroup(group), kgo.FetchMaxWait(200 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestShareGroupEightConsumersOnePartition: eight franz-go share consumers
// on one partition. Every record is accepted exactly once; records released
// on their first delivery come again (to any consumer) and are then
// accepted; rejected records never come again.
func TestShareGroupEightConsumersOnePartition(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("queue", 1)
	const group, total = "workers", 600
	setGroupConfigs(t, n.addr, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceNumbered(t, n.addr, "queue", 0, total)

	var (
		mu        sync.Mutex
		accepted  = map[int]int{}
		delivered = map[int]int{}
		rejected  = map[int]bool{}
		consumers = map[int]map[string]bool{}
	)
	release := func(i int) bool { return i%10 == 0 }
	reject := func(i int) bool { return i%25 == 1 }
	want := 0
	for i := range total {
		if !reject(i) {
			want++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for c := range 8 {
		cl := shareConsumer(t, n.addr, "queue", group, kgo.ShareMaxRecords(20))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachError(func(topic string, p int32, err error) {
					if ctx.Err() == nil {
						t.Errorf("consumer %d: %s/%d: %v", c, topic, p, err)
					}
				})
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					i, _ := strconv.Atoi(string(r.Value))
					delivered[i]++
					if consumers[i] == nil {
						consumers[i] = map[string]bool{}
					}
					consumers[i][fmt.Sprint(c)] = true
					switch {
					case rejected[i] || accepted[i] > 0:
						t.Errorf("record %d delivered again after it was rejected or accepted", i)
						r.Ack(kgo.AckAccept)
					case reject(i):
						rejected[i] = true
						r.Ack(kgo.AckReject)
					case release(i) && delivered[i] == 1:
						r.Ack(kgo.AckRelease)
					default:
						accepted[i]++
						r.Ack(kgo.AckAccept)
					}
				})
				done := len(accepted) == want
				mu.Unlock()
				if err := cl.FlushAcks(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("consumer %d: flush acks: %v", c, err)
				}
				if done {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(accepted) != want {
		t.Fatalf("accepted %d distinct records, want %d", len(accepted), want)
	}
	busy := map[string]bool{}
	for i := range total {
		if reject(i) {
			if delivered[i] != 1 {
				t.Errorf("rejected record %d delivered %d times", i, delivered[i])
			}
			continue
		}
		if accepted[i] != 1 {
			t.Errorf("record %d accepted %d times", i, accepted[i])
		}
		if release(i) && delivered[i] != 2 {
			t.Errorf("released record %d delivered %d times, want 2", i, delivered[i])
		}
		for c := range consumers[i] {
			busy[c] = true
		}
	}
	if len(busy) < 2 {
		t.Errorf("only %d of 8 consumers got records from the shared partition", len(busy))
	}

	// The stored state: everything acknowledged or archived, so the share
	// partition's start offset is the end of the log.
	adm := kadm.NewClient(mustClient(t, n.addr))
	defer adm.Close()
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = group
	req.Groups = append(req.Groups, rg)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	resp, err := req.RequestWith(ctx2, mustClient(t, n.addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeShareGroupOffsets: %+v", resp.Groups)
	}
	p := resp.Groups[0].Topics[0].Partitions[0]
	if p.StartOffset != total || p.Lag != 0 {
		t.Errorf("share partition start offset %d, lag %d; want %d and 0", p.StartOffset, p.Lag, total)
	}
}

func mustClient(t testing.TB, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestShareGroupDeliveryLimit: a record released every time is delivered
// share.delivery.count.limit times, with a rising delivery count, and then
// archived: a later consumer never gets it.
func TestShareGroupDeliveryLimit(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("poison", 1)
	const group = "limit"
	setGroupConfigs(t, n.addr, group, map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.count.limit": "3"})
	produceNumbered(t, n.addr, "poison", 0, 1)
	cl := shareConsumer(t, n.addr, "poison", group)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var counts []int32
	for len(counts) < 3 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			counts = append(counts, r.DeliveryCount())
			r.Ack(kgo.AckRelease)
		})
		if err := cl.FlushAcks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(counts) != "[1 2 3]" {
		t.Fatalf("delivery counts %v, want [1 2 3]", counts)
	}
	cl.Close()
	// A new consumer: the poison record is archived.
	produceNumbered(t, n.addr, "poison", 1, 1)
	cl2 := shareConsumer(t, n.addr, "poison", group)
	var got []string
	for len(got) < 1 && ctx.Err() == nil {
		cl2.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Value))
			r.Ack(kgo.AckAccept)
		})
	}
	if fmt.Sprint(got) != "[1]" {
		t.Fatalf("after the delivery limit a new consumer got %v, want only [1]", got)
	}
}

// TestGroupConfigs: group configs are set, described with their defaults,
// and bad names or values are refused with INVALID_CONFIG, changing nothing.
func TestGroupConfigs(t *testing.T) {
	n := startNode(t, nil)
	setGroupConfigs(t, n.addr, "cfg", map[string]string{"share.delivery.count.limit": "7"})
	cl := mustClient(t, n.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alter := func(name, value string) int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "cfg"
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = name, kmsg.StringPtr(value)
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Resources[0].ErrorCode
	}
	for _, bad := range [][2]string{
		{"share.delivery.count.limit", "1"},
		{"share.delivery.count.limit", "x"},
		{"share.auto.offset.reset", "middle"},
		{"share.isolation.level", "read_committed"},
		{"no.such.config", "1"},
	} {
		if code := alter(bad[0], bad[1]); code != kerr.InvalidConfig.Code {
			t.Errorf("%s=%s: %v, want INVALID_CONFIG", bad[0], bad[1], kerr.ErrorForCode(code))
		}
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "cfg"
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range resp.Resources[0].Configs {
		got[c.Name] = deref(c.Value)
	}
	if got["share.delivery.count.limit"] != "7" || got["share.auto.offset.reset"] != "latest" || got["share.record.lock.duration.ms"] != "30000" {
		t.Errorf("described group configs %v", got)
	}
}

// TestShareGroupBacklogMetrics: records a consumer holds show as in flight
// and acquired on the leader's metrics, with the start offset at the
// oldest of them; once accepted, nothing is in flight.
func TestShareGroupBacklogMetrics(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("backlog", 1)
	setGroupConfigs(t, n.addr, "b", map[string]string{"share.auto.offset.reset": "earliest"})
	produceNumbered(t, n.addr, "backlog", 0, 10)
	cl := shareConsumer(t, n.addr, "backlog", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 10 && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	gauge := func(name string) float64 {
		mfs, err := n.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	if f, a, s := gauge("strata_share_records_in_flight"), gauge("strata_share_records_acquired"), gauge("strata_share_start_offset"); f != 10 || a != 10 || s != 0 {
		t.Fatalf("holding 10 records: in flight %v, acquired %v, start %v; want 10, 10, 0", f, a, s)
	}
	for _, r := range got {
		r.Ack(kgo.AckAccept)
	}
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if f, s := gauge("strata_share_records_in_flight"), gauge("strata_share_start_offset"); f != 0 || s != 10 {
		t.Fatalf("after accepting: in flight %v, start %v; want 0 and 10", f, s)
	}
}

// TestShareGroupDeleteAndOffsets: a share group with a member cannot be
// deleted or have its offsets altered (NON_EMPTY_GROUP); once empty,
// AlterShareGroupOffsets moves its start and the next consumer starts
// there; DeleteGroups removes it, and ListGroups showed it as a share group.
func TestShareGroupDeleteAndOffsets(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("del", 1)
	setGroupConfigs(t, n.addr, "dg", map[string]string{"share.auto.offset.reset": "earliest"})
	produceNumbered(t, n.addr, "del", 0, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := shareConsumer(t, n.addr, "del", "dg")
	for got := 0; got < 1 && ctx.Err() == nil; {
		got += len(cl.PollFetches(ctx).Records())
	}
	adm := kadm.NewClient(mustClient(t, n.addr))
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"share"}
	lresp, err := lreq.RequestWith(ctx, mustClient(t, n.addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(lresp.Groups) != 1 || lresp.Groups[0].Group != "dg" || lresp.Groups[0].GroupType != "share" {
		t.Fatalf("ListGroups of type share: %+v", lresp.Groups)
	}
	alter := func() int16 {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = "dg"
		req.Topics = append(req.Topics, kmsg.AlterShareGroupOffsetsRequestTopic{Topic: "del", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 15}}})
		resp, err := req.RequestWith(ctx, mustClient(t, n.addr))
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			return resp.ErrorCode
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	deleteGroup := func() error {
		res, err := adm.DeleteGroups(ctx, "dg")
		if err != nil {
			return err
		}
		return res["dg"].Err
	}
	if code := alter(); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("alter with a member: %v, want NON_EMPTY_GROUP", kerr.ErrorForCode(code))
	}
	if err := deleteGroup(); err != kerr.NonEmptyGroup {
		t.Fatalf("delete with a member: %v, want NON_EMPTY_GROUP", err)
	}
	cl.Close() // leaves the group, releasing what it held
	for ctx.Err() == nil && alter() == kerr.NonEmptyGroup.Code {
		time.Sleep(100 * time.Millisecond)
	}
	if code := alter(); code != 0 {
		t.Fatalf("alter once empty: %v", kerr.ErrorForCode(code))
	}
	cl2 := shareConsumer(t, n.addr, "del", "dg")
	var first int
	for first == 0 && ctx.Err() == nil {
		for _, r := range cl2.PollFetches(ctx).Records() {
			if first == 0 {
				first, _ = strconv.Atoi(string(r.Value))
			}
		}
	}
	if first != 15 {
		t.Fatalf("after moving the start to 15, the first record delivered was %d", first)
	}
	cl2.Close()
	for ctx.Err() == nil && deleteGroup() == kerr.NonEmptyGroup {
		time.Sleep(100 * time.Millisecond)
	}
	if err := deleteGroup(); err != nil && err != kerr.GroupIDNotFound {
		t.Fatalf("delete once empty: %v", err)
	}
	st, found, err := n.srv.ShareStats(ctx, "dg", metadata.TP{Topic: "del", Partition: 0})
	if err != nil || found {
		t.Fatalf("share state after DeleteGroups: %+v found %v err %v", st, found, err)
	}
}
