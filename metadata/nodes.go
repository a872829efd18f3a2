package metadata

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RegisterNode registers n under this Store's lease (kept alive until Close).
//
// Two live nodes must never share an ID: they would both lead the same
// partitions. A key of the same ID held by another lease is either a live
// node (which keeps renewing that lease) or a process that was killed and
// restarted before its old lease expired. RegisterNode watches the other
// lease's remaining TTL: if it is renewed, the ID is in use and it returns
// ErrNodeIDInUse; if it runs out (at most one TTL), the ID is taken over.
func (s *Store) RegisterNode(ctx context.Context, n Node) error {
	if n.ID < 0 || n.Host == "" || n.Port <= 0 || n.Port > 65535 {
		return fmt.Errorf("%w: node %d at %s:%d", ErrInvalidConfig, n.ID, n.Host, n.Port)
	}
	lease, err := s.currentLease()
	if err != nil {
		return err
	}
	var (
		otherLease clientv3.LeaseID
		lastTTL    int64
		deadline   time.Time
	)
	for {
		prev, err := s.putNode(ctx, n, lease)
		if err != nil {
			return err
		}
		if prev == nil {
			break
		}
		// Another lease holds the ID. Ask etcd how long it has left.
		id := clientv3.LeaseID(prev.Lease)
		tctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		ttl, err := s.cli.TimeToLive(tctx, id)
		cancel()
		if err != nil {
			return fmt.Errorf("metadata: register node %d: lease of the node registered under that id: %w", n.ID, err)
		}
		if ttl.TTL <= 0 {
			continue // expired just now: take the ID over
		}
		if id != otherLease {
			// A dead holder's lease runs out within its granted TTL; one
			// still alive after that, or whose remaining TTL went up, is
			// being renewed by a live node.
			otherLease, lastTTL = id, ttl.TTL
			deadline = time.Now().Add(time.Duration(ttl.GrantedTTL)*time.Second + time.Second)
			s.logger.Warn("metadata: node id is still registered by an earlier process; waiting for its lease to expire (a live node renewing it means the id is taken)",
				"node", n.ID, "registered", string(prev.Value), "expires_in_s", ttl.TTL)
		} else if ttl.TTL > lastTTL || time.Now().After(deadline) {
			return fmt.Errorf("%w: node id %d is registered by a live node (%s), whose etcd lease is being renewed; give every node its own --node-id",
				ErrNodeIDInUse, n.ID, prev.Value)
		}
		lastTTL = ttl.TTL
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.registered[n.ID] = n
	s.mu.Unlock()
	return nil
}

// putNode writes n's key under lease unless another lease holds it; then it
// writes nothing and returns the key as it is.
func (s *Store) putNode(ctx context.Context, n Node, lease clientv3.LeaseID) (*mvccpb.KeyValue, error) {
	key := s.keys.node(n.ID)
	val := mustJSON(nodeRec{ID: n.ID, Host: n.Host, Port: n.Port, HTTP: n.HTTP, Listeners: n.Listeners})
	put := []clientv3.Op{clientv3.OpPut(key, val, clientv3.WithLease(lease))}
	resp, err := s.txn(ctx, "register_node",
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}, put,
		[]clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		prev := rangeKV(resp, 0)
		if prev == nil {
			return s.putNode(ctx, n, lease) // deleted between compare and get
		}
		if clientv3.LeaseID(prev.Lease) != lease {
			return prev, nil
		}
		// Ours already (registering again): rewrite the value.
		if resp, err = s.txn(ctx, "register_node", nil, put, nil); err != nil {
			return nil, err
		}
	}
	rev := resp.Header.Revision
	s.cache.applyOwn(event{key: key, value: []byte(val), modRev: rev, createRev: rev})
	return nil, nil
}

// Nodes returns the live nodes, from the cache, sorted by ID.
func (s *Store) Nodes() []Node { return s.cache.allNodes() }

// NodesVersion changes whenever the live node set this Store knows changes
// (a node registers, leaves, or re-registers under a new lease) or the cache
// is reloaded. Everything placed by rendezvous over the live nodes
// (partitions, group coordinators) may have moved away and back since a
// caller's earlier reading when it differs.
func (s *Store) NodesVersion() int64 {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.nodesVersion
}
