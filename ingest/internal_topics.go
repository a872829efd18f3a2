package ingest

import (
	"crypto/sha256"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// Kafka's internal topic __consumer_offsets, as Strata can honestly show it.
//
// Kafka keeps group offsets and membership in that topic; Strata keeps them
// in etcd (ingest/group), so the topic has nothing in it. It is listed all
// the same, because clients and tools expect it: Metadata answers it with
// IsInternal (regex consumers skip it, admin tools list it as internal), with
// internalTopicPartitions partitions led by the answering node (every node
// serves them alike) at leader epoch 0, and a topic id derived from its name,
// the same on every node. It is not in metadata: nothing that iterates the
// cluster's real topics (the console, metrics, retention) sees it.
//
// What each API does with it is in that API's file: Produce and DeleteRecords
// refuse it (INVALID_TOPIC_EXCEPTION, as Kafka refuses clients), Fetch,
// ListOffsets and OffsetForLeaderEpoch answer an empty partition (log start
// 0, high watermark 0), CreateTopics says TOPIC_ALREADY_EXISTS, DeleteTopics
// refuses it.
//
// A real topic of the same name that metadata may hold (created before
// Strata listed the internal one, e.g. auto-created by a client that asked
// for it) is shadowed: clients see the internal topic instead, and
// DeleteTopics by name deletes the real one.

const (
	// consumerOffsetsTopic is Kafka's group offsets topic
	// (Topic.GROUP_METADATA_TOPIC_NAME).
	consumerOffsetsTopic = "__consumer_offsets"
	// internalTopicPartitions is the partition count the internal topic is
	// listed with. Kafka's default is 50 (offsets.topic.num.partitions), but
	// every partition here is empty: one is enough for a reader to find
	// nothing.
	internalTopicPartitions = 1
	// internalLeaderEpoch is the leader epoch of every internal partition:
	// it never changes leader in a way a reader could observe.
	internalLeaderEpoch = 0
)

// consumerOffsetsID is the internal topic's id.
var consumerOffsetsID = internalTopicID(consumerOffsetsTopic)

// internalTopicID derives an internal topic's id from its name, so every node
// (and every version of Strata) answers the same one: the first 16 bytes of a
// SHA-256, marked as an RFC 9562 version 8 (custom) UUID.
func internalTopicID(name string) metadata.TopicID {
	sum := sha256.Sum256([]byte("strata internal topic\x00" + name))
	var id metadata.TopicID
	copy(id[:], sum[:len(id)])
	id[6] = id[6]&0x0f | 0x80
	id[8] = id[8]&0x3f | 0x80
	return id
}

// isInternalTopic reports whether name is a topic Strata lists as internal.
func isInternalTopic(name string) bool { return name == consumerOffsetsTopic }

// internalTopic returns the internal topic named name.
func internalTopic(name string) (metadata.Topic, bool) {
	if !isInternalTopic(name) {
		return metadata.Topic{}, false
	}
	return metadata.Topic{Name: name, ID: consumerOffsetsID, Partitions: internalTopicPartitions}, true
}

// internalTopicByID returns the internal topic whose id is id.
func internalTopicByID(id metadata.TopicID) (metadata.Topic, bool) {
	if id != consumerOffsetsID {
		return metadata.Topic{}, false
	}
	return internalTopic(consumerOffsetsTopic)
}

// clientTopic resolves a topic a client names: the internal topic, else
// metadata's.
func (s *Server) clientTopic(name string) (metadata.Topic, bool) {
	if t, ok := internalTopic(name); ok {
		return t, true
	}
	// Shared, not copied: every produce and fetch asks, and nothing in
	// ingest modifies a topic's configs.
	return s.meta.TopicShared(name)
}

// clientTopicByID resolves a topic a client names by id: the internal topic,
// else metadata's, except a real topic the internal one shadows.
func (s *Server) clientTopicByID(id metadata.TopicID) (metadata.Topic, bool) {
	if t, ok := internalTopicByID(id); ok {
		return t, true
	}
	t, ok := s.meta.TopicByID(id)
	if !ok || isInternalTopic(t.Name) {
		return metadata.Topic{}, false
	}
	return t, true
}

// internalTopicMetadata describes an internal topic for Metadata: every
// partition led by this node, which serves it as well as any other.
func (s *Server) internalTopicMetadata(t metadata.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	st.IsInternal = true
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
	for i := range t.Partitions {
		sp := &st.Partitions[i]
		*sp = kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = i
		sp.Leader = s.cfg.NodeID
		sp.LeaderEpoch = internalLeaderEpoch
		sp.Replicas = []int32{s.cfg.NodeID}
		sp.ISR = sp.Replicas
		sp.OfflineReplicas = []int32{}
	}
	return st
}
