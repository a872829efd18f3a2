package ingest

// CreatePartitions: v0-v3 served
// * Count is the topic's new total. It must be above the current count
//   (else INVALID_PARTITIONS with a message, as Kafka) and at most
//   maxPartitions. New partitions are led by whichever live node metadata
//   assigns them to, opened there on first use.
// * Assignment must be null (or empty): Strata places partitions itself and
//   has no replicas to assign, so an assignment is INVALID_REQUEST ("replica
//   assignment is not supported").
// * An unknown topic is UNKNOWN_TOPIC_OR_PARTITION; a topic named twice in
//   one request is INVALID_REQUEST for each entry, as in Kafka.
// * ValidateOnly runs every check and adds nothing.
// * TimeoutMillis bounds the etcd work (<= 0: adminTimeout); past it,
//   REQUEST_TIMED_OUT, and the partitions may or may not have been added,
//   as in Kafka.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleCreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	timeout := adminTimeout
	if req.TimeoutMillis > 0 {
		timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	count := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err *topicError
		if count[rt.Topic] > 1 {
			err = topicErr(kerr.InvalidRequest.Code, "topic %q appears more than once in the request", rt.Topic)
		} else {
			err = s.createPartitions(ctx, rt, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode = err.code
			st.ErrorMessage = kmsg.StringPtr(err.msg)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// createPartitions checks and (unless validateOnly) applies one topic's new
// partition count.
func (s *Server) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) *topicError {
	t, ok := s.meta.Topic(rt.Topic)
	if !ok {
		return topicErr(kerr.UnknownTopicOrPartition.Code, "topic %q does not exist", rt.Topic)
	}
	if len(rt.Assignment) > 0 {
		return topicErr(kerr.InvalidRequest.Code, "replica assignment is not supported: Strata places partitions itself")
	}
	switch {
	case rt.Count == t.Partitions:
		return topicErr(kerr.InvalidPartitions.Code, "topic %q already has %d partitions", rt.Topic, t.Partitions)
	case rt.Count < t.Partitions:
		return topicErr(kerr.InvalidPartitions.Code, "topic %q has %d partitions, more than the requested %d: partitions cannot be removed", rt.Topic, t.Partitions, rt.Count)
	case rt.Count > maxPartitions:
		return topicErr(kerr.InvalidPartitions.Code, "number of partitions must be at most %d, not %d", maxPartitions, rt.Count)
	}
	if validateOnly {
		return nil
	}
	if _, err := s.meta.AddPartitions(ctx, rt.Topic, rt.Count); err != nil {
		switch {
		case errors.Is(err, metadata.ErrUnknownTopic):
			return topicErr(kerr.UnknownTopicOrPartition.Code, "topic %q does not exist", rt.Topic)
		case errors.Is(err, metadata.ErrInvalidConfig):
			// Raised concurrently past the requested count.
			return topicErr(kerr.InvalidPartitions.Code, "%v", err)
		case errors.Is(err, context.DeadlineExceeded):
			return topicErr(kerr.RequestTimedOut.Code, "timed out adding partitions to topic %q; they may have been added", rt.Topic)
		}
		s.log.Warn("adding partitions failed", "topic", rt.Topic, "err", err)
		return topicErr(errCode(err), "%v", err)
	}
	s.log.Info("added partitions", "topic", rt.Topic, "from", t.Partitions, "to", rt.Count)
	return nil
}
