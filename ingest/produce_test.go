package ingest

import (
	"context"
	"hash/crc32"
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
