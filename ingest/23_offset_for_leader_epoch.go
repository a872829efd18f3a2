package ingest

// OffsetForLeaderEpoch: v0-v4 served (consumers use v2+, KIP-320, to detect
// log truncation after a leader change)
// * The end offset of the requested epoch, from the tier: for the leader's
//   current epoch the high watermark; for an earlier epoch the offset where
//   the current epoch began (durable data is never truncated, so no
//   consumer needs to go back further), answered with the requested epoch.
// * An epoch above the leader's (or a negative one) is not known: EndOffset
//   -1 and LeaderEpoch -1 (UNDEFINED_EPOCH_OFFSET, UNDEFINED_EPOCH) without
//   an error, as Kafka answers.
// * CurrentLeaderEpoch (v2+): above ours UNKNOWN_LEADER_EPOCH, below ours
//   FENCED_LEADER_EPOCH, -1 unchecked (as Fetch and ListOffsets).
// * ReplicaID (v3+) is not checked: Strata has no follower replicas, and a
//   leader's answer is right for whoever asks.
// * An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; a
//   partition another node leads is NOT_LEADER_OR_FOLLOWER.
// * The internal topic __consumer_offsets (internal_topics.go) is an empty
//   partition at leader epoch 0: epoch 0 ends at offset 0, any other epoch
//   is unknown (-1, -1).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleOffsetForLeaderEpoch(ctx context.Context, req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			s.endOffsetForEpoch(ctx, metadata.TP{Topic: rt.Topic, Partition: rp.Partition}, rp, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// endOffsetForEpoch answers one partition into sp, whose defaults (epoch -1,
// end offset -1) stand for "unknown epoch".
func (s *Server) endOffsetForEpoch(ctx context.Context, tp metadata.TP, rp kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
	if t, ok := internalTopic(tp.Topic); ok {
		switch {
		case tp.Partition < 0 || tp.Partition >= t.Partitions:
			sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case checkLeaderEpoch(rp.CurrentLeaderEpoch, internalLeaderEpoch) != 0:
			sp.ErrorCode = checkLeaderEpoch(rp.CurrentLeaderEpoch, internalLeaderEpoch)
		case rp.LeaderEpoch == internalLeaderEpoch:
			sp.LeaderEpoch, sp.EndOffset = internalLeaderEpoch, 0
		}
		return
	}
	if t, ok := s.meta.Topic(tp.Topic); !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	p, err := s.tier.Partition(ctx, tp)
	if err != nil {
		sp.ErrorCode = errCode(err)
		return
	}
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch()); code != 0 {
		sp.ErrorCode = code
		return
	}
	if rp.LeaderEpoch < 0 {
		return
	}
	if end, ok := p.EndOffsetForEpoch(rp.LeaderEpoch); ok {
		sp.LeaderEpoch = rp.LeaderEpoch
		sp.EndOffset = end
	}
}
