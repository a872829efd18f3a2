package ingest

// DeleteRecords: v0-v2 served
// * Each partition's log start offset moves up to Offset (-1: the high
//   watermark) once the change is committed in etcd; the records below it
//   are unreadable from then on (Fetch below it is OFFSET_OUT_OF_RANGE) and
//   their objects are left to the sweeper. LowWatermark is the new log start
//   offset. An offset at or below the current log start changes nothing
//   and answers the current one, as in Kafka.
// * An offset above the high watermark, or negative other than -1, is
//   OFFSET_OUT_OF_RANGE. An unknown topic or partition is
//   UNKNOWN_TOPIC_OR_PARTITION; a partition another node leads is
//   NOT_LEADER_OR_FOLLOWER (clients send each partition to its leader).
//   A failed partition's LowWatermark is -1.
// * TimeoutMillis bounds the etcd work of the whole request (<= 0:
//   adminTimeout); past it, REQUEST_TIMED_OUT, and the log start may or may
//   not have moved, as in Kafka.
// * The internal topic __consumer_offsets (internal_topics.go):
//   INVALID_TOPIC_EXCEPTION for each of its partitions, as Kafka's
//   ReplicaManager answers ("Cannot delete records of internal topic").

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleDeleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	timeout := adminTimeout
	if req.TimeoutMillis > 0 {
		timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			sp.ErrorCode = s.deleteRecords(ctx, metadata.TP{Topic: rt.Topic, Partition: rp.Partition}, rp.Offset, &sp.LowWatermark)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteRecords moves one partition's log start to offset and stores the
// resulting log start in low; it returns the partition's error code.
func (s *Server) deleteRecords(ctx context.Context, tp metadata.TP, offset int64, low *int64) int16 {
	if t, ok := internalTopic(tp.Topic); ok {
		if tp.Partition < 0 || tp.Partition >= t.Partitions {
			return kerr.UnknownTopicOrPartition.Code
		}
		return kerr.InvalidTopicException.Code
	}
	if t, ok := s.meta.Topic(tp.Topic); !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		return kerr.UnknownTopicOrPartition.Code
	}
	if offset < -1 {
		return kerr.OffsetOutOfRange.Code
	}
	p, err := s.tier.Partition(ctx, tp)
	if err != nil {
		return errCode(err)
	}
	if err := p.DeleteRecords(ctx, offset); err != nil {
		code := errCode(err)
		if code == kerr.UnknownServerError.Code || code == kerr.KafkaStorageError.Code {
			s.log.Warn("delete records failed", "topic", tp.Topic, "partition", tp.Partition, "offset", offset, "err", err)
		}
		return code
	}
	*low = p.LogStartOffset()
	return 0
}
