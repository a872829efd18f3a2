package metadata

import (
	"context"
	"errors"
	"fmt"
	"math"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// AcquireLeadership makes nodeID the leader of tp: it bumps the epoch and
// writes the leader key bound to this Store's lease, in one transaction.
//
// The transaction compares the epoch key's revision with the one read, so
// two concurrent acquisitions never hand out the same epoch: the loser
// re-reads (from the transaction's Else branch) and tries again. It also
// compares the topic key's create revision, so no leader key is written for
// a topic deleted (or deleted and re-created) meanwhile.
func (s *Store) AcquireLeadership(ctx context.Context, tp TP, nodeID int32) (Leadership, error) {
	tr, err := s.resolveTopic(ctx, tp)
	if err != nil {
		return Leadership{}, err
	}
	lease, err := s.currentLease()
	if err != nil {
		return Leadership{}, err
	}
	// The first attempt guesses that the partition never had a leader
	// (epoch key absent); when wrong, the Else branch returns the epoch key
	// and the second attempt is exact. A fresh partition costs one round trip.
	var epochKV *mvccpb.KeyValue
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		id := tr.t.ID
		topicKey := s.keys.topic(tp.Topic)
		epochKey := s.keys.epoch(id, tp.Partition)
		leaderKey := s.keys.leader(id, tp.Partition)
		next, epochRev := int32(0), int64(0)
		if epochKV != nil {
			cur, err := decodeEpoch(epochKV.Value)
			if err != nil {
				return Leadership{}, fmt.Errorf("metadata: %s: %w", epochKey, err)
			}
			if cur == math.MaxInt32 {
				return Leadership{}, fmt.Errorf("metadata: %s/%d: leader epoch exhausted", tp.Topic, tp.Partition)
			}
			next, epochRev = cur+1, epochKV.ModRevision
		}
		leaderVal := mustJSON(leaderRec{Node: nodeID, Epoch: next})
		resp, err := s.txn(ctx, "acquire_leadership",
			[]clientv3.Cmp{
				clientv3.Compare(clientv3.CreateRevision(topicKey), "=", tr.createRev),
				clientv3.Compare(clientv3.ModRevision(epochKey), "=", epochRev),
			},
			[]clientv3.Op{
				clientv3.OpPut(epochKey, mustJSON(epochRec{Epoch: next})),
				clientv3.OpPut(leaderKey, leaderVal, clientv3.WithLease(lease)),
			},
			[]clientv3.Op{clientv3.OpGet(topicKey), clientv3.OpGet(epochKey)})
		if err != nil {
			return Leadership{}, err
		}
		if resp.Succeeded {
			// Both puts carry the transaction's revision: the header
			// revision is the leader key's ModRevision.
			rev := resp.Header.Revision
			s.cache.applyOwn(event{key: leaderKey, value: []byte(leaderVal), modRev: rev, createRev: rev})
			s.logger.Info("metadata: leadership acquired", "topic", tp.Topic, "partition", tp.Partition,
				"node", nodeID, "epoch", next, "revision", rev)
			return Leadership{TP: tp, TopicID: id, NodeID: nodeID, Epoch: next, Revision: rev}, nil
		}
		if tkv := rangeKV(resp, 0); tkv == nil || tkv.CreateRevision != tr.createRev {
			// Deleted, or deleted and re-created under a new ID: start over
			// with what etcd has now.
			ntr, err := s.topicFromKV(tkv)
			if err != nil {
				return Leadership{}, err
			}
			if tr, err = s.checkPartition(ntr, tp); err != nil {
				return Leadership{}, err
			}
			epochKV = nil
			continue
		}
		epochKV = rangeKV(resp, 1)
	}
	return Leadership{}, fmt.Errorf("metadata: acquire %s/%d: too much contention", tp.Topic, tp.Partition)
}

// Leader returns the current leader of tp from the cache.
func (s *Store) Leader(tp TP) (Leadership, bool) { return s.cache.leader(tp) }

// PartitionState reads tp's committed state (a linearizable read). A
// partition never committed has the zero state.
func (s *Store) PartitionState(ctx context.Context, tp TP) (PartitionState, error) {
	tr, err := s.resolveTopic(ctx, tp)
	if err != nil {
		return PartitionState{}, err
	}
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		id := tr.t.ID
		topicKey := s.keys.topic(tp.Topic)
		// The compare makes sure the state read belongs to the topic the
		// name means now, not to one deleted since the cache learnt it.
		resp, err := s.txn(ctx, "partition_state",
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(topicKey), "=", tr.createRev)},
			[]clientv3.Op{clientv3.OpGet(s.keys.state(id, tp.Partition)), clientv3.OpGet(s.keys.logStart(id, tp.Partition))},
			[]clientv3.Op{clientv3.OpGet(topicKey)})
		if err != nil {
			return PartitionState{}, err
		}
		if !resp.Succeeded {
			ntr, err := s.topicFromKV(rangeKV(resp, 0))
			if err != nil {
				return PartitionState{}, err
			}
			if tr, err = s.checkPartition(ntr, tp); err != nil {
				return PartitionState{}, err
			}
			continue
		}
		var ps PartitionState
		if kv := rangeKV(resp, 0); kv != nil {
			st, err := decodeState(kv.Value)
			if err != nil {
				return PartitionState{}, err
			}
			ps.DurableOffset, ps.LeaderEpoch, ps.Producers = st.Durable, st.LeaderEpoch, []byte(st.Producers)
			ps.StableOffset = st.Durable
			if st.Stable != nil && *st.Stable < st.Durable {
				ps.StableOffset = *st.Stable
			}
		}
		if kv := rangeKV(resp, 1); kv != nil {
			if ps.LogStartOffset, err = decodeLogStart(kv.Value); err != nil {
				return PartitionState{}, err
			}
		}
		return ps, nil
	}
	return PartitionState{}, fmt.Errorf("metadata: state of %s/%d: too much contention", tp.Topic, tp.Partition)
}

// CommitFlush commits index entries and new durable offsets for several
// partitions atomically per partition, each guarded by its Leadership. It
// returns the partitions whose leadership was fenced (their commit did not
// happen); all others committed. err is non-nil only when the outcome is
// unknown or etcd failed; retrying the same commits is then safe, unless
// IsPermanent(err): then retrying them all together never succeeds (commit
// them one by one to find the culprit).
//
// One etcd transaction per chunk of at most Config.MaxTxnOps operations
// (three per partition plus one per producer); see KEYS.md for the
// transaction and why the durable offset never moves back. Each commit must
// start at the partition's durable offset (offsets are dense); one that does
// not is reported fenced. A commit an earlier attempt already applied counts
// as committed, even when the leadership has moved on since. Malformed
// commits fail the whole call with ErrInvalidCommit before anything is
// written. Several commits of one partition are applied in order. Producers
// (a JSON object: producer id → state, at most MaxCommitProducers of them)
// are put into their per-producer keys in the same transaction as the
// partition's entry and durable offset, so they change exactly with it.
func (s *Store) CommitFlush(ctx context.Context, commits []PartitionCommit) (fenced []TP, err error) {
	ops := make([]commitOp, len(commits))
	for i := range commits {
		c := &commits[i]
		if err := s.validateCommit(c); err != nil {
			return nil, err
		}
		prods, err := parseProducerStates(c.Producers)
		if err != nil {
			return nil, fmt.Errorf("%w: %s/%d: %v", ErrInvalidCommit, c.Leadership.TP.Topic, c.Leadership.TP.Partition, err)
		}
		ops[i] = commitOp{c: c, producers: prods}
		if err := s.validateProducers(&ops[i]); err != nil {
			return nil, err
		}
	}
	chunk := make([]*commitOp, 0, min(s.cfg.MaxTxnOps/producerOpsPerPartition, len(ops)))
	chunkOps, chunkBytes := 0, 0
	inChunk := make(map[pkey]bool, cap(chunk))
	isFenced := make(map[TP]bool)
	run := func() error {
		f, err := s.commitChunk(ctx, chunk)
		for _, tp := range f {
			if !isFenced[tp] {
				isFenced[tp] = true
				fenced = append(fenced, tp)
			}
		}
		chunk, chunkOps, chunkBytes = chunk[:0], 0, 0
		clear(inChunk)
		return err
	}
	for i := range ops {
		op := &ops[i]
		c := op.c
		k := pkey{c.Leadership.TopicID, c.Leadership.TP.Partition}
		size, n := s.commitBytes(op), producerOpsPerPartition+len(op.producers)+len(c.Aborted)
		// A partition appears at most once per transaction (etcd refuses
		// two puts of one key); a second commit of it starts a new chunk,
		// which keeps the partition's commits in order. The byte budget
		// keeps a chunk under etcd's request size limit.
		if len(chunk) > 0 && (chunkOps+n > s.cfg.MaxTxnOps || inChunk[k] || chunkBytes+size > maxTxnBytes) {
			if err := run(); err != nil {
				return fenced, err
			}
		}
		chunk = append(chunk, op)
		chunkOps += n
		chunkBytes += size
		inChunk[k] = true
	}
	if len(chunk) > 0 {
		if err := run(); err != nil {
			return fenced, err
		}
	}
	return fenced, nil
}

// commitOp is one validated commit with its producer states decoded.
type commitOp struct {
	c         *PartitionCommit
	producers []producerKV
}

// maxTxnBytes bounds the estimated size of one CommitFlush transaction:
// etcd refuses requests over --max-request-bytes (1.5 MiB by default).
const maxTxnBytes = 1 << 20

// commitBytes estimates what one partition's commit adds to a transaction:
// its keys appear in the compares, the puts and the Else reads.
func (s *Store) commitBytes(op *commitOp) int {
	c := op.c
	n := 1024 + len(c.Entry.Object) + len(c.Leadership.TP.Topic)
	if len(op.producers) > 0 {
		pk := len(s.keys.producers(c.Leadership.TopicID, c.Leadership.TP.Partition)) + 20
		for _, p := range op.producers {
			n += pk + len(p.value)
		}
	}
	return n
}

func (s *Store) validateCommit(c *PartitionCommit) error {
	l, e := &c.Leadership, &c.Entry
	switch {
	case l.Revision <= 0:
		return fmt.Errorf("%w: %s/%d: no leadership revision", ErrInvalidCommit, l.TP.Topic, l.TP.Partition)
	case l.TP.Partition < 0:
		return fmt.Errorf("%w: partition %d", ErrInvalidCommit, l.TP.Partition)
	case e.BaseOffset < 0 || e.LastOffset < e.BaseOffset:
		return fmt.Errorf("%w: %s/%d: offsets [%d, %d]", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, e.BaseOffset, e.LastOffset)
	case e.LastOffset == math.MaxInt64 || c.DurableOffset != e.LastOffset+1:
		return fmt.Errorf("%w: %s/%d: durable offset %d after last offset %d", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, c.DurableOffset, e.LastOffset)
	case e.Object == "" || e.Position < 0 || e.Size <= 0:
		return fmt.Errorf("%w: %s/%d: object %q at %d+%d", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, e.Object, e.Position, e.Size)
	case c.StableOffset != nil && (*c.StableOffset < 0 || *c.StableOffset > c.DurableOffset):
		return fmt.Errorf("%w: %s/%d: stable offset %d beyond durable offset %d", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, *c.StableOffset, c.DurableOffset)
	}
	for _, a := range c.Aborted {
		if a.First < 0 || a.Last < a.First || a.Last > e.LastOffset || a.Last < e.BaseOffset {
			return fmt.Errorf("%w: %s/%d: aborted transaction [%d, %d] outside the commit [%d, %d]", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, a.First, a.Last, e.BaseOffset, e.LastOffset)
		}
	}
	return nil
}

func (s *Store) validateProducers(op *commitOp) error {
	l := &op.c.Leadership
	if n, most := len(op.producers)+len(op.c.Aborted), s.MaxCommitProducers(); n > most {
		return fmt.Errorf("%w: %s/%d: %d producer states (max %d)", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, n, most)
	}
	for _, p := range op.producers {
		if len(p.value) > MaxProducerStateBytes {
			return fmt.Errorf("%w: %s/%d: producer %d state of %d bytes (max %d)", ErrInvalidCommit, l.TP.Topic, l.TP.Partition, p.id, len(p.value), MaxProducerStateBytes)
		}
	}
	return nil
}

// stableOf is the stable offset a commit writes into the state key: only
// one below the durable offset.
func stableOf(c *PartitionCommit) *int64 {
	if c.StableOffset == nil || *c.StableOffset >= c.DurableOffset {
		return nil
	}
	v := *c.StableOffset
	return &v
}

// errNoCause guards the commit loop: a failed compare whose Else reads show
// no reason cannot happen with a correct etcd; better an error than a spin.
var errNoCause = errors.New("metadata: commit compare failed with no visible cause")

// durableCmp is the compare that makes a partition's commit apply exactly
// once and only in offset order: the durable offset must still be the
// commit's base offset (a partition that never committed has no durable key
// and its first commit starts at 0).
func (s *Store) durableCmp(c *PartitionCommit) clientv3.Cmp {
	dk := s.keys.durable(c.Leadership.TopicID, c.Leadership.TP.Partition)
	if c.Entry.BaseOffset == 0 {
		return clientv3.Compare(clientv3.CreateRevision(dk), "=", 0)
	}
	return clientv3.Compare(clientv3.Value(dk), "=", encodeDurable(c.Entry.BaseOffset))
}

// commitChunk commits one chunk, retrying without the partitions that
// cannot commit until the rest has.
func (s *Store) commitChunk(ctx context.Context, chunk []*commitOp) (fenced []TP, err error) {
	todo := append([]*commitOp(nil), chunk...)
	for len(todo) > 0 {
		n := len(todo)
		cmps := make([]clientv3.Cmp, 0, 2*n)
		then := make([]clientv3.Op, 0, 3*n)
		els := make([]clientv3.Op, 0, 2*n)
		entryKeys := make([]string, n)
		entryVals := make([]string, n)
		for i, op := range todo {
			c := op.c
			id, p := c.Leadership.TopicID, c.Leadership.TP.Partition
			lk := s.keys.leader(id, p)
			entryKeys[i], entryVals[i] = s.keys.index(id, p, c.Entry.BaseOffset), mustJSON(c.Entry)
			cmps = append(cmps,
				clientv3.Compare(clientv3.ModRevision(lk), "=", c.Leadership.Revision),
				s.durableCmp(c))
			then = append(then,
				clientv3.OpPut(entryKeys[i], entryVals[i]),
				clientv3.OpPut(s.keys.state(id, p), mustJSON(stateRec{Durable: c.DurableOffset, LeaderEpoch: c.Leadership.Epoch, Stable: stableOf(c)})),
				clientv3.OpPut(s.keys.durable(id, p), encodeDurable(c.DurableOffset)))
			for _, pr := range op.producers {
				then = append(then, clientv3.OpPut(s.keys.producer(id, p, pr.id), pr.value))
			}
			for _, a := range c.Aborted {
				then = append(then, clientv3.OpPut(s.keys.aborted(id, p, a.Last), mustJSON(a)))
			}
			els = append(els, clientv3.OpGet(lk), clientv3.OpGet(s.keys.durable(id, p)))
		}
		resp, err := s.txn(ctx, "commit_flush", cmps, then, els)
		if err != nil {
			return fenced, err
		}
		if resp.Succeeded {
			rev := resp.Header.Revision
			evs := make([]event, n)
			for i := range todo {
				evs[i] = event{key: entryKeys[i], value: []byte(entryVals[i]), modRev: rev, createRev: rev}
			}
			s.cache.applyOwn(evs...)
			return fenced, nil
		}
		// The Else branch read, at the revision the compares failed at,
		// each partition's leader key and durable offset.
		keep := todo[:0]
		var maybe []*PartitionCommit // already applied, perhaps
		var maybeLeading []bool
		for i, op := range todo {
			c := op.c
			lkv, dkv := rangeKV(resp, 2*i), rangeKV(resp, 2*i+1)
			leading := lkv != nil && lkv.ModRevision == c.Leadership.Revision
			var durable int64
			if dkv != nil {
				if durable, err = decodeDurable(dkv.Value); err != nil {
					return fenced, err
				}
			}
			switch {
			case durable >= c.DurableOffset:
				// Our offsets are durable already: an earlier attempt of
				// this commit whose outcome the caller did not learn, or,
				// if the leadership moved on, maybe another leader's
				// records at the same offsets. The index tells.
				maybe = append(maybe, c)
				maybeLeading = append(maybeLeading, leading)
			case !leading:
				fenced = append(fenced, c.Leadership.TP)
			case durable != c.Entry.BaseOffset:
				// A gap or an overlap under a current leadership: a bug in
				// the caller. The commit cannot happen; reporting it fenced
				// makes the leader step down and the next one start over
				// from the durable state.
				s.logger.Error("metadata: commit does not start at the durable offset; reporting it fenced",
					"topic", c.Leadership.TP.Topic, "partition", c.Leadership.TP.Partition,
					"base", c.Entry.BaseOffset, "durable", durable)
				fenced = append(fenced, c.Leadership.TP)
			default:
				keep = append(keep, op)
			}
		}
		if len(maybe) > 0 {
			f, err := s.checkApplied(ctx, maybe, maybeLeading)
			fenced = append(fenced, f...)
			if err != nil {
				return fenced, err
			}
		}
		if len(keep) == n {
			return fenced, errNoCause
		}
		todo = keep
	}
	return fenced, nil
}

// checkApplied decides, for commits whose offsets are already durable,
// whether this very commit was applied (then it counts as committed and its
// entry goes into the cache) or another leader's was (fenced). Under a
// leadership that is still current the durable offset alone proves it: only
// this leadership wrote since it began, in offset order, and every commit
// starts at the durable offset. Otherwise the index entry at the commit's
// base offset must be the one being committed.
func (s *Store) checkApplied(ctx context.Context, commits []*PartitionCommit, leading []bool) (fenced []TP, err error) {
	ops := make([]clientv3.Op, len(commits))
	for i, c := range commits {
		ops[i] = clientv3.OpGet(s.keys.index(c.Leadership.TopicID, c.Leadership.TP.Partition, c.Entry.BaseOffset))
	}
	resp, err := s.txn(ctx, "commit_check", nil, ops, nil)
	if err != nil {
		return nil, err
	}
	var done []event
	for i, c := range commits {
		ikv := rangeKV(resp, i)
		same := false
		if ikv != nil {
			e, err := decodeIndexEntry(ikv.Value)
			same = err == nil && e == c.Entry
		}
		switch {
		case same:
			done = append(done, kvEvent(ikv))
		case leading[i]:
			// Applied; the entry has since been replaced by the roller or
			// removed by retention, and the cache follows those changes.
		default:
			fenced = append(fenced, c.Leadership.TP)
		}
	}
	s.cache.applyOwn(done...)
	return fenced, nil
}

// IndexEntries returns tp's index entries whose LastOffset >= from, sorted by
// BaseOffset, from the cache (which includes this Store's own commits as soon
// as CommitFlush returns).
func (s *Store) IndexEntries(tp TP, from int64) []IndexEntry { return s.cache.indexEntries(tp, from) }

// SetLogStartOffset advances tp's log start offset (never moves it back),
// guarded by the leadership.
//
// An offset at or below the current log start is a no-op; one beyond the
// durable offset is ErrOffsetOutOfRange; a leadership that is no longer
// current is ErrFenced, and a zero Leadership is ErrNotLeader.
func (s *Store) SetLogStartOffset(ctx context.Context, l Leadership, offset int64) error {
	if l.Revision <= 0 {
		return fmt.Errorf("%w: %s/%d", ErrNotLeader, l.TP.Topic, l.TP.Partition)
	}
	if offset < 0 {
		return fmt.Errorf("%w: log start offset %d", ErrOffsetOutOfRange, offset)
	}
	id, p := l.TopicID, l.TP.Partition
	leaderKey, stateKey, lsKey := s.keys.leader(id, p), s.keys.state(id, p), s.keys.logStart(id, p)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		resp, err := s.txn(ctx, "read_log_start", nil,
			[]clientv3.Op{clientv3.OpGet(leaderKey), clientv3.OpGet(stateKey), clientv3.OpGet(lsKey)}, nil)
		if err != nil {
			return err
		}
		if lkv := rangeKV(resp, 0); lkv == nil || lkv.ModRevision != l.Revision {
			return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
		}
		var durable, cur, curRev int64
		if kv := rangeKV(resp, 1); kv != nil {
			st, err := decodeState(kv.Value)
			if err != nil {
				return err
			}
			durable = st.Durable
		}
		if kv := rangeKV(resp, 2); kv != nil {
			if cur, err = decodeLogStart(kv.Value); err != nil {
				return err
			}
			curRev = kv.ModRevision
		}
		if offset <= cur {
			return nil
		}
		if offset > durable {
			return fmt.Errorf("%w: %s/%d: log start %d > durable %d", ErrOffsetOutOfRange, l.TP.Topic, p, offset, durable)
		}
		resp, err = s.txn(ctx, "set_log_start",
			[]clientv3.Cmp{
				clientv3.Compare(clientv3.ModRevision(leaderKey), "=", l.Revision),
				clientv3.Compare(clientv3.ModRevision(lsKey), "=", curRev),
			},
			[]clientv3.Op{clientv3.OpPut(lsKey, mustJSON(logStartRec{LogStart: offset}))}, nil)
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		// Lost a race: the next read tells whether to the fence or to
		// another log start change.
	}
	return fmt.Errorf("metadata: log start of %s/%d: too much contention", l.TP.Topic, p)
}

// IndexSummary describes a partition's index as this Store's cache holds it
// (it follows etcd's watch, so it may trail the latest commit slightly).
type IndexSummary struct {
	// Start is the first indexed offset and End one past the last: End is
	// the high watermark as of the cache. Both are 0 with no entries.
	Start, End int64
	// Entries, Objects (distinct object keys), Bytes (of the runs) and
	// Records count what the index points at in the object store.
	Entries int
	Objects int
	Bytes   int64
	Records int64
}

// IndexSummary summarises tp's cached index; ok is false when it has no
// entries (an empty partition, an unknown topic, or every entry removed by
// retention: PartitionState then has the high watermark).
func (s *Store) IndexSummary(tp TP) (sum IndexSummary, ok bool) {
	return s.cache.indexSummary(tp)
}

// CachedEntryAt returns the cached index entry holding offset, or the first
// entry after it; ok is false when no entry ends at or after offset. It is
// for monitoring (time lag); reads use EntryAt, which never trusts a
// lagging cache.
func (s *Store) CachedEntryAt(tp TP, offset int64) (IndexEntry, bool) {
	return s.cache.entryFrom(tp, offset)
}
