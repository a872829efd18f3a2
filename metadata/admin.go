package metadata

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// updateTopic applies change to the topic's current value and writes it
// back, conditional on the value not having changed since it was read.
func (s *Store) updateTopic(ctx context.Context, op, name string, change func(t *Topic) error) (Topic, error) {
	key := s.keys.topic(name)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, err := s.readTopic(ctx, name)
		if err != nil {
			return Topic{}, err
		}
		if !cur.found {
			return Topic{}, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
		}
		t := cur.t
		t.Configs = maps.Clone(t.Configs)
		if err := change(&t); err != nil {
			return Topic{}, err
		}
		if len(t.Configs) == 0 {
			t.Configs = nil
		}
		val := encodeTopic(t)
		resp, err := s.txn(ctx, op,
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", cur.modRev)},
			[]clientv3.Op{clientv3.OpPut(key, val)}, nil)
		if err != nil {
			return Topic{}, err
		}
		if resp.Succeeded {
			rev := resp.Header.Revision
			s.cache.applyOwn(event{key: key, value: []byte(val), modRev: rev, createRev: cur.createRev})
			return t, nil
		}
	}
	return Topic{}, fmt.Errorf("metadata: %s %q: too much contention", op, name)
}

// AlterTopicConfigs changes a topic's configs: a nil value deletes the key
// (back to the default), others set it. With replace, every config not
// named is deleted first (Kafka's legacy AlterConfigs). Validation of names
// and values is the caller's (ingest knows what Strata honours).
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, changes map[string]*string, replace bool) (Topic, error) {
	return s.updateTopic(ctx, "alter_configs", name, func(t *Topic) error {
		if replace || t.Configs == nil {
			t.Configs = map[string]string{}
		}
		for k, v := range changes {
			if k == "" {
				return fmt.Errorf("%w: empty config name", ErrInvalidConfig)
			}
			if v == nil {
				delete(t.Configs, k)
			} else {
				t.Configs[k] = *v
			}
		}
		return nil
	})
}

// AddPartitions raises a topic's partition count to total (Kafka's
// CreatePartitions). Partitions are never removed: a lower or equal total is
// ErrInvalidConfig.
func (s *Store) AddPartitions(ctx context.Context, name string, total int32) (Topic, error) {
	return s.updateTopic(ctx, "add_partitions", name, func(t *Topic) error {
		if total <= t.Partitions {
			return fmt.Errorf("%w: topic %q has %d partitions, cannot go to %d", ErrInvalidConfig, name, t.Partitions, total)
		}
		t.Partitions = total
		return nil
	})
}

// AllocateProducerIDs reserves n consecutive producer ids, unique across
// the cluster and across restarts, and returns the first. Nodes take them
// in blocks so InitProducerId costs no etcd round trip most of the time.
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: allocate %d producer ids", ErrInvalidConfig, n)
	}
	key := s.keys.prefix + "producer-ids"
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		resp, err := s.txn(ctx, "read_producer_ids", nil, []clientv3.Op{clientv3.OpGet(key)}, nil)
		if err != nil {
			return 0, err
		}
		var next, modRev int64
		if kv := rangeKV(resp, 0); kv != nil {
			if next, err = strconv.ParseInt(string(kv.Value), 10, 64); err != nil || next < 0 {
				return 0, fmt.Errorf("%w: producer id counter %q", errBadValue, kv.Value)
			}
			modRev = kv.ModRevision
		}
		resp, err = s.txn(ctx, "allocate_producer_ids",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)},
			[]clientv3.Op{clientv3.OpPut(key, strconv.FormatInt(next+n, 10))}, nil)
		if err != nil {
			return 0, err
		}
		if resp.Succeeded {
			return next, nil
		}
	}
	return 0, fmt.Errorf("metadata: allocate producer ids: too much contention")
}
