package ingest

// DescribeProducers: v0 served
// * The idempotent producers the partition's leader remembers (the tier
//   keeps the last 5 batches of each, for deduplication): ProducerID,
//   ProducerEpoch, LastSequence (-1 if none remembered), LastTimestamp (when
//   it last wrote, unix ms), CurrentTxnStartOffset (the first offset of its
//   open transaction in the partition, else -1) and CoordinatorEpoch (the
//   number of the last transaction whose marker the partition took, else
//   -1). Sorted by producer id.
// * An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; a
//   partition another node leads is NOT_LEADER_OR_FOLLOWER (clients send
//   each partition to its leader).

import (
	"cmp"
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier"
)

func (s *Server) handleDescribeProducers(ctx context.Context, req *kmsg.DescribeProducersRequest) *kmsg.DescribeProducersResponse {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	resp.Topics = make([]kmsg.DescribeProducersResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, 0, len(rt.Partitions))
		for _, partition := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = partition
			s.describeProducers(ctx, metadata.TP{Topic: rt.Topic, Partition: partition}, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// describeProducers answers one partition into sp.
func (s *Server) describeProducers(ctx context.Context, tp metadata.TP, sp *kmsg.DescribeProducersResponseTopicPartition) {
	if t, ok := s.meta.Topic(tp.Topic); !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	p, err := s.tier.Partition(ctx, tp)
	if err != nil {
		sp.ErrorCode = errCode(err)
		sp.ErrorMessage = errMessage(err)
		return
	}
	producers := p.Producers()
	slices.SortFunc(producers, func(a, b tier.ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	sp.ActiveProducers = make([]kmsg.DescribeProducersResponseTopicPartitionActiveProducer, 0, len(producers))
	for _, pi := range producers {
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID = pi.ProducerID
		ap.ProducerEpoch = int32(pi.ProducerEpoch)
		ap.LastSequence = pi.LastSequence
		ap.LastTimestamp = pi.LastTimestamp
		ap.CoordinatorEpoch = pi.CoordinatorEpoch
		ap.CurrentTxnStartOffset = pi.TxnStartOffset
		sp.ActiveProducers = append(sp.ActiveProducers, ap)
	}
}
