package ingest

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

func initPIDReq(v int16, txnID *string, id int64, epoch int16) *kmsg.InitProducerIDRequest {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = v
	req.TransactionalID = txnID
	req.TransactionTimeoutMillis = 60000
	req.ProducerID = id
	req.ProducerEpoch = epoch
	return req
}

func TestInitProducerID(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial()

	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		resp := roundTrip[*kmsg.InitProducerIDResponse](c, initPIDReq(v, nil, -1, -1))
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("v%d: error %v, id %d epoch %d (seen before: %v)", v, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, seen[resp.ProducerID])
		}
		seen[resp.ProducerID] = true
	}

	tests := []struct {
		name      string
		v         int16
		txnID     *string
		id        int64
		epoch     int16
		want      int16
		wantID    int64 // -2: a new id
		wantEpoch int16
	}{
		{"bump", 3, nil, 42, 7, 0, 42, 8},
		{"bump v5", 5, nil, 42, 0, 0, 42, 1},
		{"last bumpable epoch", 4, nil, 42, math.MaxInt16 - 2, 0, 42, math.MaxInt16 - 1},
		{"exhausted epoch", 4, nil, 42, math.MaxInt16 - 1, 0, -2, 0},
		{"id without epoch", 3, nil, 42, -1, kerr.InvalidRequest.Code, -1, -1},
		{"epoch without id", 3, nil, -1, 3, kerr.InvalidRequest.Code, -1, -1},
		{"negative id", 3, nil, -5, 3, kerr.InvalidRequest.Code, -1, -1},
		{"transactional", 1, kmsg.StringPtr("txn"), -1, -1, 0, -2, 0},
		{"transactional v4", 4, kmsg.StringPtr("txn-v4"), -1, -1, 0, -2, 0},
		{"transactional, stale producer", 4, kmsg.StringPtr("txn-v4"), 1, 0, kerr.ProducerFenced.Code, -1, -1},
		{"empty transactional id", 1, kmsg.StringPtr(""), -1, -1, kerr.InvalidRequest.Code, -1, -1},
	}
	for _, tt := range tests {
		resp := roundTrip[*kmsg.InitProducerIDResponse](c, initPIDReq(tt.v, tt.txnID, tt.id, tt.epoch))
		newID := tt.wantID == -2 && resp.ProducerID >= 0 && !seen[resp.ProducerID]
		if resp.ErrorCode != tt.want || (resp.ProducerID != tt.wantID && !newID) || resp.ProducerEpoch != tt.wantEpoch {
			t.Errorf("%s: error %v, id %d epoch %d; want %v, id %d epoch %d", tt.name, kerr.ErrorForCode(resp.ErrorCode),
				resp.ProducerID, resp.ProducerEpoch, kerr.ErrorForCode(tt.want), tt.wantID, tt.wantEpoch)
		}
		seen[resp.ProducerID] = true
	}
}

// TestProducerIDsUniqueAcrossNodes takes ids from two nodes of one cluster,
// more than a block each, and checks none is handed out twice.
func TestProducerIDsUniqueAcrossNodes(t *testing.T) {
	a := startNode(t, nil)
	b := startNode(t, func(c *Config) { c.NodeID = 2 })
	seen := make(map[int64]bool)
	for i := range 2*producerIDBlock + 10 {
		for _, n := range []*testNode{a, b} {
			id, err := n.srv.pids.take(t.Context(), n.meta)
			if err != nil {
				t.Fatal(err)
			}
			if id < 0 || seen[id] {
				t.Fatalf("take %d: id %d handed out twice (or negative)", i, id)
			}
			seen[id] = true
		}
	}
	// And over the wire, after the bulk.
	resp := roundTrip[*kmsg.InitProducerIDResponse](a.dial(), initPIDReq(4, nil, -1, -1))
	if resp.ErrorCode != 0 || seen[resp.ProducerID] {
		t.Fatalf("InitProducerId: error %v, id %d (seen: %v)", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, seen[resp.ProducerID])
	}
}

func describeProducersReq(topic string, partitions ...int32) *kmsg.DescribeProducersRequest {
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic = topic
	rt.Partitions = partitions
	req.Topics = append(req.Topics, rt)
	return req
}

func TestDescribeProducers(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("idem", 2)
	c := n.dial()

	pid := roundTrip[*kmsg.InitProducerIDResponse](c, initPIDReq(4, nil, -1, -1))
	produce := func(seq int32, count int) *kmsg.ProduceResponseTopicPartition {
		t.Helper()
		b := batch(t, "idem", count, kbatch.BuildOptions{ProducerID: pid.ProducerID, ProducerEpoch: pid.ProducerEpoch, BaseSequence: seq})
		sp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "idem", 0, b)).Topics[0].Partitions[0]
		return &sp
	}
	first := produce(0, 2)
	second := produce(2, 3)
	again := produce(2, 3) // a retry: answered with the original offset
	gap := produce(9, 1)
	if first.ErrorCode != 0 || second.ErrorCode != 0 || again.ErrorCode != 0 || again.BaseOffset != second.BaseOffset {
		t.Fatalf("produce: %+v %+v %+v", first, second, again)
	}
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(gap.ErrorCode))
	}

	resp := roundTrip[*kmsg.DescribeProducersResponse](c, describeProducersReq("idem", 0, 1, 2))
	parts := resp.Topics[0].Partitions
	if len(parts) != 3 || parts[0].ErrorCode != 0 || len(parts[0].ActiveProducers) != 1 {
		t.Fatalf("describe: %+v", resp.Topics)
	}
	ap := parts[0].ActiveProducers[0]
	if ap.ProducerID != pid.ProducerID || ap.ProducerEpoch != int32(pid.ProducerEpoch) || ap.LastSequence != 4 ||
		ap.LastTimestamp <= 0 || ap.CoordinatorEpoch != -1 || ap.CurrentTxnStartOffset != -1 {
		t.Errorf("producer %+v", ap)
	}
	if parts[1].ErrorCode != 0 || len(parts[1].ActiveProducers) != 0 {
		t.Errorf("partition without producers: %+v", parts[1])
	}
	if parts[2].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("partition 2: %v", kerr.ErrorForCode(parts[2].ErrorCode))
	}
	resp = roundTrip[*kmsg.DescribeProducersResponse](c, describeProducersReq("nope", 0))
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %v", kerr.ErrorForCode(code))
	}

	// An epoch bump (KIP-360) fences the old epoch.
	bumped := roundTrip[*kmsg.InitProducerIDResponse](c, initPIDReq(4, nil, pid.ProducerID, pid.ProducerEpoch))
	if bumped.ErrorCode != 0 || bumped.ProducerID != pid.ProducerID || bumped.ProducerEpoch != pid.ProducerEpoch+1 {
		t.Fatalf("bump: %+v", bumped)
	}
	b := batch(t, "bumped", 1, kbatch.BuildOptions{ProducerID: bumped.ProducerID, ProducerEpoch: bumped.ProducerEpoch, BaseSequence: 0})
	if sp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "idem", 0, b)).Topics[0].Partitions[0]; sp.ErrorCode != 0 {
		t.Fatalf("produce at the new epoch: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	if stale := produce(5, 1); stale.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce at the old epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(stale.ErrorCode))
	}
	ap = roundTrip[*kmsg.DescribeProducersResponse](c, describeProducersReq("idem", 0)).Topics[0].Partitions[0].ActiveProducers[0]
	if ap.ProducerEpoch != int32(bumped.ProducerEpoch) || ap.LastSequence != 0 {
		t.Errorf("after the bump: %+v", ap)
	}
}
