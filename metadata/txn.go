package metadata

// Transactions (KEYS.md, "Transactions"):
//   - one key per transactional id under txns/, holding the coordinator's
//     state of that id (TxnState); every change is a compare-and-swap on the
//     key's ModRevision, so any node may act on it and two never both win;
//   - one key per aborted transaction and partition under the partition's
//     aborted/ prefix, written by CommitFlush in the same transaction as the
//     abort marker it describes (PartitionCommit.Aborted);
//   - one key per producer id under a group's txn/ prefix holding the
//     offsets a transaction committed for the group and that wait for its
//     end (PutTxnOffsets, EndTxnOffsets).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Transaction states, with Kafka's names.
const (
	TxnEmpty          = "Empty"
	TxnOngoing        = "Ongoing"
	TxnPrepareCommit  = "PrepareCommit"
	TxnPrepareAbort   = "PrepareAbort"
	TxnCompleteCommit = "CompleteCommit"
	TxnCompleteAbort  = "CompleteAbort"
)

// TxnState is what the transaction coordinator keeps for one transactional
// id.
type TxnState struct {
	TransactionalID string `json:"-"`
	ProducerID      int64  `json:"pid"`
	ProducerEpoch   int16  `json:"epoch"`
	State           string `json:"state"`
	TimeoutMs       int32  `json:"timeout_ms"`
	// StartMs is when the current (or last) transaction began, unix ms.
	StartMs int64 `json:"start_ms,omitempty"`
	// UpdateMs is when the state last changed, unix ms.
	UpdateMs   int64    `json:"update_ms"`
	Partitions []TP     `json:"partitions,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	// Seq numbers the id's transactions: it grows by one each time a
	// transaction begins. Markers carry it (in the control record's
	// coordinator epoch), so a partition can tell a late marker of an
	// earlier transaction from the marker of the current one.
	Seq int32 `json:"seq"`
	// Revision is the key's ModRevision when read (0: absent). A write
	// succeeds only while it is unchanged.
	Revision int64 `json:"-"`
}

// HasPartition reports whether tp is in the transaction.
func (t *TxnState) HasPartition(tp TP) bool {
	for _, p := range t.Partitions {
		if p == tp {
			return true
		}
	}
	return false
}

func (k keys) txns() string { return k.prefix + "txns/" }

// txn is the key of a transactional id, escaped as group ids are: any
// string maps to exactly one key segment.
func (k keys) txn(id string) string { return k.txns() + url.PathEscape(id) }

// GetTxn reads a transactional id's state (a linearizable read). found is
// false when the id was never initialised.
func (s *Store) GetTxn(ctx context.Context, id string) (st TxnState, found bool, err error) {
	resp, err := s.txn(ctx, "get_txn", nil, []clientv3.Op{clientv3.OpGet(s.keys.txn(id))}, nil)
	if err != nil {
		return TxnState{}, false, err
	}
	kv := rangeKV(resp, 0)
	if kv == nil {
		return TxnState{TransactionalID: id}, false, nil
	}
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		return TxnState{}, false, fmt.Errorf("metadata: transaction %q: %w", id, err)
	}
	st.TransactionalID, st.Revision = id, kv.ModRevision
	return st, true, nil
}

// PutTxn writes st if the key is still at st.Revision (0: absent), and
// returns st with its new Revision. ok false: someone changed it first;
// read it again.
func (s *Store) PutTxn(ctx context.Context, st TxnState) (TxnState, bool, error) {
	if st.TransactionalID == "" {
		return st, false, fmt.Errorf("metadata: empty transactional id")
	}
	st.UpdateMs = time.Now().UnixMilli()
	key := s.keys.txn(st.TransactionalID)
	resp, err := s.txn(ctx, "put_txn",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", st.Revision)},
		[]clientv3.Op{clientv3.OpPut(key, mustJSON(st))}, nil)
	if err != nil {
		return st, false, err
	}
	if !resp.Succeeded {
		return st, false, nil
	}
	st.Revision = resp.Header.Revision
	return st, true, nil
}

// ListTxns reads every transactional id's state at one revision.
func (s *Store) ListTxns(ctx context.Context) ([]TxnState, error) {
	var out []TxnState
	prefix := s.keys.txns()
	err := s.rangePages(ctx, prefix, false, func(key string, value []byte) {
		id, err := url.PathUnescape(strings.TrimPrefix(key, prefix))
		if err != nil {
			return
		}
		var st TxnState
		if err := json.Unmarshal(value, &st); err != nil {
			s.logger.Warn("metadata: skipping malformed transaction state", "key", key, "err", err)
			return
		}
		st.TransactionalID = id
		out = append(out, st)
	})
	return out, err
}

// AbortedTxn is one aborted transaction's range in one partition: the
// producer's records from First up to the abort marker at Last are aborted.
// Fetch answers read_committed consumers with these (Kafka's
// AbortedTransactions).
type AbortedTxn struct {
	ProducerID int64 `json:"pid"`
	First      int64 `json:"first"`
	Last       int64 `json:"last"`
}

func (k keys) abortedPrefix(id TopicID, p int32) string { return k.part(id, p) + "aborted/" }

// aborted is the key of an aborted transaction: ordered by the marker's
// offset, which is unique in the partition.
func (k keys) aborted(id TopicID, p int32, last int64) string {
	return fmt.Sprintf("%s%020d", k.abortedPrefix(id, p), last)
}

// AbortedTxns reads tp's aborted transactions whose marker is at or after
// from, ordered by marker offset (a linearizable read).
func (s *Store) AbortedTxns(ctx context.Context, tp TP, from int64) ([]AbortedTxn, error) {
	t, ok := s.Topic(tp.Topic)
	if !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		return nil, fmt.Errorf("%w: %s/%d", ErrUnknownTopic, tp.Topic, tp.Partition)
	}
	prefix := s.keys.abortedPrefix(t.ID, tp.Partition)
	start := s.keys.aborted(t.ID, tp.Partition, max(from, 0))
	var out []AbortedTxn
	err := s.rangePages(ctx, prefix, false, func(key string, value []byte) {
		if key < start {
			return
		}
		var a AbortedTxn
		if err := json.Unmarshal(value, &a); err != nil {
			s.logger.Warn("metadata: skipping malformed aborted transaction", "key", key, "err", err)
			return
		}
		out = append(out, a)
	})
	return out, err
}

// DeleteAbortedBelow removes tp's aborted transactions whose marker is
// below offset: retention or DeleteRecords removed their records. Guarded
// by the leadership, as other writes of a leader are.
func (s *Store) DeleteAbortedBelow(ctx context.Context, l Leadership, offset int64) error {
	id, p := l.TopicID, l.TP.Partition
	resp, err := s.txn(ctx, "delete_aborted",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.keys.leader(id, p)), "=", l.Revision)},
		[]clientv3.Op{clientv3.OpDelete(s.keys.abortedPrefix(id, p), clientv3.WithRange(s.keys.aborted(id, p, max(offset, 0))))}, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
	}
	return nil
}

// TxnOffsets is the offsets one transaction committed for a group, waiting
// for the transaction's end.
type TxnOffsets struct {
	ProducerID    int64                `json:"pid"`
	ProducerEpoch int16                `json:"epoch"`
	Offsets       map[string]offsetRec `json:"offsets"` // "topic/partition"
}

func (k keys) groupTxns(group string) string { return k.group(group) + "txn/" }

func (k keys) groupTxn(group string, pid int64) string {
	return k.groupTxns(group) + strconv.FormatInt(pid, 10)
}

func tpString(tp TP) string { return tp.Topic + "/" + strconv.FormatInt(int64(tp.Partition), 10) }

func parseTPString(s string) (TP, bool) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return TP{}, false
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil || p < 0 || !validName(s[:i]) {
		return TP{}, false
	}
	return TP{Topic: s[:i], Partition: int32(p)}, true
}

// PutTxnOffsets adds offsets to what producer pid's open transaction
// commits for group; they become the group's committed offsets when the
// transaction commits (EndTxnOffsets) and are dropped when it aborts. The
// write happens only while the transaction's state key is still at
// txn.Revision (as read when the caller checked it is ongoing with the
// group in it): offsets written after the end would never be applied or
// dropped. ok false: the transaction changed; check it again.
func (s *Store) PutTxnOffsets(ctx context.Context, group string, txn TxnState, offsets map[TP]CommittedOffset) (ok bool, err error) {
	pid, epoch := txn.ProducerID, txn.ProducerEpoch
	if err := checkGroup(group); err != nil {
		return false, err
	}
	key := s.keys.groupTxn(group, pid)
	txnKey := s.keys.txn(txn.TransactionalID)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		resp, err := s.txn(ctx, "get_txn_offsets", nil, []clientv3.Op{clientv3.OpGet(key), clientv3.OpGet(txnKey)}, nil)
		if err != nil {
			return false, err
		}
		if tkv := rangeKV(resp, 1); tkv == nil || tkv.ModRevision != txn.Revision {
			return false, nil
		}
		cur := TxnOffsets{ProducerID: pid, ProducerEpoch: epoch, Offsets: map[string]offsetRec{}}
		var rev int64
		if kv := rangeKV(resp, 0); kv != nil {
			rev = kv.ModRevision
			var old TxnOffsets
			if err := json.Unmarshal(kv.Value, &old); err == nil && old.ProducerEpoch == epoch && old.Offsets != nil {
				cur.Offsets = old.Offsets
			}
		}
		for tp, o := range offsets {
			if !validName(tp.Topic) || tp.Partition < 0 {
				return false, fmt.Errorf("%w: %q partition %d", ErrInvalidTopic, tp.Topic, tp.Partition)
			}
			if o.CommitTime.IsZero() {
				o.CommitTime = now
			}
			cur.Offsets[tpString(tp)] = offsetRec{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: o.CommitTime}
		}
		resp, err = s.txn(ctx, "put_txn_offsets",
			[]clientv3.Cmp{
				clientv3.Compare(clientv3.ModRevision(key), "=", rev),
				clientv3.Compare(clientv3.ModRevision(txnKey), "=", txn.Revision),
			},
			[]clientv3.Op{clientv3.OpPut(key, mustJSON(cur))}, nil)
		if err != nil {
			return false, err
		}
		if resp.Succeeded {
			return true, nil
		}
	}
	return false, fmt.Errorf("metadata: transactional offsets of group %q: too much contention", group)
}

// PendingTxnOffsets returns, per producer id, the partitions whose offsets
// an open transaction holds for group.
func (s *Store) PendingTxnOffsets(ctx context.Context, group string) (map[int64][]TP, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	out := make(map[int64][]TP)
	prefix := s.keys.groupTxns(group)
	err := s.rangePages(ctx, prefix, false, func(key string, value []byte) {
		pid, ok := parseProducerID(strings.TrimPrefix(key, prefix))
		if !ok {
			return
		}
		var t TxnOffsets
		if err := json.Unmarshal(value, &t); err != nil {
			return
		}
		tps := make([]TP, 0, len(t.Offsets))
		for k := range t.Offsets {
			if tp, ok := parseTPString(k); ok {
				tps = append(tps, tp)
			}
		}
		sort.Slice(tps, func(i, j int) bool { return tpString(tps[i]) < tpString(tps[j]) })
		out[pid] = tps
	})
	return out, err
}

// ErrTxnMoved: the transaction's state key changed since the caller read
// it: another coordinator finished the transaction (or a later one began).
var ErrTxnMoved = errors.New("metadata: the transaction's state changed")

// EndTxnOffsets ends the transactional offsets of txn (a prepared state, as
// read, with its Revision) for group: on commit they replace the group's
// committed offsets, in the same etcd transaction that deletes them; on
// abort they are only deleted. Every write is conditional on the
// transaction's key still being at txn.Revision, so a coordinator that lost
// the race never touches the next transaction's offsets (ErrTxnMoved).
// Nothing pending is a no-op (a retry of an end that happened).
func (s *Store) EndTxnOffsets(ctx context.Context, group string, txn TxnState, commit bool) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	key := s.keys.groupTxn(group, txn.ProducerID)
	txnKey := s.keys.txn(txn.TransactionalID)
	txnCmp := clientv3.Compare(clientv3.ModRevision(txnKey), "=", txn.Revision)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		resp, err := s.txn(ctx, "get_txn_offsets", nil, []clientv3.Op{clientv3.OpGet(key), clientv3.OpGet(txnKey)}, nil)
		if err != nil {
			return err
		}
		if tkv := rangeKV(resp, 1); tkv == nil || tkv.ModRevision != txn.Revision {
			return ErrTxnMoved
		}
		kv := rangeKV(resp, 0)
		if kv == nil {
			return nil
		}
		var puts []clientv3.Op
		if commit {
			var t TxnOffsets
			if err := json.Unmarshal(kv.Value, &t); err != nil {
				s.logger.Warn("metadata: dropping malformed transactional offsets", "key", key, "err", err)
			}
			names := make([]string, 0, len(t.Offsets))
			for k := range t.Offsets {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				tp, ok := parseTPString(k)
				if !ok {
					continue
				}
				puts = append(puts, clientv3.OpPut(s.keys.groupOffset(group, tp), mustJSON(t.Offsets[k])))
			}
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision), txnCmp}
		// More offsets than one etcd transaction takes go first, in
		// chunks under the same compares: writing them twice (a retry)
		// is harmless, and the last transaction, which deletes the
		// pending key, decides.
		chunk := max(1, s.cfg.MaxTxnOps-1)
		moved := false
		for len(puts) > chunk {
			r, err := s.txn(ctx, "end_txn_offsets_chunk", cmps, puts[:chunk], nil)
			if err != nil {
				return err
			}
			if !r.Succeeded {
				moved = true
				break
			}
			puts = puts[chunk:]
		}
		if moved {
			continue // read again: ended by someone else, or moved on
		}
		resp, err = s.txn(ctx, "end_txn_offsets", cmps, append(puts, clientv3.OpDelete(key)), nil)
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("metadata: ending transactional offsets of group %q: too much contention", group)
}
