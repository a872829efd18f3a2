package ingest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

// logCapture is a kgo.Logger that keeps every line.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCapture) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *logCapture) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %s %v", level, msg, keyvals))
}

func (l *logCapture) matching(sub ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		all := true
		for _, s := range sub {
			all = all && strings.Contains(line, s)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// TestInternalTopicRegexConsumer: a franz-go group consumer subscribed by
// regex (.*) reads two real topics, is never assigned __consumer_offsets
// (franz-go skips topics Metadata marks internal) and sees no error.
func TestInternalTopicRegexConsumer(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("regex-a", 1)
	n.createTopic("regex-b", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	producer, err := kgo.NewClient(kgo.SeedBrokers(n.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	const perTopic = 10
	for _, topic := range []string{"regex-a", "regex-b"} {
		for i := range perTopic {
			if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		}
	}

	logs := &logCapture{}
	var (
		mu       sync.Mutex
		assigned = map[string]bool{}
	)
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(n.addr),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(".*"),
		kgo.ConsumerGroup("regex-readers"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.WithLogger(logs),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for topic := range m {
				assigned[topic] = true
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()

	got := map[string]int{}
	for got["regex-a"]+got["regex-b"] < 2*perTopic {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %v of %d per topic: %v", got, perTopic, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[r.Topic]++ })
	}
	if got["regex-a"] != perTopic || got["regex-b"] != perTopic || len(got) != 2 {
		t.Fatalf("consumed %v, want %d of regex-a and regex-b each", got, perTopic)
	}
	mu.Lock()
	if assigned[consumerOffsetsTopic] || len(assigned) != 2 {
		t.Errorf("assigned topics %v, want regex-a and regex-b only", assigned)
	}
	mu.Unlock()

	// franz-go saw the topic and skipped it because Metadata marks it
	// internal, and logged nothing else about it.
	if evaluated := logs.matching("consumer regular expressions evaluated", "skipped_internal", consumerOffsetsTopic); len(evaluated) == 0 {
		t.Errorf("franz-go never skipped %s as internal; regex log lines: %q", consumerOffsetsTopic, logs.matching("regular expressions"))
	}
	for _, line := range logs.matching(consumerOffsetsTopic) {
		if !strings.Contains(line, "consumer regular expressions evaluated") {
			t.Errorf("franz-go logged about %s: %s", consumerOffsetsTopic, line)
		}
	}
	for _, level := range []string{"WARN", "ERROR"} {
		for _, line := range logs.matching(level) {
			t.Errorf("franz-go logged: %s", line)
		}
	}
}

// TestInternalTopicID: the internal topic's id is a pure function of its
// name, pinned here so no node or release answers another one, and is a
// valid Kafka topic id (not zero, not Kafka's reserved metadata id, and its
// base64 form does not start with '-', which Kafka's Uuid avoids).
func TestInternalTopicID(t *testing.T) {
	const want = "6476160f2fea8f10816334ab8ac4ea66"
	if got := consumerOffsetsID.String(); got != want {
		t.Fatalf("%s id %s, want %s", consumerOffsetsTopic, got, want)
	}
	if internalTopicID(consumerOffsetsTopic) != consumerOffsetsID {
		t.Fatal("id not deterministic")
	}
	if b64 := base64.RawURLEncoding.EncodeToString(consumerOffsetsID[:]); strings.HasPrefix(b64, "-") {
		t.Fatalf("id %s starts with '-' in base64", b64)
	}
	if consumerOffsetsID == ([16]byte{}) || consumerOffsetsID == ([16]byte{15: 1}) {
		t.Fatal("id is one Kafka reserves")
	}
}

func newKgo(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestInternalTopicMetadata: kadm lists __consumer_offsets as internal (one
// partition led by the node, the derived id) with ListTopicsWithInternal,
// and ListTopics leaves it out; raw Metadata answers it for all topics (v0
// empty list, v1 and v12 null), by name (never auto-creating it) and by id.
func TestInternalTopicMetadata(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("listed", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKgo(t, n.addr))

	all, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := all.Error(); err != nil {
		t.Fatal(err)
	}
	co, ok := all[consumerOffsetsTopic]
	if !ok || !co.IsInternal || co.ID != kadm.TopicID(consumerOffsetsID) || len(co.Partitions) != internalTopicPartitions {
		t.Fatalf("ListTopicsWithInternal: %s = %+v (present %v)", consumerOffsetsTopic, co, ok)
	}
	if p := co.Partitions[0]; p.Leader != 1 || p.LeaderEpoch != 0 || fmt.Sprint(p.Replicas, p.ISR) != "[1] [1]" || p.Err != nil {
		t.Fatalf("partition 0: %+v", p)
	}
	if l, ok := all["listed"]; !ok || l.IsInternal || len(l.Partitions) != 2 {
		t.Fatalf("ListTopicsWithInternal: listed = %+v (present %v)", l, ok)
	}
	if len(all) != 2 {
		t.Fatalf("ListTopicsWithInternal: %v, want listed and %s", all.Names(), consumerOffsetsTopic)
	}
	plain, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := plain.Names(); fmt.Sprint(names) != "[listed]" {
		t.Fatalf("ListTopics: %v, want [listed]", names)
	}
	named, err := adm.ListTopics(ctx, consumerOffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if d := named[consumerOffsetsTopic]; d.Err != nil || !d.IsInternal {
		t.Fatalf("ListTopics by name: %+v", d)
	}

	c := n.dial()
	for _, req := range []*kmsg.MetadataRequest{metadataReq(0, []string{}...), metadataReq(1), metadataReq(12)} {
		resp := roundTrip[*kmsg.MetadataResponse](c, req)
		var found []kmsg.MetadataResponseTopic
		for _, st := range resp.Topics {
			if deref(st.Topic) == consumerOffsetsTopic {
				found = append(found, st)
			}
		}
		if len(resp.Topics) != 2 || len(found) != 1 || found[0].ErrorCode != 0 || len(found[0].Partitions) != 1 ||
			(req.Version >= 1 && !found[0].IsInternal) || (req.Version >= 10 && found[0].TopicID != consumerOffsetsID) {
			t.Fatalf("v%d all topics: %+v", req.Version, resp.Topics)
		}
	}
	// By name, with auto-creation allowed: answered, not created.
	resp := roundTrip[*kmsg.MetadataResponse](c, metadataReq(12, consumerOffsetsTopic))
	if st := resp.Topics[0]; st.ErrorCode != 0 || !st.IsInternal || st.TopicID != consumerOffsetsID || len(st.Partitions) != 1 {
		t.Fatalf("by name: %+v", st)
	}
	if _, ok := n.meta.Topic(consumerOffsetsTopic); ok {
		t.Fatalf("%s was created in metadata", consumerOffsetsTopic)
	}
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = consumerOffsetsID
	byID.Topics = append(byID.Topics, rt)
	resp = roundTrip[*kmsg.MetadataResponse](c, byID)
	if st := resp.Topics[0]; st.ErrorCode != 0 || deref(st.Topic) != consumerOffsetsTopic || !st.IsInternal {
		t.Fatalf("by id: %+v", st)
	}
}

// TestInternalTopicProduceRefused: franz-go's producer gets
// INVALID_TOPIC_EXCEPTION for __consumer_offsets (Kafka's answer to clients
// appending to an internal topic), by name (v9) and by id (v13) alike, and
// nothing is created or stored.
func TestInternalTopicProduceRefused(t *testing.T) {
	n := startNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, opts := range [][]kgo.Opt{nil, {kgo.DisableIdempotentWrite()}} {
		cl := newKgo(t, n.addr, opts...)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: consumerOffsetsTopic, Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.InvalidTopicException) {
			t.Fatalf("producing to %s: %v, want INVALID_TOPIC_EXCEPTION", consumerOffsetsTopic, err)
		}
	}

	c := n.dial()
	for _, tc := range []struct {
		name      string
		version   int16
		partition int32
		want      int16
	}{
		{"v9 partition 0", 9, 0, kerr.InvalidTopicException.Code},
		{"v13 by id", 13, 0, kerr.InvalidTopicException.Code},
		{"v9 partition 1", 9, 1, kerr.UnknownTopicOrPartition.Code},
	} {
		req := produceReq(tc.version, 1, consumerOffsetsTopic, tc.partition, batch(t, "x", 1, kbatch.BuildOptions{}))
		if tc.version >= 13 {
			req.Topics[0].Topic = ""
			req.Topics[0].TopicID = consumerOffsetsID
		}
		resp := roundTrip[*kmsg.ProduceResponse](c, req)
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(tc.want))
		}
		if tc.want == kerr.InvalidTopicException.Code && (sp.ErrorMessage == nil || !strings.Contains(*sp.ErrorMessage, "internal topic")) {
			t.Errorf("%s: message %v", tc.name, sp.ErrorMessage)
		}
	}
	if _, ok := n.meta.Topic(consumerOffsetsTopic); ok {
		t.Fatalf("%s was created in metadata", consumerOffsetsTopic)
	}
}

// TestInternalTopicAdmin: creating __consumer_offsets is TOPIC_ALREADY_EXISTS
// (and a name colliding with it INVALID_TOPIC_EXCEPTION); deleting it, by
// name or id, is INVALID_REQUEST; DeleteRecords on it INVALID_TOPIC_EXCEPTION.
// A real topic of that name left in metadata from before is shadowed by the
// internal one and deleted by name.
func TestInternalTopicAdmin(t *testing.T) {
	n := startNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKgo(t, n.addr))

	created, err := adm.CreateTopics(ctx, 1, 1, nil, consumerOffsetsTopic, "__consumer.offsets")
	if err != nil {
		t.Fatal(err)
	}
	if r := created[consumerOffsetsTopic]; !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		t.Errorf("create %s: %v %q, want TOPIC_ALREADY_EXISTS", consumerOffsetsTopic, r.Err, r.ErrMessage)
	}
	if r := created["__consumer.offsets"]; !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Errorf("create __consumer.offsets: %v %q, want INVALID_TOPIC_EXCEPTION", r.Err, r.ErrMessage)
	}
	if r, err := adm.ValidateCreateTopics(ctx, 1, 1, nil, consumerOffsetsTopic); err != nil || !errors.Is(r[consumerOffsetsTopic].Err, kerr.TopicAlreadyExists) {
		t.Errorf("validate-only create: %v %v", err, r[consumerOffsetsTopic].Err)
	}

	deleted, err := adm.DeleteTopics(ctx, consumerOffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if r := deleted[consumerOffsetsTopic]; !errors.Is(r.Err, kerr.InvalidRequest) || !strings.Contains(r.ErrMessage, "internal") {
		t.Errorf("delete %s: %v %q, want INVALID_REQUEST", consumerOffsetsTopic, r.Err, r.ErrMessage)
	}
	c := n.dial()
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 6
	del.TimeoutMillis = 10000
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = consumerOffsetsID
	del.Topics = append(del.Topics, dt)
	if st := roundTrip[*kmsg.DeleteTopicsResponse](c, del).Topics[0]; st.ErrorCode != kerr.InvalidRequest.Code || deref(st.Topic) != consumerOffsetsTopic {
		t.Errorf("delete by id: %v %v", kerr.ErrorForCode(st.ErrorCode), deref(st.ErrorMessage))
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Version = 2
	dr.TimeoutMillis = 10000
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = consumerOffsetsTopic
	for _, p := range []int32{0, 1} {
		drp := kmsg.NewDeleteRecordsRequestTopicPartition()
		drp.Partition, drp.Offset = p, -1
		drt.Partitions = append(drt.Partitions, drp)
	}
	dr.Topics = append(dr.Topics, drt)
	ps := roundTrip[*kmsg.DeleteRecordsResponse](c, dr).Topics[0].Partitions
	if ps[0].ErrorCode != kerr.InvalidTopicException.Code || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("delete records: %v, %v", kerr.ErrorForCode(ps[0].ErrorCode), kerr.ErrorForCode(ps[1].ErrorCode))
	}

	// A real topic of that name, as a client could auto-create before.
	real := n.createTopic(consumerOffsetsTopic, 3)
	all, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := all[consumerOffsetsTopic]; len(all) != 1 || !d.IsInternal || d.ID != kadm.TopicID(consumerOffsetsID) || len(d.Partitions) != 1 {
		t.Fatalf("with a real %s in metadata: %+v", consumerOffsetsTopic, all)
	}
	realByID := kmsg.NewPtrMetadataRequest()
	realByID.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = real.ID
	realByID.Topics = append(realByID.Topics, rt)
	if st := roundTrip[*kmsg.MetadataResponse](c, realByID).Topics[0]; st.ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("the shadowed topic by id: %v, want UNKNOWN_TOPIC_ID", kerr.ErrorForCode(st.ErrorCode))
	}
	if deleted, err := adm.DeleteTopics(ctx, consumerOffsetsTopic); err != nil || deleted[consumerOffsetsTopic].Err != nil {
		t.Fatalf("deleting the shadowed topic: %v %v", err, deleted[consumerOffsetsTopic].Err)
	}
	waitFor(t, func() bool { _, ok := n.meta.Topic(consumerOffsetsTopic); return !ok })
	if deleted, err := adm.DeleteTopics(ctx, consumerOffsetsTopic); err != nil || !errors.Is(deleted[consumerOffsetsTopic].Err, kerr.InvalidRequest) {
		t.Fatalf("deleting again: %v %v", err, deleted[consumerOffsetsTopic].Err)
	}
}

// TestInternalTopicReads: Fetch, ListOffsets and OffsetForLeaderEpoch answer
// __consumer_offsets as an empty partition (log start 0, high watermark 0),
// and a franz-go consumer of it polls without an error.
func TestInternalTopicReads(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial()

	for _, tc := range []struct {
		name      string
		req       *kmsg.FetchRequest
		committed bool
		want      int16
	}{
		{"v12 offset 0", fetchReq(12, consumerOffsetsTopic, [16]byte{}, 0, 0, 100, 1), false, 0},
		{"v13 by id", fetchReq(13, "", consumerOffsetsID, 0, 0, 100, 1), false, 0},
		{"read_committed", fetchReq(12, consumerOffsetsTopic, [16]byte{}, 0, 0, 100, 1), true, 0},
		{"offset 5", fetchReq(12, consumerOffsetsTopic, [16]byte{}, 0, 5, 100, 1), false, kerr.OffsetOutOfRange.Code},
		{"partition 1", fetchReq(12, consumerOffsetsTopic, [16]byte{}, 1, 0, 100, 1), false, kerr.UnknownTopicOrPartition.Code},
	} {
		if tc.committed {
			tc.req.IsolationLevel = 1
		}
		start := time.Now()
		resp := roundTrip[*kmsg.FetchResponse](c, tc.req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%s: %+v", tc.name, resp)
		}
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(tc.want))
			continue
		}
		if tc.want == 0 {
			if sp.HighWatermark != 0 || sp.LastStableOffset != 0 || sp.LogStartOffset != 0 || len(sp.RecordBatches) != 0 {
				t.Errorf("%s: hw %d lso %d log start %d, %d bytes", tc.name, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset, len(sp.RecordBatches))
			}
			if tc.committed && sp.AbortedTransactions == nil {
				t.Errorf("%s: null aborted transactions", tc.name)
			}
			if d := time.Since(start); d < 90*time.Millisecond {
				t.Errorf("%s: answered after %v, want the long poll (100ms)", tc.name, d)
			}
		}
	}

	for _, w := range []struct {
		partition  int32
		ts, offset int64
		epoch      int32
		code       int16
	}{
		{0, -1, 0, 0, 0},  // latest
		{0, -2, 0, -1, 0}, // earliest
		{0, -4, 0, -1, 0}, // earliest local
		{0, -3, -1, -1, 0},
		{0, 0, -1, -1, 0},
		{1, -1, -1, -1, kerr.UnknownTopicOrPartition.Code},
	} {
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.Version = 8
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = consumerOffsetsTopic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp, p.CurrentLeaderEpoch = w.partition, w.ts, -1
		lt.Partitions = append(lt.Partitions, p)
		lo.Topics = append(lo.Topics, lt)
		sp := roundTrip[*kmsg.ListOffsetsResponse](c, lo).Topics[0].Partitions[0]
		if sp.Offset != w.offset || sp.LeaderEpoch != w.epoch || sp.ErrorCode != w.code {
			t.Errorf("list offsets %+v: offset %d epoch %d, %v", w, sp.Offset, sp.LeaderEpoch, kerr.ErrorForCode(sp.ErrorCode))
		}
	}

	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.Version = 4
	oe.ReplicaID = -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = consumerOffsetsTopic
	for _, epoch := range []int32{0, 3} {
		op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		op.Partition, op.CurrentLeaderEpoch, op.LeaderEpoch = 0, 0, epoch
		ot.Partitions = append(ot.Partitions, op)
	}
	oe.Topics = append(oe.Topics, ot)
	ops := roundTrip[*kmsg.OffsetForLeaderEpochResponse](c, oe).Topics[0].Partitions
	if ops[0].ErrorCode != 0 || ops[0].LeaderEpoch != 0 || ops[0].EndOffset != 0 ||
		ops[1].ErrorCode != 0 || ops[1].LeaderEpoch != -1 || ops[1].EndOffset != -1 {
		t.Errorf("offset for leader epoch: %+v", ops)
	}

	// A franz-go consumer of the topic (as a tool reading it would be) finds
	// nothing and no error.
	cl := newKgo(t, n.addr, kgo.ConsumeTopics(consumerOffsetsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("consuming %s/%d: %v", topic, p, err)
			}
		})
		if fs.NumRecords() != 0 {
			t.Fatalf("%d records from %s", fs.NumRecords(), consumerOffsetsTopic)
		}
	}
}
