package ingest

// ReadShareGroupState (86, v0): a share partition's stored delivery state,
// as Kafka's share coordinator answers its brokers. Strata serves it to any
// caller allowed to DESCRIBE the group (Kafka asks CLUSTER_ACTION: it is
// an inter-broker API there); `strata group describe` uses it to show each
// share partition's in-flight records. Any node answers, from etcd.
// * StartOffset is the first record not yet acknowledged or archived;
//   StateBatches cover the whole in-flight window [start, end) in runs of
//   one state (0 available or acquired, 2 acknowledged, 4 archived) and
//   delivery count. A partition the group never fetched has StartOffset -1
//   and no batches. StateEpoch counts resets (AlterShareGroupOffsets).
// * LeaderEpoch in the request is ignored.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/share"
)

func (s *Server) handleReadShareGroupState(ctx context.Context, req *kmsg.ReadShareGroupStateRequest) *kmsg.ReadShareGroupStateResponse {
	resp := req.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	for _, rt := range req.Topics {
		ot := kmsg.NewReadShareGroupStateResponseTopic()
		ot.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewReadShareGroupStateResponseTopicPartition()
			op.Partition, op.StartOffset = rp.Partition, -1
			t, ok := s.meta.TopicByID(rt.TopicID)
			switch {
			case req.GroupID == "":
				op.ErrorCode = kerr.InvalidGroupID.Code
			case !ok:
				op.ErrorCode = kerr.UnknownTopicID.Code
			case rp.Partition < 0 || rp.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				ld, err := s.meta.LoadShareState(ctx, req.GroupID, t.ID, rp.Partition)
				if err != nil {
					op.ErrorCode = kerr.CoordinatorNotAvailable.Code
					break
				}
				if !ld.Found {
					break
				}
				start, epoch, runs := share.StoredRuns(ld)
				op.StartOffset, op.StateEpoch = start, int32(epoch)
				for _, r := range runs {
					b := kmsg.NewReadShareGroupStateResponseTopicPartitionStateBatch()
					b.FirstOffset, b.LastOffset, b.DeliveryState, b.DeliveryCount = r.First, r.Last, r.State, r.Count
					op.StateBatches = append(op.StateBatches, b)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
