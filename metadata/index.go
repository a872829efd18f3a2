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
//
// What to delete is decided from a linearizable read, and the delete is
// conditional on nothing in the deleted range having changed since: a roll
// that swapped entries in between (its new entry may start below offset
// and reach past it) makes the compare fail and the read is taken again, so
// a live entry is never deleted.
func (s *Store) DeleteIndexBelow(ctx context.Context, l Leadership, offset int64) error {
	if l.Revision <= 0 {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, l.TP.Topic, l.TP.Partition)
	}
	id, p := l.TopicID, l.TP.Partition
	start := s.keys.index(id, p, 0)
	leaderCmp := clientv3.Compare(clientv3.ModRevision(s.keys.leader(id, p)), "=", l.Revision)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		// The last entry starting below offset: kept if it reaches offset.
		resp, err := s.txn(ctx, "delete_index_read", []clientv3.Cmp{leaderCmp},
			[]clientv3.Op{clientv3.OpGet(start, clientv3.WithRange(s.keys.index(id, p, offset)),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))}, nil)
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
		}
		kv := rangeKV(resp, 0)
		if kv == nil {
			return nil // nothing starts below offset
		}
		last, err := decodeIndexEntry(kv.Value)
		if err != nil {
			return fmt.Errorf("metadata: index entry %s: %w", kv.Key, err)
		}
		end := s.keys.index(id, p, offset)
		cmps := []clientv3.Cmp{leaderCmp}
		if last.LastOffset >= offset {
			end = string(kv.Key)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(end), "=", kv.ModRevision))
		}
		// No key in the range was written since the read (a key created
		// since has a higher ModRevision and fails the compare too).
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(start), "<", resp.Header.Revision+1).WithRange(end))
		if testHookDeleteIndex != nil {
			testHookDeleteIndex()
		}
		dresp, err := s.txn(ctx, "delete_index", cmps,
			[]clientv3.Op{clientv3.OpDelete(start, clientv3.WithRange(end), clientv3.WithPrevKV())},
			[]clientv3.Op{clientv3.OpGet(s.keys.leader(id, p))})
		if err != nil {
			return err
		}
		if dresp.Succeeded {
			s.applyOwnIndexChanges(dresp, nil)
			return nil
		}
		if lk := rangeKV(dresp, 0); lk == nil || lk.ModRevision != l.Revision {
			return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
		}
	}
	return fmt.Errorf("metadata: delete index of %s/%d below %d: too much contention", l.TP.Topic, p, offset)
}

// testHookDeleteIndex, when set by a test, runs between DeleteIndexBelow's
// read and its conditional delete.
var testHookDeleteIndex func()

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

// ReferencedObjects returns every object key that an index entry points
// to, read from etcd at one revision (page by page), never from the cache:
// the sweeper deletes what is not in it, so it must not miss an entry a
// lagging watch has not delivered yet.
func (s *Store) ReferencedObjects(ctx context.Context) (map[string]struct{}, error) {
	refs := make(map[string]struct{})
	var bad error
	err := s.rangePages(ctx, s.keys.prefix+"partitions/", false, func(key string, value []byte) {
		if bad != nil || s.keys.parseKey(key).kind != kindIndex {
			return
		}
		e, err := decodeIndexEntry(value)
		if err != nil {
			bad = fmt.Errorf("metadata: index entry %s: %w", key, err)
			return
		}
		refs[e.Object] = struct{}{}
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: read index entries: %w", err)
	}
	if bad != nil {
		return nil, bad
	}
	return refs, nil
}

// HoldsLease reports whether this Store's node lease is certainly alive in
// etcd now: a keep-alive was answered recently enough that etcd cannot have
// expired the lease since (see leaseValidFor). A node that does not hold its
// lease must not act as a leader: another node may have taken over.
func (s *Store) HoldsLease() bool {
	until := s.leaseUntil.Load()
	return until != 0 && monoNow() < until
}

// LeaderValid reports whether l may still act as the leader it was: this
// Store holds its lease (HoldsLease), and it is the lease l's leader key was
// written with. A lost lease takes every leader key bound to it along, so a
// leadership acquired before a lease was replaced is over, even though the
// node holds a lease again.
func (s *Store) LeaderValid(l Leadership) bool {
	return s.HoldsLease() && l.Revision > s.leaseRev.Load()
}

// EntryAt returns the index entry holding offset cur, for a reader that
// knows cur < end, where end is a durable offset (a high watermark) it saw.
// It never answers with an entry that starts after cur: a reader that took
// the first entry ending at or after cur would skip the offsets in between.
//
// The cache answers when it holds cur. Otherwise (a node whose watch lags
// the commits another leader made, or a new leader just after a takeover)
// the entry and the log start are read from etcd in one linearizable read.
// When retention removed cur meanwhile, from is the log start and the entry
// is the one holding it; ok is false when the log start reached end. A
// durable offset that etcd itself holds no entry for is ErrIndexBehind.
func (s *Store) EntryAt(ctx context.Context, tp TP, cur, end int64) (e IndexEntry, from int64, ok bool, err error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		if es := s.cache.indexEntries(tp, cur); len(es) > 0 && es[0].BaseOffset <= cur {
			return es[0], cur, true, nil
		}
		found, logStart, err := s.readEntryAt(ctx, tp, cur, &e)
		if err != nil {
			return IndexEntry{}, cur, false, err
		}
		if logStart > cur {
			if logStart >= end {
				return IndexEntry{}, logStart, false, nil
			}
			cur = logStart
			continue
		}
		if found && e.BaseOffset <= cur && e.LastOffset >= cur {
			return e, cur, true, nil
		}
		return IndexEntry{}, cur, false, fmt.Errorf("%w: %s/%d offset %d (durable up to %d)", ErrIndexBehind, tp.Topic, tp.Partition, cur, end)
	}
	return IndexEntry{}, cur, false, fmt.Errorf("%w: %s/%d offset %d: log start kept moving", ErrIndexBehind, tp.Topic, tp.Partition, cur)
}

// readEntryAt reads, in one linearizable transaction, the last index entry
// of tp whose base offset is at or below cur (into e) and the log start.
func (s *Store) readEntryAt(ctx context.Context, tp TP, cur int64, e *IndexEntry) (found bool, logStart int64, err error) {
	tr, err := s.resolveTopic(ctx, tp)
	if err != nil {
		return false, 0, err
	}
	id, p := tr.t.ID, tp.Partition
	resp, err := s.txn(ctx, "index_entry_at",
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.keys.topic(tp.Topic)), "=", tr.createRev)},
		[]clientv3.Op{
			clientv3.OpGet(s.keys.index(id, p, 0), clientv3.WithRange(s.keys.index(id, p, cur+1)),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1)),
			clientv3.OpGet(s.keys.logStart(id, p)),
		}, nil)
	if err != nil {
		return false, 0, err
	}
	if !resp.Succeeded {
		return false, 0, fmt.Errorf("%w: %q", ErrUnknownTopic, tp.Topic)
	}
	if kv := rangeKV(resp, 1); kv != nil {
		if logStart, err = decodeLogStart(kv.Value); err != nil {
			return false, 0, err
		}
	}
	if kv := rangeKV(resp, 0); kv != nil {
		if *e, err = decodeIndexEntry(kv.Value); err != nil {
			return false, 0, fmt.Errorf("metadata: index entry %s: %w", kv.Key, err)
		}
		return true, logStart, nil
	}
	return false, logStart, nil
}
