package ingest

// DeleteTopics: v1-v6 served (v0 is gone from Kafka 4.0 too)
// * v1-v5 name topics; v6 names each topic by name or by id. Both set is
//   INVALID_REQUEST for that entry; a topic named twice is INVALID_REQUEST
//   for each entry, as in Kafka.
// * An unknown name is UNKNOWN_TOPIC_OR_PARTITION, an unknown id
//   UNKNOWN_TOPIC_ID.
// * Deletion removes the topic from metadata (etcd), then closes its open
//   partitions in the tier (pending appends fail NOT_LEADER_OR_FOLLOWER).
//   The data objects are left to the sweeper.
// * TimeoutMillis bounds the etcd work (<= 0: adminTimeout): past it,
//   REQUEST_TIMED_OUT, and the topic may or may not be gone, as in Kafka.
// * The internal topic __consumer_offsets (internal_topics.go), by name or
//   by its id, is INVALID_REQUEST with a message: there is nothing to
//   delete (group offsets live in etcd). Kafka's brokers and controller
//   would delete it (kafka-topics.sh refused only in its old --zookeeper
//   mode); INVALID_REQUEST is what Kafka's controller answers for the
//   internal topic it does protect (creating __cluster_metadata). A real
//   topic of that name that metadata holds from before (shadowed) is
//   deleted when named by name.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleDeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	timeout := adminTimeout
	if req.TimeoutMillis > 0 {
		timeout = time.Duration(req.TimeoutMillis) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	topics := req.Topics
	if req.Version <= 5 {
		topics = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i, name := range req.TopicNames {
			topics[i] = kmsg.NewDeleteTopicsRequestTopic()
			topics[i].Topic = kmsg.StringPtr(name)
		}
	}

	// Resolve every entry to a name first so duplicates are found however
	// they were named.
	type entry struct {
		st   kmsg.DeleteTopicsResponseTopic
		name string
	}
	entries := make([]entry, len(topics))
	count := make(map[string]int, len(topics))
	for i, rt := range topics {
		e := &entries[i]
		e.st = kmsg.NewDeleteTopicsResponseTopic()
		e.st.Topic = rt.Topic
		e.st.TopicID = rt.TopicID
		byID := rt.TopicID != (metadata.TopicID{})
		switch {
		case byID && rt.Topic != nil:
			setDeleteErr(&e.st, kerr.InvalidRequest.Code, "name a topic by name or by id, not both")
		case byID && rt.TopicID == consumerOffsetsID:
			setDeleteErr(&e.st, kerr.InvalidRequest.Code, errDeleteInternal)
			e.st.Topic = kmsg.StringPtr(consumerOffsetsTopic)
			continue
		case byID:
			t, ok := s.clientTopicByID(rt.TopicID)
			if !ok {
				setDeleteErr(&e.st, kerr.UnknownTopicID.Code, "unknown topic id")
				continue
			}
			e.name = t.Name
			e.st.Topic = kmsg.StringPtr(t.Name)
		case rt.Topic != nil:
			t, ok := s.meta.Topic(*rt.Topic)
			if !ok && isInternalTopic(*rt.Topic) {
				setDeleteErr(&e.st, kerr.InvalidRequest.Code, errDeleteInternal)
				e.st.TopicID = consumerOffsetsID
				continue
			}
			if !ok {
				setDeleteErr(&e.st, kerr.UnknownTopicOrPartition.Code, "unknown topic")
				continue
			}
			e.name = t.Name
			e.st.TopicID = t.ID
		default:
			setDeleteErr(&e.st, kerr.InvalidRequest.Code, "an entry names no topic")
		}
		if e.name != "" {
			count[e.name]++
		}
	}

	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		if e.name != "" {
			if count[e.name] > 1 {
				setDeleteErr(&e.st, kerr.InvalidRequest.Code, "topic named more than once in the request")
			} else if err := s.deleteTopic(ctx, e.name); err != nil {
				code := errCode(err)
				if errors.Is(err, metadata.ErrUnknownTopic) && e.st.TopicID != (metadata.TopicID{}) && req.Version >= 6 && topics[i].Topic == nil {
					code = kerr.UnknownTopicID.Code
				}
				setDeleteErr(&e.st, code, err.Error())
			}
		}
		resp.Topics = append(resp.Topics, e.st)
	}
	return resp
}

// deleteTopic removes a topic from metadata and closes it in the tier.
func (s *Server) deleteTopic(ctx context.Context, name string) error {
	if err := s.meta.DeleteTopic(ctx, name); err != nil {
		if !errors.Is(err, metadata.ErrUnknownTopic) {
			s.log.Warn("deleting topic failed", "topic", name, "err", err)
		}
		return err
	}
	s.tier.DropTopic(name)
	s.traffic.forgetTopic(name)
	s.log.Info("deleted topic", "topic", name)
	return nil
}

// errDeleteInternal is the message of a refused deletion of the internal
// topic.
const errDeleteInternal = "topic " + consumerOffsetsTopic + " is internal and cannot be deleted: Strata keeps group offsets in etcd, not in this topic"

func setDeleteErr(st *kmsg.DeleteTopicsResponseTopic, code int16, msg string) {
	st.ErrorCode = code
	st.ErrorMessage = &msg
}
