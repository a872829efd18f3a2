package metadata

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ReplaceIndex swaps tp's index entries whose base offsets lie in
// [from, to] for entries, in one transaction guarded by l (ErrFenced when l
// is no longer current). entries must be sorted, contiguous, start at from
// and end at to: the roller uses it to replace many small flush-object
// entries with a few large segment-object entries covering the same offsets,
// so readers see either the old entries or the new ones, never a gap.
func (s *Store) ReplaceIndex(ctx context.Context, l Leadership, from, to int64, entries []IndexEntry) error {
	if l.Revision <= 0 {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, l.TP.Topic, l.TP.Partition)
	}
	if len(entries) == 0 || entries[0].BaseOffset != from || entries[len(entries)-1].LastOffset != to {
		return fmt.Errorf("%w: replacement does not cover [%d, %d]", ErrInvalidCommit, from, to)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].BaseOffset != entries[i-1].LastOffset+1 {
			return fmt.Errorf("%w: replacement entries not contiguous at %d", ErrInvalidCommit, entries[i].BaseOffset)
		}
	}
	if 2*len(entries) > s.cfg.MaxTxnOps {
		return fmt.Errorf("%w: %d replacement entries exceed one transaction", ErrInvalidCommit, len(entries))
	}
	id, p := l.TopicID, l.TP.Partition
	// etcd refuses a put inside a deleted range of the same transaction, so
	// delete the gaps between the new keys, and let each put overwrite the
	// old entry at the same base (if any). Keys are fixed width, so key+"\x00"
	// is the next possible key.
	var ops []clientv3.Op
	var puts []event
	for i, e := range entries {
		k := s.keys.index(id, p, e.BaseOffset)
		end := s.keys.index(id, p, to+1)
		if i+1 < len(entries) {
			end = s.keys.index(id, p, entries[i+1].BaseOffset)
		}
		v := mustJSON(e)
		ops = append(ops, clientv3.OpPut(k, v), clientv3.OpDelete(k+"\x00", clientv3.WithRange(end), clientv3.WithPrevKV()))
		puts = append(puts, event{key: k, value: []byte(v)})
	}
	resp, err := s.txn(ctx, "replace_index",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.keys.leader(id, p)), "=", l.Revision)}, ops, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
	}
	s.applyOwnIndexChanges(resp, puts)
	return nil
}

// DeleteIndexBelow deletes tp's index entries that lie wholly below offset
// (LastOffset < offset), guarded by l. Retention calls it after
// SetLogStartOffset; the objects they pointed to become unreferenced and
// the sweeper deletes them.
func (s *Store) DeleteIndexBelow(ctx context.Context, l Leadership, offset int64) error {
	if l.Revision <= 0 {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, l.TP.Topic, l.TP.Partition)
	}
	id, p := l.TopicID, l.TP.Partition
	end := s.keys.index(id, p, offset)
	if kept := s.cache.indexEntries(l.TP, offset); len(kept) > 0 && kept[0].BaseOffset < offset {
		end = s.keys.index(id, p, kept[0].BaseOffset)
	}
	resp, err := s.txn(ctx, "delete_index",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.keys.leader(id, p)), "=", l.Revision)},
		[]clientv3.Op{clientv3.OpDelete(s.keys.index(id, p, 0), clientv3.WithRange(end), clientv3.WithPrevKV())}, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
	}
	s.applyOwnIndexChanges(resp, nil)
	return nil
}

// applyOwnIndexChanges applies a successful transaction's puts and the
// deletions its delete-range responses report to the cache at once.
func (s *Store) applyOwnIndexChanges(resp *clientv3.TxnResponse, puts []event) {
	rev := resp.Header.Revision
	var evs []event
	for _, ev := range puts {
		ev.modRev, ev.createRev = rev, rev
		evs = append(evs, ev)
	}
	for _, r := range resp.Responses {
		if dr := r.GetResponseDeleteRange(); dr != nil {
			for _, kv := range dr.PrevKvs {
				evs = append(evs, event{del: true, key: string(kv.Key), modRev: rev})
			}
		}
	}
	s.cache.applyOwn(evs...)
}

// ReferencedObjects returns every object key that an index entry in the
// cache points to. The sweeper deletes objects that are not in it and are
// older than its safety window (which covers the cache's lag behind etcd and
// the time between a flush's PUT and its commit).
func (s *Store) ReferencedObjects() map[string]struct{} {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	refs := make(map[string]struct{})
	for _, es := range s.cache.index {
		for _, ce := range es {
			refs[ce.e.Object] = struct{}{}
		}
	}
	return refs
}
