package ingest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

func deleteRecordsReq(v int16, topic string, partition int32, offset int64) *kmsg.DeleteRecordsRequest {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = v
	req.TimeoutMillis = 10000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition = partition
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// earliest asks ListOffsets for a partition's log start offset.
func earliest(t *testing.T, c *client, topic string, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = -2
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	sp := roundTrip[*kmsg.ListOffsetsResponse](c, req).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("ListOffsets earliest: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	return sp.Offset
}

func TestDeleteRecords(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("dr", 2)
	c := n.dial()
	produceN(t, c, "dr", 5) // offsets 0..9

	steps := []struct {
		name   string
		v      int16
		part   int32
		offset int64
		want   int16
		low    int64
	}{
		{"delete below 4", 0, 0, 4, 0, 4},
		{"below the log start changes nothing", 1, 0, 2, 0, 4},
		{"beyond the high watermark", 2, 0, 11, kerr.OffsetOutOfRange.Code, -1},
		{"negative", 2, 0, -2, kerr.OffsetOutOfRange.Code, -1},
		{"up to the high watermark", 2, 0, -1, 0, 10},
		{"empty partition, -1", 1, 1, -1, 0, 0},
		{"empty partition, 1", 1, 1, 1, kerr.OffsetOutOfRange.Code, -1},
		{"unknown partition", 1, 2, 0, kerr.UnknownTopicOrPartition.Code, -1},
	}
	for _, st := range steps {
		sp := roundTrip[*kmsg.DeleteRecordsResponse](c, deleteRecordsReq(st.v, "dr", st.part, st.offset)).Topics[0].Partitions[0]
		if sp.ErrorCode != st.want || sp.LowWatermark != st.low {
			t.Fatalf("%s: error %v low %d, want %v low %d", st.name, kerr.ErrorForCode(sp.ErrorCode), sp.LowWatermark, kerr.ErrorForCode(st.want), st.low)
		}
		if st.name == "delete below 4" {
			if got := earliest(t, c, "dr", 0); got != 4 {
				t.Fatalf("earliest after deleting below 4: %d", got)
			}
			// Below the log start is gone; at it, records are still there.
			fr := roundTrip[*kmsg.FetchResponse](c, fetchReq(12, "dr", [16]byte{}, 0, 2, 0, 1)).Topics[0].Partitions[0]
			if fr.ErrorCode != kerr.OffsetOutOfRange.Code || fr.LogStartOffset != 4 {
				t.Fatalf("fetch below the log start: %v, log start %d", kerr.ErrorForCode(fr.ErrorCode), fr.LogStartOffset)
			}
			fr = roundTrip[*kmsg.FetchResponse](c, fetchReq(12, "dr", [16]byte{}, 0, 4, 0, 1)).Topics[0].Partitions[0]
			if fr.ErrorCode != 0 || len(records(t, fr.RecordBatches)) == 0 {
				t.Fatalf("fetch at the log start: %v, %d bytes", kerr.ErrorForCode(fr.ErrorCode), len(fr.RecordBatches))
			}
		}
	}
	if got := earliest(t, c, "dr", 0); got != 10 {
		t.Fatalf("earliest after deleting everything: %d", got)
	}
	sp := roundTrip[*kmsg.DeleteRecordsResponse](c, deleteRecordsReq(2, "nope", 0, 0)).Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
}

func offsetForEpochReq(v int16, topic string, partition, current, epoch int32) *kmsg.OffsetForLeaderEpochRequest {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = v
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition = partition
	rp.CurrentLeaderEpoch = current
	rp.LeaderEpoch = epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("ofle", 1)
	c := n.dial()
	produceN(t, c, "ofle", 3) // offsets 0..5 in the first epoch
	tp := topicPartition("ofle", 0)
	p, err := n.tier.Partition(t.Context(), tp)
	if err != nil {
		t.Fatal(err)
	}
	first := p.LeaderEpoch()
	// Another node takes the partition over (a new epoch) and this one
	// takes it back (another): the tier notices at its next commit.
	if _, err := n.meta.AcquireLeadership(t.Context(), tp, 9); err != nil {
		t.Fatal(err)
	}
	var epoch int32
	waitFor(t, func() bool {
		roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "ofle", 0, batch(t, "fenced", 1, kbatch.BuildOptions{})))
		np, err := n.tier.Partition(t.Context(), tp)
		if err != nil || np.LeaderEpoch() < first+2 {
			return false
		}
		p, epoch = np, np.LeaderEpoch()
		return true
	})
	if hw := p.HighWatermark(); hw != 6 {
		t.Fatalf("the fenced leader's batch is in the log: high watermark %d", hw)
	}
	produceN(t, c, "ofle", 1) // offsets 6..7 in the current epoch

	tests := []struct {
		name      string
		v         int16
		part      int32
		current   int32
		epoch     int32
		want      int16
		wantEpoch int32
		end       int64
	}{
		{"current epoch", 2, 0, -1, epoch, 0, epoch, 8},
		{"current epoch, checked", 4, 0, epoch, epoch, 0, epoch, 8},
		{"first epoch", 3, 0, epoch, first, 0, first, 6},
		{"the other node's epoch", 3, 0, epoch, epoch - 1, 0, epoch - 1, 6},
		{"later epoch", 4, 0, -1, epoch + 1, 0, -1, -1},
		{"negative epoch", 4, 0, -1, -1, 0, -1, -1},
		{"client ahead", 4, 0, epoch + 1, epoch, kerr.UnknownLeaderEpoch.Code, -1, -1},
		{"client fenced", 4, 0, epoch - 1, epoch, kerr.FencedLeaderEpoch.Code, -1, -1},
		{"v1", 1, 0, -1, epoch, 0, epoch, 8},
		{"unknown partition", 4, 1, -1, epoch, kerr.UnknownTopicOrPartition.Code, -1, -1},
	}
	for _, tt := range tests {
		sp := roundTrip[*kmsg.OffsetForLeaderEpochResponse](c, offsetForEpochReq(tt.v, "ofle", tt.part, tt.current, tt.epoch)).Topics[0].Partitions[0]
		if sp.ErrorCode != tt.want || sp.LeaderEpoch != tt.wantEpoch || sp.EndOffset != tt.end {
			t.Errorf("%s: error %v epoch %d end %d; want %v epoch %d end %d", tt.name, kerr.ErrorForCode(sp.ErrorCode),
				sp.LeaderEpoch, sp.EndOffset, kerr.ErrorForCode(tt.want), tt.wantEpoch, tt.end)
		}
	}
	// v0 has no LeaderEpoch in its response, only the end offset.
	sp := roundTrip[*kmsg.OffsetForLeaderEpochResponse](c, offsetForEpochReq(0, "ofle", 0, -1, epoch)).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.EndOffset != 8 {
		t.Errorf("v0: error %v end %d", kerr.ErrorForCode(sp.ErrorCode), sp.EndOffset)
	}
	sp = roundTrip[*kmsg.OffsetForLeaderEpochResponse](c, offsetForEpochReq(4, "nope", 0, -1, epoch)).Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
}
