package metadata

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CreateTopic creates a topic with a new random ID. ErrTopicExists if the name
// is taken.
//
// The name must be a legal Kafka topic name (ErrInvalidTopic) and partitions
// at least 1 (ErrInvalidConfig). Partition keys are created lazily by
// AcquireLeadership and CommitFlush, so creating a topic is one key whatever
// its partition count.
func (s *Store) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) (Topic, error) {
	if !validName(name) {
		return Topic{}, fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	if partitions <= 0 {
		return Topic{}, fmt.Errorf("%w: %d partitions", ErrInvalidConfig, partitions)
	}
	for k := range configs {
		if k == "" {
			return Topic{}, fmt.Errorf("%w: empty config name", ErrInvalidConfig)
		}
	}
	t := Topic{
		Name:       name,
		ID:         newTopicID(),
		Partitions: partitions,
		Configs:    maps.Clone(configs),
		// Millisecond precision: what Kafka shows, and what JSON round-trips.
		Created: time.Now().UTC().Truncate(time.Millisecond),
	}
	if len(t.Configs) == 0 {
		t.Configs = nil
	}
	key := s.keys.topic(name)
	val := encodeTopic(t)
	resp, err := s.txn(ctx, "create_topic",
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(key, val)}, nil)
	if err != nil {
		return Topic{}, err
	}
	if !resp.Succeeded {
		return Topic{}, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	rev := resp.Header.Revision
	s.cache.applyOwn(event{key: key, value: []byte(val), modRev: rev, createRev: rev})
	s.logger.Info("metadata: topic created", "topic", name, "id", t.ID.String(), "partitions", partitions)
	return t, nil
}

// newTopicID returns a random RFC 4122 version 4 UUID. crypto/rand never
// fails on the platforms Go supports (it panics itself if it could); the
// version bits keep the ID away from Kafka's reserved all-zero and
// metadata-topic IDs.
func newTopicID() TopicID {
	var id TopicID
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10 (RFC 4122)
	return id
}

// DeleteTopic removes the topic, its partition states, leader keys and index
// entries (not the objects: the sweeper deletes those). ErrUnknownTopic if absent.
//
// Everything goes in one transaction, conditional on the topic key being the
// one just read, so a topic re-created meanwhile is never half deleted.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	key := s.keys.topic(name)
	var (
		cur *topicRead
		err error
	)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		if cur == nil {
			if cur, err = s.readTopic(ctx, name); err != nil {
				return err
			}
		}
		if !cur.found {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
		}
		resp, err := s.txn(ctx, "delete_topic",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", cur.modRev)},
			[]clientv3.Op{
				clientv3.OpDelete(key),
				clientv3.OpDelete(s.keys.topicParts(cur.t.ID), clientv3.WithPrefix()),
			},
			[]clientv3.Op{clientv3.OpGet(key)})
		if err != nil {
			return err
		}
		if resp.Succeeded {
			s.cache.applyOwn(event{del: true, key: key, modRev: resp.Header.Revision})
			s.logger.Info("metadata: topic deleted", "topic", name, "id", cur.t.ID.String())
			return nil
		}
		if cur, err = s.topicFromKV(rangeKV(resp, 0)); err != nil {
			return err
		}
	}
	return fmt.Errorf("metadata: delete topic %q: too much contention", name)
}

// topicRead is a topic as read from etcd (not the cache).
type topicRead struct {
	found     bool
	t         Topic
	createRev int64
	modRev    int64
}

// readTopic reads a topic key from etcd, linearizably.
func (s *Store) readTopic(ctx context.Context, name string) (*topicRead, error) {
	resp, err := s.txn(ctx, "read_topic", nil, []clientv3.Op{clientv3.OpGet(s.keys.topic(name))}, nil)
	if err != nil {
		return nil, err
	}
	return s.topicFromKV(rangeKV(resp, 0))
}

func (s *Store) topicFromKV(kv *mvccpb.KeyValue) (*topicRead, error) {
	if kv == nil {
		return &topicRead{}, nil
	}
	t, err := decodeTopic(kv.Value)
	if err != nil {
		return nil, err
	}
	return &topicRead{found: true, t: t, createRev: kv.CreateRevision, modRev: kv.ModRevision}, nil
}

// resolveTopic finds a topic for a partition operation: from the cache, or
// from etcd when the watch has not delivered it yet (a topic another node
// just created). The caller's transaction compares the returned create
// revision, so a stale answer fails safely.
func (s *Store) resolveTopic(ctx context.Context, tp TP) (*topicRead, error) {
	if ct, ok := s.cache.topic(tp.Topic); ok {
		return s.checkPartition(&topicRead{found: true, t: ct.t, createRev: ct.createRev, modRev: ct.modRev}, tp)
	}
	if !validName(tp.Topic) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, tp.Topic)
	}
	tr, err := s.readTopic(ctx, tp.Topic)
	if err != nil {
		return nil, err
	}
	return s.checkPartition(tr, tp)
}

func (s *Store) checkPartition(tr *topicRead, tp TP) (*topicRead, error) {
	if !tr.found {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, tp.Topic)
	}
	if tp.Partition < 0 || tp.Partition >= tr.t.Partitions {
		return nil, fmt.Errorf("%w: %q has no partition %d", ErrUnknownTopic, tp.Topic, tp.Partition)
	}
	return tr, nil
}

// Topic returns a topic from the cache.
func (s *Store) Topic(name string) (Topic, bool) {
	ct, ok := s.cache.topic(name)
	return ct.t, ok
}

// TopicShared is Topic without copying the topic's configs, for the
// produce and fetch paths: the Configs map is shared and must not be
// modified.
func (s *Store) TopicShared(name string) (Topic, bool) { return s.cache.topicShared(name) }

// TopicByID returns a topic from the cache by ID.
func (s *Store) TopicByID(id TopicID) (Topic, bool) { return s.cache.topicByID(id) }

// Topics returns every topic from the cache, sorted by name.
func (s *Store) Topics() []Topic { return s.cache.allTopics() }
