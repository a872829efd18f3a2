package metadata

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RegisterNode registers n under this Store's lease (kept alive until Close).
//
// A key of the same ID held by another lease (a node that was killed and
// restarted before its old lease expired) is taken over with a warning, so
// a restart does not wait out the old lease's TTL.
func (s *Store) RegisterNode(ctx context.Context, n Node) error {
	if n.ID < 0 || n.Host == "" || n.Port <= 0 || n.Port > 65535 {
		return fmt.Errorf("%w: node %d at %s:%d", ErrInvalidConfig, n.ID, n.Host, n.Port)
	}
	lease, err := s.currentLease()
	if err != nil {
		return err
	}
	if err := s.putNode(ctx, n, lease); err != nil {
		return err
	}
	s.mu.Lock()
	s.registered[n.ID] = n
	s.mu.Unlock()
	return nil
}

func (s *Store) putNode(ctx context.Context, n Node, lease clientv3.LeaseID) error {
	key := s.keys.node(n.ID)
	val := mustJSON(nodeRec{ID: n.ID, Host: n.Host, Port: n.Port})
	resp, err := s.txn(ctx, "register_node", nil,
		[]clientv3.Op{clientv3.OpGet(key), clientv3.OpPut(key, val, clientv3.WithLease(lease))}, nil)
	if err != nil {
		return err
	}
	if prev := rangeKV(resp, 0); prev != nil && clientv3.LeaseID(prev.Lease) != lease {
		s.logger.Warn("metadata: node id was registered by another lease; taking it over",
			"node", n.ID, "previous", string(prev.Value))
	}
	rev := resp.Header.Revision
	s.cache.applyOwn(event{key: key, value: []byte(val), modRev: rev, createRev: rev})
	return nil
}

// Nodes returns the live nodes, from the cache, sorted by ID.
func (s *Store) Nodes() []Node { return s.cache.allNodes() }
