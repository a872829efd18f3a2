package ingest

import (
	"context"
	"fmt"
	"hash/crc32"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// withAttributes returns a copy of batch with attrs or-ed into its
// attributes and the CRC recomputed, through kmsg's RecordBatch.
func withAttributes(t *testing.T, batch []byte, attrs int16) []byte {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		t.Fatal(err)
	}
	rb.Attributes |= attrs
	out := rb.AppendTo(nil)
	crc := crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli))
	rb.CRC = int32(crc)
	return rb.AppendTo(nil)
}

func TestProduceErrors(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("orders", 2)
	if _, err := n.meta.CreateTopic(context.Background(), "small", 1, map[string]string{"max.message.bytes": "100"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := n.meta.Topic("small"); return ok })

	good := func() []byte { return batch(t, "v", 2, kbatch.BuildOptions{}) }
	corrupt := good()
	corrupt[len(corrupt)-1] ^= 0xff // breaks the CRC
	tests := []struct {
		name    string
		acks    int16
		txnID   *string
		topic   string
		part    int32
		records []byte
		want    int16
	}{
		{"ok acks=1", 1, nil, "orders", 0, good(), 0},
		{"ok acks=all", -1, nil, "orders", 1, good(), 0},
		{"acks=2", 2, nil, "orders", 0, good(), kerr.InvalidRequiredAcks.Code},
		{"unknown topic", 1, nil, "nope", 0, good(), kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", 1, nil, "orders", 2, good(), kerr.UnknownTopicOrPartition.Code},
		{"negative partition", 1, nil, "orders", -1, good(), kerr.UnknownTopicOrPartition.Code},
		{"bad crc", 1, nil, "orders", 0, corrupt, kerr.CorruptMessage.Code},
		{"two batches", 1, nil, "orders", 0, append(good(), good()...), kerr.InvalidRecord.Code},
		{"no records", 1, nil, "orders", 0, nil, kerr.InvalidRecord.Code},
		{"control batch", 1, nil, "orders", 0, withAttributes(t, good(), 0x20), kerr.InvalidRecord.Code},
		{"bad codec", 1, nil, "orders", 0, withAttributes(t, good(), 0x07), kerr.UnsupportedCompressionType.Code},
		{"over max.message.bytes", 1, nil, "small", 0, batch(t, "big", 10, kbatch.BuildOptions{}), kerr.MessageTooLarge.Code},
		{"transactional, no transactional id", 1, nil, "orders", 0, withAttributes(t, good(), 0x10), kerr.TransactionalIDAuthorizationFailed.Code},
		{"transactional, no transaction begun", 1, kmsg.StringPtr("tx"), "orders", 0, withAttributes(t, good(), 0x10), kerr.InvalidTxnState.Code},
		{"transactional id, plain batch", 1, kmsg.StringPtr("tx"), "orders", 0, good(), 0},
		{"idempotent batch", 1, nil, "orders", 0, batch(t, "i", 2, kbatch.BuildOptions{ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0}), 0},
	}
	c := n.dial()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []int16{3, 7, 9, 12} {
				req := produceReq(v, tt.acks, tt.topic, tt.part, tt.records)
				req.TransactionID = tt.txnID
				resp := roundTrip[*kmsg.ProduceResponse](c, req)
				sp := resp.Topics[0].Partitions[0]
				if sp.ErrorCode != tt.want {
					t.Fatalf("v%d: error %v, want %v", v, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(tt.want))
				}
				if tt.want == 0 && (sp.BaseOffset < 0 || sp.LogAppendTime != -1) {
					t.Fatalf("v%d: base offset %d, log append time %d", v, sp.BaseOffset, sp.LogAppendTime)
				}
				if v >= 8 && tt.want != 0 && sp.ErrorMessage == nil {
					t.Fatalf("v%d: no error message", v)
				}
			}
		})
	}
}

// TestProduceBadPartitionFailsAlone: one partition's bad batch does not stop
// the others in the same request.
func TestProduceBadPartitionFailsAlone(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("mixed", 3)
	corrupt := batch(t, "x", 1, kbatch.BuildOptions{})
	corrupt[len(corrupt)-1] ^= 1
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "mixed"
	for p, records := range [][]byte{batch(t, "a", 2, kbatch.BuildOptions{}), corrupt, batch(t, "c", 3, kbatch.BuildOptions{Codec: kbatch.Zstd})} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	resp := roundTrip[*kmsg.ProduceResponse](n.dial(), req)
	got := map[int32]int16{}
	for _, sp := range resp.Topics[0].Partitions {
		got[sp.Partition] = sp.ErrorCode
	}
	want := map[int32]int16{0: 0, 1: kerr.CorruptMessage.Code, 2: 0}
	for p, code := range want {
		if got[p] != code {
			t.Errorf("partition %d: error %v, want %v", p, kerr.ErrorForCode(got[p]), kerr.ErrorForCode(code))
		}
	}
	// acks=all was answered: the good partitions are durable (visible).
	for p, hw := range map[int32]int64{0: 2, 1: 0, 2: 3} {
		part, err := n.tier.Partition(context.Background(), metadata.TP{Topic: "mixed", Partition: p})
		if err != nil {
			t.Fatal(err)
		}
		if got := part.HighWatermark(); got != hw {
			t.Errorf("partition %d: high watermark %d, want %d", p, got, hw)
		}
	}
}

// TestProduceByTopicID: v13 names topics by id.
func TestProduceByTopicID(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("byid", 1)
	c := n.dial()
	for _, tc := range []struct {
		id   [16]byte
		want int16
	}{{tp.ID, 0}, {[16]byte{1, 2, 3}, kerr.UnknownTopicID.Code}} {
		req := produceReq(13, -1, "", 0, batch(t, "id", 1, kbatch.BuildOptions{}))
		req.Topics[0].TopicID = tc.id
		resp := roundTrip[*kmsg.ProduceResponse](c, req)
		if got := resp.Topics[0]; got.TopicID != tc.id || got.Partitions[0].ErrorCode != tc.want {
			t.Fatalf("topic id %x: answered %x error %d, want error %d", tc.id, got.TopicID, got.Partitions[0].ErrorCode, tc.want)
		}
	}
}

// TestProduceTimeout: acks=all with a timeout shorter than a flush is
// REQUEST_TIMED_OUT (and the batch still becomes durable later).
func TestProduceTimeout(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("slow", 1)
	req := produceReq(9, -1, "slow", 0, batch(t, "t", 1, kbatch.BuildOptions{}))
	req.TimeoutMillis = 0
	resp := roundTrip[*kmsg.ProduceResponse](n.dial(), req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.RequestTimedOut.Code && code != 0 {
		t.Fatalf("error %v, want REQUEST_TIMED_OUT (or success if the flush won the race)", kerr.ErrorForCode(code))
	}
	part, err := n.tier.Partition(context.Background(), metadata.TP{Topic: "slow", Partition: 0})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return part.HighWatermark() == 1 })
}

// startClusterNode starts node id of the test's cluster (every node of a
// test shares its metadata): tier and server both have the id, and the
// node registers its address, so metadata spreads partitions over the
// test's nodes as in a real cluster.
func startClusterNode(t *testing.T, id int32) *testNode {
	t.Helper()
	n := startNode(t, func(c *Config) { c.NodeID, c.AutoCreateTopics = id, false })
	host, port, err := net.SplitHostPort(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.meta.RegisterNode(context.Background(), metadata.Node{ID: id, Host: host, Port: int32(p)}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLeaderHints (KIP-951): on a two-node cluster, a Produce (v10+) or
// Fetch (v16+) sent to the node that does not lead a partition is answered
// NOT_LEADER_OR_FOLLOWER with the real leader and its address, which then
// takes the same requests; older versions get no hint. A fetch with a stale
// leader epoch (FENCED_LEADER_EPOCH) names the leader's epoch.
func TestLeaderHints(t *testing.T) {
	a, b := startClusterNode(t, 1), startClusterNode(t, 2)
	waitFor(t, func() bool { return len(a.meta.Nodes()) == 2 && len(b.meta.Nodes()) == 2 })
	topic := a.createTopic("moved", 16)
	waitFor(t, func() bool { _, ok := b.meta.Topic("moved"); return ok })
	part := int32(-1)
	for p := range int32(16) {
		if n, ok := a.meta.AssignedNode(topicPartition("moved", p)); ok && n.ID == 2 {
			part = p
			break
		}
	}
	if part < 0 {
		t.Fatal("no partition of 16 assigned to node 2")
	}
	tp := topicPartition("moved", part)
	produce := func(c *client, v int16) *kmsg.ProduceResponse {
		t.Helper()
		req := produceReq(v, -1, "moved", part, batch(t, "m", 1, kbatch.BuildOptions{}))
		req.Topics[0].TopicID = topic.ID
		return roundTrip[*kmsg.ProduceResponse](c, req)
	}

	// b leads it once it opened it.
	cb := b.dial()
	if code := produce(cb, 9).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce to the leader: %v", kerr.ErrorForCode(code))
	}
	lead, err := b.tier.Partition(t.Context(), tp)
	if err != nil {
		t.Fatal(err)
	}
	epoch := lead.LeaderEpoch()
	waitFor(t, func() bool { l, ok := a.meta.Leader(tp); return ok && l.NodeID == 2 && l.Epoch == epoch })
	bHost, bPortStr, _ := net.SplitHostPort(b.addr)
	bPort, _ := strconv.Atoi(bPortStr)

	endpoint := func(id int32, host string, port int32, rack *string) string {
		return fmt.Sprintf("%d@%s:%d rack=%v", id, host, port, rack)
	}
	wantB := []string{endpoint(2, bHost, int32(bPort), nil)}
	ca := a.dial()
	for _, v := range []int16{9, 10, 11, 12, 13} {
		resp := produce(ca, v)
		sp := resp.Topics[0].Partitions[0]
		var nodes []string
		for _, n := range resp.Brokers {
			nodes = append(nodes, endpoint(n.NodeID, n.Host, n.Port, n.Rack))
		}
		if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce v%d to the other node: %v", v, kerr.ErrorForCode(sp.ErrorCode))
		}
		if v < 10 {
			if sp.CurrentLeader.LeaderID != -1 || len(nodes) != 0 {
				t.Fatalf("produce v%d: a hint (%+v, %v) before KIP-951", v, sp.CurrentLeader, nodes)
			}
			continue
		}
		if sp.CurrentLeader.LeaderID != 2 || sp.CurrentLeader.LeaderEpoch != epoch || !slices.Equal(nodes, wantB) {
			t.Fatalf("produce v%d: leader %+v, nodes %v; want node 2 at epoch %d, %v", v, sp.CurrentLeader, nodes, epoch, wantB)
		}
	}
	fetchHint := func(resp *kmsg.FetchResponse) (kmsg.FetchResponseTopicPartition, []string) {
		t.Helper()
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch: %d topics", len(resp.Topics))
		}
		var nodes []string
		for _, n := range resp.Brokers {
			nodes = append(nodes, endpoint(n.NodeID, n.Host, n.Port, n.Rack))
		}
		return resp.Topics[0].Partitions[0], nodes
	}
	for _, v := range []int16{15, 16, 17, 18} {
		sp, nodes := fetchHint(roundTrip[*kmsg.FetchResponse](ca, fetchReq(v, "moved", topic.ID, part, 0, 100, 1)))
		if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("fetch v%d from the other node: %v", v, kerr.ErrorForCode(sp.ErrorCode))
		}
		if v < 16 {
			if sp.CurrentLeader.LeaderID != -1 || len(nodes) != 0 {
				t.Fatalf("fetch v%d: a hint (%+v, %v) before KIP-951", v, sp.CurrentLeader, nodes)
			}
			continue
		}
		if sp.CurrentLeader.LeaderID != 2 || sp.CurrentLeader.LeaderEpoch != epoch || !slices.Equal(nodes, wantB) {
			t.Fatalf("fetch v%d: leader %+v, nodes %v; want node 2 at epoch %d, %v", v, sp.CurrentLeader, nodes, epoch, wantB)
		}
	}
	// In a fetch session too: the partition is answered with its hint on
	// every incremental fetch, named or not.
	full := roundTrip[*kmsg.FetchResponse](ca, sessionReq(16, 0, 0, 100, fetchAt{id: topic.ID, p: part}))
	if full.SessionID == 0 {
		t.Fatal("no session")
	}
	for epoch := int32(1); epoch <= 2; epoch++ {
		p, nodes := fetchHint(roundTrip[*kmsg.FetchResponse](ca, sessionReq(16, full.SessionID, epoch, 100)))
		if p.ErrorCode != kerr.NotLeaderForPartition.Code || p.CurrentLeader.LeaderID != 2 || !slices.Equal(nodes, wantB) {
			t.Fatalf("incremental fetch %d: %v, leader %+v, nodes %v", epoch, kerr.ErrorForCode(p.ErrorCode), p.CurrentLeader, nodes)
		}
	}

	// The hint is right: the node it names takes both.
	hinted := dial(t, net.JoinHostPort(bHost, bPortStr))
	if code := produce(hinted, 10).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce to the hinted leader: %v", kerr.ErrorForCode(code))
	}
	p, _ := fetchHint(roundTrip[*kmsg.FetchResponse](hinted, fetchReq(16, "moved", topic.ID, part, 0, 100, 1)))
	if p.ErrorCode != 0 || len(records(t, p.RecordBatches)) != 2 {
		t.Fatalf("fetch from the hinted leader: %v, %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}

	// FENCED_LEADER_EPOCH from the leader names its own epoch.
	req := fetchReq(16, "moved", topic.ID, part, 0, 100, 1)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch - 1
	if epoch-1 == -1 {
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = -2 // -1 means "not given"
	}
	p, nodes := fetchHint(roundTrip[*kmsg.FetchResponse](cb, req))
	if p.ErrorCode != kerr.FencedLeaderEpoch.Code || p.CurrentLeader.LeaderID != 2 || p.CurrentLeader.LeaderEpoch != epoch || !slices.Equal(nodes, wantB) {
		t.Fatalf("fenced fetch: %v, leader %+v, nodes %v", kerr.ErrorForCode(p.ErrorCode), p.CurrentLeader, nodes)
	}
}
