package ingest

// Metadata: v0-v13 served
// * Brokers: this node (AdvertisedHost:AdvertisedPort) and every other live
//   node registered in metadata. This node is the controller (v1+): topic
//   admin works on any node, since topics live in etcd. ClusterID (v2+).
// * A partition metadata assigns to another live node is reported as led by
//   it, with the epoch of its leadership when known (-1 otherwise). Every
//   other partition is led by this node, with the tier's LeaderEpoch (v7+);
//   the tier opens it (acquiring leadership) on first use. Replicas and ISR
//   are [leader]: durability comes from the object store, not from
//   replicas. A partition the tier cannot open is LEADER_NOT_AVAILABLE with
//   leader -1, which clients retry.
// * Which topics: v0 with an empty list, or v1+ with a null list, means all;
//   v1+ with an empty list means none. v10+ may name topics by id: an unknown
//   id is UNKNOWN_TOPIC_ID.
// * An unknown topic is created with DefaultPartitions when AutoCreateTopics
//   is set and the request allows it (always below v4, AllowAutoTopicCreation
//   from v4); otherwise UNKNOWN_TOPIC_OR_PARTITION. A name Kafka would refuse
//   is INVALID_TOPIC_EXCEPTION either way, as in Kafka.
// * Topic ids (v10+) are metadata's, stable for the life of the topic.
// * __consumer_offsets (internal_topics.go) is answered as Kafka lists it:
//   IsInternal, in the all-topics answer and when named (by name or id),
//   never auto-created. Strata keeps group offsets in etcd, so it is empty:
//   1 partition, led by this node at epoch 0, with an id derived from the
//   name (the same on every node). A real topic metadata may hold under that
//   name is shadowed by it.
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
	resp.Brokers = s.brokers()
	clusterID := s.cfg.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = s.cfg.NodeID

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range s.meta.Topics() {
			if isInternalTopic(t.Name) {
				continue // shadowed by the internal topic, listed below
			}
			resp.Topics = append(resp.Topics, s.topicMetadata(ctx, t))
		}
		if t, ok := internalTopic(consumerOffsetsTopic); ok {
			resp.Topics = append(resp.Topics, s.internalTopicMetadata(t))
		}
		return resp
	}

	allowAuto := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	seen := make(map[string]bool, len(req.Topics))
	for _, rt := range req.Topics {
		var name string
		switch {
		case rt.TopicID != (metadata.TopicID{}):
			t, ok := s.clientTopicByID(rt.TopicID)
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

		if t, ok := internalTopic(name); ok {
			resp.Topics = append(resp.Topics, s.internalTopicMetadata(t))
			continue
		}
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

// topicMetadata describes one topic and its partitions. A partition that
// metadata assigns to another live node is reported with that node as leader
// (and the epoch of its leadership, when known) without being opened here;
// the others are opened here, which makes this node their leader.
func (s *Server) topicMetadata(ctx context.Context, t metadata.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
	var local []int32
	for i := range t.Partitions {
		sp := &st.Partitions[i]
		*sp = kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = i
		sp.OfflineReplicas = []int32{}
		tp := metadata.TP{Topic: t.Name, Partition: i}
		if n, ok := s.meta.AssignedNode(tp); ok && n.ID != s.cfg.NodeID {
			sp.Leader = n.ID
			sp.LeaderEpoch = -1
			if l, ok := s.meta.Leader(tp); ok && l.NodeID == n.ID {
				sp.LeaderEpoch = l.Epoch
			}
			sp.Replicas = []int32{n.ID}
			sp.ISR = sp.Replicas
			continue
		}
		local = append(local, i)
	}
	for j, o := range s.openPartitions(ctx, t.Name, local) {
		sp := &st.Partitions[local[j]]
		sp.Replicas = []int32{s.cfg.NodeID}
		sp.ISR = sp.Replicas
		if o.err != nil {
			s.log.Warn("metadata: partition unavailable", "topic", t.Name, "partition", local[j], "err", o.err)
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
			sp.Leader = -1
			continue
		}
		sp.Leader = s.cfg.NodeID
		sp.LeaderEpoch = o.p.LeaderEpoch()
	}
	return st
}

// brokers lists the live nodes, this one always included (it may not have
// registered yet, or run without registration in tests).
func (s *Server) brokers() []kmsg.MetadataResponseBroker {
	self := kmsg.NewMetadataResponseBroker()
	self.NodeID = s.cfg.NodeID
	self.Host = s.cfg.AdvertisedHost
	self.Port = s.cfg.AdvertisedPort
	out := []kmsg.MetadataResponseBroker{self}
	for _, n := range s.meta.Nodes() {
		if n.ID == s.cfg.NodeID {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID = n.ID
		b.Host = n.Host
		b.Port = n.Port
		out = append(out, b)
	}
	return out
}
