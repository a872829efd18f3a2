package metadata

// Idempotent-producer state: one key per producer per partition (KEYS.md,
// "Producer state"). The values are opaque to metadata (the tier encodes
// them as JSON); a flush commit carries only the producers that changed.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// maxCommitProducers bounds the producers one partition's flush commit
	// carries, whatever the number of producers the partition has: etcd
	// bytes per flush stay bounded, and one partition's commit always fits
	// in one transaction of an external etcd (--max-txn-ops 128).
	maxCommitProducers = 64
	// MaxProducerStateBytes is the largest state one producer's key holds
	// (a few hundred bytes in practice: an epoch, a time and 5 batches).
	MaxProducerStateBytes = 4 << 10
	// producerOpsPerPartition is what a commit costs besides its producers:
	// the index entry, the state and the durable key.
	producerOpsPerPartition = 3
)

// MaxCommitProducers is how many producers' states one PartitionCommit may
// carry: few enough that one partition's commit fits in one transaction
// (Config.MaxTxnOps) and one request, with room to spare.
func (s *Store) MaxCommitProducers() int {
	return max(1, min(maxCommitProducers, s.cfg.MaxTxnOps-producerOpsPerPartition))
}

// producers is the prefix of a partition's per-producer keys.
func (k keys) producers(id TopicID, p int32) string { return k.part(id, p) + "producers/" }

func (k keys) producer(id TopicID, p int32, pid int64) string {
	return k.producers(id, p) + strconv.FormatInt(pid, 10)
}

// producerKV is one producer's state to put.
type producerKV struct {
	id    int64
	value string
}

// parseProducerID reads a producer id written as a decimal string: the key
// of the producers JSON object and the last segment of a producer key. Only
// the canonical form is accepted, so one id has exactly one key.
func parseProducerID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 || strconv.FormatInt(id, 10) != s {
		return 0, false
	}
	return id, true
}

// parseProducerStates decodes a producers JSON object (producer id as a
// decimal string → that producer's state, any JSON value), sorted by id.
func parseProducerStates(b []byte) ([]producerKV, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("producer states are not a JSON object: %v", err)
	}
	out := make([]producerKV, 0, len(m))
	for k, v := range m {
		id, ok := parseProducerID(k)
		if !ok {
			return nil, fmt.Errorf("producer id %q", k)
		}
		out = append(out, producerKV{id: id, value: string(v)})
	}
	slices.SortFunc(out, func(a, b producerKV) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// PartitionProducers reads the idempotent-producer state of the partition l
// leads: every per-producer key, by producer id. A leader calls it after
// acquiring leadership (and after MigrateProducers): only it writes those
// keys from then on, so the read is its starting point.
func (s *Store) PartitionProducers(ctx context.Context, l Leadership) (map[int64][]byte, error) {
	kvs, err := s.rangeProducers(ctx, l, false)
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]byte, len(kvs))
	for _, kv := range kvs {
		out[kv.id] = []byte(kv.value)
	}
	return out, nil
}

// rangeProducers reads a partition's producer keys (values unless
// keysOnly) in pages, all at the revision of the first page.
func (s *Store) rangeProducers(ctx context.Context, l Leadership, keysOnly bool) ([]producerKV, error) {
	prefix := s.keys.producers(l.TopicID, l.TP.Partition)
	end := clientv3.GetPrefixRangeEnd(prefix)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		var out []producerKV
		from, rev := prefix, int64(0)
		compacted := false
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPageSize)}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			if keysOnly {
				opts = append(opts, clientv3.WithKeysOnly())
			}
			resp, err := s.txn(ctx, "read_producers", nil, []clientv3.Op{clientv3.OpGet(from, opts...)}, nil)
			if err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					compacted = true
					break
				}
				return nil, err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			rr := resp.Responses[0].GetResponseRange()
			for _, kv := range rr.Kvs {
				id, ok := parseProducerID(strings.TrimPrefix(string(kv.Key), prefix))
				if !ok {
					s.logger.Warn("metadata: skipping bad producer key", "key", string(kv.Key))
					continue
				}
				out = append(out, producerKV{id: id, value: string(kv.Value)})
			}
			if !rr.More || len(rr.Kvs) == 0 {
				return out, nil
			}
			from = string(rr.Kvs[len(rr.Kvs)-1].Key) + "\x00"
		}
		if !compacted {
			break
		}
		// The pages' revision was compacted away meanwhile: read again.
	}
	return nil, fmt.Errorf("metadata: producers of %s/%d: revision compacted on every attempt", l.TP.Topic, l.TP.Partition)
}

// DeleteProducers deletes the keys of the given producers of the partition
// l leads (producers it expired), in transactions of at most
// Config.MaxTxnOps keys, each guarded by the leadership: ErrFenced when it
// is no longer current (the transactions before it did apply; deleting a
// producer twice is harmless).
func (s *Store) DeleteProducers(ctx context.Context, l Leadership, ids []int64) error {
	if l.Revision <= 0 {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, l.TP.Topic, l.TP.Partition)
	}
	lk := s.keys.leader(l.TopicID, l.TP.Partition)
	for len(ids) > 0 {
		n := min(len(ids), s.cfg.MaxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, id := range ids[:n] {
			ops[i] = clientv3.OpDelete(s.keys.producer(l.TopicID, l.TP.Partition, id))
		}
		resp, err := s.txn(ctx, "delete_producers",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(lk), "=", l.Revision)}, ops, nil)
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, l.TP.Partition, l.Epoch)
		}
		ids = ids[n:]
	}
	return nil
}

// MigrateProducers moves the producer state an older Strata kept inside the
// state key ("producers", one JSON object for the whole partition) into
// per-producer keys, for the partition l leads: it puts the producers that
// have no key yet (a key is always newer than that object), then rewrites
// the state key without it. Every write is guarded by the leadership
// (ErrFenced). A migration cut short is finished by the next one.
func (s *Store) MigrateProducers(ctx context.Context, l Leadership) error {
	if l.Revision <= 0 {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, l.TP.Topic, l.TP.Partition)
	}
	id, p := l.TopicID, l.TP.Partition
	lk, sk := s.keys.leader(id, p), s.keys.state(id, p)
	resp, err := s.txn(ctx, "read_state", nil, []clientv3.Op{clientv3.OpGet(sk)}, nil)
	if err != nil {
		return err
	}
	kv := rangeKV(resp, 0)
	if kv == nil {
		return nil
	}
	st, err := decodeState(kv.Value)
	if err != nil {
		return err
	}
	if len(st.Producers) == 0 {
		return nil
	}
	legacy, err := parseProducerStates(st.Producers)
	if err != nil {
		// Unreadable: nothing in it can be trusted; drop it below.
		s.logger.Error("metadata: dropping unreadable producer state", "topic", l.TP.Topic, "partition", p, "err", err)
		legacy = nil
	}
	have, err := s.rangeProducers(ctx, l, true)
	if err != nil {
		return err
	}
	exists := make(map[int64]bool, len(have))
	for _, h := range have {
		exists[h.id] = true
	}
	legacy = slices.DeleteFunc(legacy, func(kv producerKV) bool { return exists[kv.id] })
	guard := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(lk), "=", l.Revision)}
	for len(legacy) > 0 {
		var ops []clientv3.Op
		bytes := 0
		for len(legacy) > 0 && len(ops) < s.cfg.MaxTxnOps && bytes < maxTxnBytes/2 {
			kv := legacy[0]
			legacy = legacy[1:]
			k := s.keys.producer(id, p, kv.id)
			ops = append(ops, clientv3.OpPut(k, kv.value))
			bytes += len(k) + len(kv.value)
		}
		resp, err := s.txn(ctx, "migrate_producers", guard, ops, nil)
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
		}
	}
	st.Producers = nil
	resp, err = s.txn(ctx, "migrate_producers",
		append(guard, clientv3.Compare(clientv3.ModRevision(sk), "=", kv.ModRevision)),
		[]clientv3.Op{clientv3.OpPut(sk, mustJSON(st))}, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		// Fenced, or our own commit rewrote the state meanwhile (a caller
		// that flushes before migrating): either way not ours to redo.
		return fmt.Errorf("%w: %s/%d epoch %d: state changed during the producer migration", ErrFenced, l.TP.Topic, p, l.Epoch)
	}
	s.logger.Info("metadata: producer state moved to per-producer keys", "topic", l.TP.Topic, "partition", p)
	return nil
}

// IsPermanent reports whether err, from CommitFlush, can never go away by
// retrying the same commits: an invalid commit, or a request etcd refuses
// as such (too large, too many operations, a duplicate key). Transient
// errors (no connection, timeouts, no leader, leader changes, etcd out of
// space until an operator acts) are not.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidCommit) {
		return true
	}
	for _, e := range []error{rpctypes.ErrRequestTooLarge, rpctypes.ErrTooManyOps, rpctypes.ErrDuplicateKey,
		rpctypes.ErrGRPCRequestTooLarge, rpctypes.ErrGRPCTooManyOps, rpctypes.ErrGRPCDuplicateKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) && ee.Code() == codes.InvalidArgument {
		return true
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		st := se.GRPCStatus()
		switch st.Code() {
		case codes.InvalidArgument:
			return true
		case codes.ResourceExhausted:
			// The client refusing to send a message over its limit; not
			// etcd's "too many requests" or "database space exceeded".
			return strings.Contains(st.Message(), "larger than max")
		}
	}
	return false
}
