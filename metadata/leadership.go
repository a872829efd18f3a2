package metadata

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ReleaseLeadership deletes l's leader key if l is still the current
// leadership (a no-op otherwise). A node hands a partition to the node it is
// now assigned to this way, after flushing everything it accepted, so the
// new leader need not wait for its lease to expire nor fence a flush.
func (s *Store) ReleaseLeadership(ctx context.Context, l Leadership) error {
	if l.Revision <= 0 {
		return nil
	}
	key := s.keys.leader(l.TopicID, l.TP.Partition)
	resp, err := s.txn(ctx, "release_leadership",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", l.Revision)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
	if err != nil {
		return fmt.Errorf("metadata: release %s/%d: %w", l.TP.Topic, l.TP.Partition, err)
	}
	if resp.Succeeded {
		s.cache.applyOwn(event{del: true, key: key, modRev: resp.Header.Revision})
	}
	return nil
}

// NodeLive reports whether node id is registered (its lease alive), as this
// Store's cache knows.
func (s *Store) NodeLive(id int32) bool {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	_, ok := s.cache.nodes[id]
	return ok
}

// LeaseEpoch changes whenever this Store's lease is replaced by a new one
// (the old one expired: the node was paused or cut off past its TTL). It is
// the etcd revision at which the current lease was granted.
func (s *Store) LeaseEpoch() int64 { return s.leaseRev.Load() }
