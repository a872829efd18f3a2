package ingest

// Metadata: v0-v13 served
// * Brokers: this node only (AdvertisedHost:AdvertisedPort); it is also the
//   controller (v1+) of the cluster ClusterID (v2+).
// * Every partition is led by this node; its LeaderEpoch (v7+) is the
//   tier's, which opens the partition (acquiring leadership) on first use.
//   Replicas and ISR are [this node]: durability comes from the object
//   store, not from replicas. A partition the tier cannot open is
//   LEADER_NOT_AVAILABLE with leader -1, which clients retry.
// * Which topics: v0 with an empty list, or v1+ with a null list, means all;
//   v1+ with an empty list means none. v10+ may name topics by id: an unknown
//   id is UNKNOWN_TOPIC_ID.
// * An unknown topic is created with DefaultPartitions when AutoCreateTopics
//   is set and the request allows it (always below v4, AllowAutoTopicCreation
//   from v4); otherwise UNKNOWN_TOPIC_OR_PARTITION. A name Kafka would refuse
//   is INVALID_TOPIC_EXCEPTION either way, as in Kafka.
// * Topic ids (v10+) are metadata's, stable for the life of the topic.
// * v13's top-level ErrorCode (rebootstrap, KIP-1102) is always 0.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// autoCreateTimeout bounds the etcd work of creating a topic for Metadata.
const autoCreateTimeout = 30 * time.Second

func (s *Server) handleMetadata(ctx context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID = s.cfg.NodeID
	b.Host = s.cfg.AdvertisedHost
	b.Port = s.cfg.AdvertisedPort
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	clusterID := s.cfg.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = s.cfg.NodeID

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range s.meta.Topics() {
			resp.Topics = append(resp.Topics, s.topicMetadata(ctx, t))
		}
		return resp
	}

	allowAuto := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	seen := make(map[string]bool, len(req.Topics))
	for _, rt := range req.Topics {
		var name string
		switch {
		case rt.TopicID != (metadata.TopicID{}):
			t, ok := s.meta.TopicByID(rt.TopicID)
			if !ok {
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name = t.Name
		case rt.Topic != nil:
			name = *rt.Topic
		default:
			continue // neither name nor id: nothing to describe
		}
		if seen[name] {
			continue
		}
		seen[name] = true

		t, ok := s.meta.Topic(name)
		if !ok {
			var err error
			if t, err = s.autoCreate(ctx, name, allowAuto); err != nil {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = kmsg.StringPtr(name)
				st.ErrorCode = metadataErrCode(err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
		}
		resp.Topics = append(resp.Topics, s.topicMetadata(ctx, t))
	}
	return resp
}

// errNoAutoCreate is an unknown topic Metadata may not create.
var errNoAutoCreate = errors.New("ingest: unknown topic and auto-creation not allowed")

// autoCreate creates topic name for a Metadata request, if allowed.
func (s *Server) autoCreate(ctx context.Context, name string, allowed bool) (metadata.Topic, error) {
	if err := validateTopicName(name); err != nil {
		return metadata.Topic{}, err
	}
	if !allowed {
		return metadata.Topic{}, errNoAutoCreate
	}
	if other, ok := s.collision(name); ok {
		s.log.Info("not auto-creating topic: collides with an existing topic", "topic", name, "existing", other)
		return metadata.Topic{}, errInvalidTopic
	}
	ctx, cancel := context.WithTimeout(ctx, autoCreateTimeout)
	defer cancel()
	t, err := s.meta.CreateTopic(ctx, name, s.cfg.DefaultPartitions, nil)
	if errors.Is(err, metadata.ErrTopicExists) {
		// Created concurrently (another connection or node): use it if
		// the cache has it, else let the client retry.
		if t, ok := s.meta.Topic(name); ok {
			return t, nil
		}
		return metadata.Topic{}, err
	}
	if err != nil {
		s.log.Warn("auto-creating topic failed", "topic", name, "err", err)
		return metadata.Topic{}, err
	}
	s.log.Info("auto-created topic", "topic", name, "partitions", t.Partitions)
	return t, nil
}

// metadataErrCode is the topic-level code of a Metadata answer that could
// not describe a topic.
func metadataErrCode(err error) int16 {
	switch {
	case errors.Is(err, errInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, errNoAutoCreate):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metadata.ErrTopicExists):
		// Exists but not yet in our cache: retriable, as Kafka answers
		// for a topic whose creation has not propagated.
		return kerr.LeaderNotAvailable.Code
	}
	return kerr.LeaderNotAvailable.Code
}

// topicMetadata describes one topic and its partitions.
func (s *Server) topicMetadata(ctx context.Context, t metadata.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, t.Partitions)
	for i, o := range s.openPartitions(ctx, t.Name, t.Partitions) {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = int32(i)
		sp.Replicas = []int32{s.cfg.NodeID}
		sp.ISR = []int32{s.cfg.NodeID}
		sp.OfflineReplicas = []int32{}
		if o.err != nil {
			s.log.Warn("metadata: partition unavailable", "topic", t.Name, "partition", i, "err", o.err)
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
			sp.Leader = -1
		} else {
			sp.Leader = s.cfg.NodeID
			sp.LeaderEpoch = o.p.LeaderEpoch()
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
