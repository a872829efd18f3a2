package ingest

// CreateTopics: v2-v7 served (v0-v1 are gone from Kafka 4.0 too)
// * This node is the controller (Metadata says so), so it answers.
// * Name: Kafka's rules (INVALID_TOPIC_EXCEPTION), including no collision
//   with an existing topic that differs only in '.' versus '_'. A name twice
//   in one request is INVALID_REQUEST for each entry, as in Kafka.
// * NumPartitions: -1 takes DefaultPartitions; 0, below -1, or above
//   maxPartitions is INVALID_PARTITIONS. A manual ReplicaAssignment is
//   accepted when NumPartitions and ReplicationFactor are -1 and it names
//   partitions 0..n-1 (else INVALID_REQUEST / INVALID_REPLICA_ASSIGNMENT);
//   only its partition count matters.
// * ReplicationFactor: -1 or >= 1 is accepted and answered as 1 (the replica
//   Metadata reports): durability comes from the object store, not from
//   broker replicas. 0 or below -1 is INVALID_REPLICATION_FACTOR.
// * Configs: only the topic configs Strata honours, with their values
//   checked (configs.go, shared with AlterConfigs), else INVALID_CONFIG with
//   a message: cleanup.policy only "delete" (no compaction yet),
//   message.timestamp.type only CreateTime.
// * ValidateOnly runs every check, including TOPIC_ALREADY_EXISTS, and
//   creates nothing.
// * TimeoutMillis bounds the etcd work (<= 0: adminTimeout); past it,
//   REQUEST_TIMED_OUT, the topic may or may not exist, as in Kafka.
// * v5+ returns NumPartitions, ReplicationFactor and the configs set; v7+
//   the topic id.
// * __consumer_offsets, the internal topic Metadata lists
//   (internal_topics.go), exists: TOPIC_ALREADY_EXISTS (ValidateOnly too),
//   and a name colliding with it ('.' versus '_') is INVALID_TOPIC_EXCEPTION.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

const (
	// adminTimeout bounds CreateTopics and DeleteTopics whose request
	// carries no positive timeout.
	adminTimeout = 30 * time.Second
	// maxPartitions bounds a topic's partition count. Kafka has no hard
	// limit, but a single node that opens every partition for Metadata
	// must not be asked for millions.
	maxPartitions = 10000
	// configSourceDynamicTopic is Kafka's ConfigSource for a config set
	// on the topic (DYNAMIC_TOPIC_CONFIG).
	configSourceDynamicTopic = 1
)

// topicError is a per-topic failure with the Kafka code to answer.
type topicError struct {
	code int16
	msg  string
}

func (e *topicError) Error() string { return e.msg }

func topicErr(code int16, format string, args ...any) *topicError {
	return &topicError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) handleCreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
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
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		if count[rt.Topic] > 1 {
			setCreateErr(&st, topicErr(kerr.InvalidRequest.Code, "topic %q appears more than once in the request", rt.Topic))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := s.createTopic(ctx, rt, req.ValidateOnly)
		if err != nil {
			setCreateErr(&st, err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.ID
		st.NumPartitions = t.Partitions
		st.ReplicationFactor = 1
		for _, c := range rt.Configs {
			rc := kmsg.NewCreateTopicsResponseTopicConfig()
			rc.Name = c.Name
			rc.Value = c.Value
			rc.Source = configSourceDynamicTopic
			st.Configs = append(st.Configs, rc)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// setCreateErr fills a failed topic's code and message.
func setCreateErr(st *kmsg.CreateTopicsResponseTopic, err *topicError) {
	st.ErrorCode = err.code
	msg := err.msg
	st.ErrorMessage = &msg
	st.NumPartitions = -1
	st.ReplicationFactor = -1
}

// createTopic validates and (unless validateOnly) creates one topic. With
// validateOnly the returned topic has only its partition count.
func (s *Server) createTopic(ctx context.Context, rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (metadata.Topic, *topicError) {
	if err := validateTopicName(rt.Topic); err != nil {
		return metadata.Topic{}, topicErr(kerr.InvalidTopicException.Code, "%v", err)
	}
	if isInternalTopic(rt.Topic) {
		return metadata.Topic{}, topicErr(kerr.TopicAlreadyExists.Code, "topic %q already exists: it is internal (Strata keeps group offsets in etcd)", rt.Topic)
	}
	if _, ok := s.meta.Topic(rt.Topic); ok {
		return metadata.Topic{}, topicErr(kerr.TopicAlreadyExists.Code, "topic %q already exists", rt.Topic)
	}
	if other, ok := s.collision(rt.Topic); ok {
		return metadata.Topic{}, topicErr(kerr.InvalidTopicException.Code, "topic %q collides with existing topic %q: '.' and '_' are the same in metric names", rt.Topic, other)
	}

	partitions := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return metadata.Topic{}, topicErr(kerr.InvalidRequest.Code, "with a replica assignment, numPartitions and replicationFactor must be -1")
		}
		seen := make(map[int32]bool, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(rt.ReplicaAssignment) || seen[a.Partition] || len(a.Replicas) == 0 {
				return metadata.Topic{}, topicErr(kerr.InvalidReplicaAssignment.Code, "the replica assignment must name partitions 0..%d once each, with replicas", len(rt.ReplicaAssignment)-1)
			}
			seen[a.Partition] = true
		}
		partitions = int32(len(rt.ReplicaAssignment))
	} else if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
		return metadata.Topic{}, topicErr(kerr.InvalidReplicationFactor.Code, "replication factor must be -1 or at least 1, not %d", rt.ReplicationFactor)
	}
	if partitions == -1 {
		partitions = s.cfg.DefaultPartitions
	}
	if partitions <= 0 || partitions > maxPartitions {
		return metadata.Topic{}, topicErr(kerr.InvalidPartitions.Code, "number of partitions must be -1 or 1..%d, not %d", maxPartitions, rt.NumPartitions)
	}

	configs := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			return metadata.Topic{}, topicErr(kerr.InvalidConfig.Code, "topic config %q has a null value", c.Name)
		}
		if err := checkTopicConfig(c.Name, *c.Value); err != nil {
			return metadata.Topic{}, topicErr(kerr.InvalidConfig.Code, "%v", err)
		}
		configs[c.Name] = *c.Value
	}

	if validateOnly {
		return metadata.Topic{Name: rt.Topic, Partitions: partitions}, nil
	}
	t, err := s.meta.CreateTopic(ctx, rt.Topic, partitions, configs)
	if err != nil {
		code := errCode(err)
		if code == kerr.UnknownServerError.Code {
			s.log.Warn("creating topic failed", "topic", rt.Topic, "err", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return metadata.Topic{}, topicErr(kerr.RequestTimedOut.Code, "timed out creating topic %q; it may have been created", rt.Topic)
		}
		return metadata.Topic{}, topicErr(code, "%v", err)
	}
	s.log.Info("created topic", "topic", t.Name, "partitions", t.Partitions)
	return t, nil
}
