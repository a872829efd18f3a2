package metadata

// Share groups (KIP-932) and the other per-group records that are not
// offsets: group configs, the KIP-848 consumer group state, and each share
// partition's delivery state, kept as a snapshot plus deltas (KEYS.md,
// "Share groups and group state"). All live under the group's prefix, so
// DeleteGroupOffsets (DeleteGroups) removes them with the offsets, and out
// of the watched cache range.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrShareStateChanged: the share partition's snapshot changed since the
// writer loaded it (an admin reset its start offset, or another leader
// compacted it); the writer must load it again.
var ErrShareStateChanged = errors.New("metadata: share partition state changed")

// Delivery states of a record in a share partition, as KIP-932 persists
// them. Acquired is never stored: an acquisition is stored as Available
// with its delivery count raised, so a leader that dies with records
// acquired makes them available again, counted.
const (
	ShareAvailable    int8 = 0
	ShareAcknowledged int8 = 2
	ShareArchived     int8 = 4
)

// ShareRun is a run of consecutive offsets with one state and count.
type ShareRun struct {
	First int64 `json:"f"`
	Last  int64 `json:"l"`
	State int8  `json:"s"`
	Count int16 `json:"c"`
}

// ShareState is a share partition's delivery state: every offset below
// Start is done (acknowledged or archived); offsets in [Start, End) have the
// state of the run holding them (Available with count 0 when none does);
// offsets from End on were never delivered.
type ShareState struct {
	Seq   int64      `json:"seq"` // the last delta folded in
	Start int64      `json:"start"`
	End   int64      `json:"end"`
	Runs  []ShareRun `json:"runs,omitempty"`
	// Epoch counts resets (AlterShareGroupOffsets): a writer that loaded
	// an earlier one is refused.
	Epoch int64 `json:"epoch"`
}

// ShareLoaded is a share partition's state as stored: the snapshot with
// every later delta, in order, and what a writer must compare.
type ShareLoaded struct {
	Found    bool
	Snapshot ShareState
	Deltas   []ShareState // each carries Start, End and the runs it changed
	// SnapRev is the snapshot key's ModRevision (0: none).
	SnapRev int64
}

func (k keys) groupConfig(group string) string   { return k.group(group) + "config" }
func (k keys) consumerGroup(group string) string { return k.group(group) + "consumer" }
func (k keys) shareParts(group string) string    { return k.group(group) + "share/" }
func (k keys) sharePart(group string, id TopicID, p int32) string {
	return k.shareParts(group) + id.String() + "/" + strconv.FormatInt(int64(p), 10) + "/"
}
func (k keys) shareSnap(group string, id TopicID, p int32) string {
	return k.sharePart(group, id, p) + "snap"
}
func (k keys) shareDeltas(group string, id TopicID, p int32) string {
	return k.sharePart(group, id, p) + "d/"
}
func (k keys) shareDelta(group string, id TopicID, p int32, seq int64) string {
	return fmt.Sprintf("%s%020d", k.shareDeltas(group, id, p), seq)
}

// GroupConfig returns the configs set on a group (IncrementalAlterConfigs
// on a GROUP resource); none is an empty map.
func (s *Store) GroupConfig(ctx context.Context, group string) (map[string]string, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	resp, err := s.txn(ctx, "get_group_config", nil, []clientv3.Op{clientv3.OpGet(s.keys.groupConfig(group))}, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if kv := rangeKV(resp, 0); kv != nil {
		if err := json.Unmarshal(kv.Value, &out); err != nil {
			return nil, fmt.Errorf("metadata: config of group %q: %w", group, err)
		}
	}
	return out, nil
}

// PutGroupConfig replaces a group's configs (an empty map deletes them).
func (s *Store) PutGroupConfig(ctx context.Context, group string, cfg map[string]string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	op := clientv3.OpPut(s.keys.groupConfig(group), mustJSON(cfg))
	if len(cfg) == 0 {
		op = clientv3.OpDelete(s.keys.groupConfig(group))
	}
	_, err := s.txn(ctx, "put_group_config", nil, []clientv3.Op{op}, nil)
	return err
}

// ConsumerGroupState reads a KIP-848 consumer group's stored state (nil:
// none).
func (s *Store) ConsumerGroupState(ctx context.Context, group string) ([]byte, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	resp, err := s.txn(ctx, "get_consumer_group", nil, []clientv3.Op{clientv3.OpGet(s.keys.consumerGroup(group))}, nil)
	if err != nil {
		return nil, err
	}
	if kv := rangeKV(resp, 0); kv != nil {
		return kv.Value, nil
	}
	return nil, nil
}

// PutConsumerGroupState stores a KIP-848 consumer group's state (nil
// deletes it).
func (s *Store) PutConsumerGroupState(ctx context.Context, group string, state []byte) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	op := clientv3.OpPut(s.keys.consumerGroup(group), string(state))
	if state == nil {
		op = clientv3.OpDelete(s.keys.consumerGroup(group))
	}
	_, err := s.txn(ctx, "put_consumer_group", nil, []clientv3.Op{op}, nil)
	return err
}

// LoadShareState reads one share partition's snapshot and deltas.
func (s *Store) LoadShareState(ctx context.Context, group string, id TopicID, p int32) (ShareLoaded, error) {
	var out ShareLoaded
	if err := checkGroup(group); err != nil {
		return out, err
	}
	resp, err := s.txn(ctx, "load_share_state", nil, []clientv3.Op{
		clientv3.OpGet(s.keys.shareSnap(group, id, p)),
		clientv3.OpGet(s.keys.shareDeltas(group, id, p), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
	}, nil)
	if err != nil {
		return out, err
	}
	if kv := rangeKV(resp, 0); kv != nil {
		if err := json.Unmarshal(kv.Value, &out.Snapshot); err != nil {
			return out, fmt.Errorf("metadata: share state of %q: %w", group, err)
		}
		out.Found, out.SnapRev = true, kv.ModRevision
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var d ShareState
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			return out, fmt.Errorf("metadata: share delta %s: %w", kv.Key, err)
		}
		if d.Seq <= out.Snapshot.Seq {
			continue // folded into the snapshot already
		}
		out.Deltas = append(out.Deltas, d)
		out.Found = true
	}
	return out, nil
}

// AppendShareDelta stores delta d (d.Seq numbers it) of a share partition
// whose leadership is l, provided the snapshot is still the one at snapRev
// and no delta of that number exists. ErrFenced: l is no longer the
// leadership; ErrShareStateChanged: the snapshot or delta moved.
func (s *Store) AppendShareDelta(ctx context.Context, l Leadership, group string, snapRev int64, d ShareState) error {
	id, p := l.TopicID, l.TP.Partition
	dk := s.keys.shareDelta(group, id, p, d.Seq)
	return s.shareWrite(ctx, "append_share_delta", l, group, snapRev,
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(dk), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(dk, mustJSON(d))}, nil)
}

// SnapshotShareState replaces a share partition's snapshot with st and
// drops the deltas it folds in (Seq and below), under the same conditions
// as AppendShareDelta. It returns the new snapshot revision.
func (s *Store) SnapshotShareState(ctx context.Context, l Leadership, group string, snapRev int64, st ShareState) (int64, error) {
	id, p := l.TopicID, l.TP.Partition
	var rev int64
	err := s.shareWrite(ctx, "snapshot_share_state", l, group, snapRev, nil, []clientv3.Op{
		clientv3.OpPut(s.keys.shareSnap(group, id, p), mustJSON(st)),
		clientv3.OpDelete(s.keys.shareDeltas(group, id, p), clientv3.WithRange(s.keys.shareDelta(group, id, p, st.Seq+1))),
	}, &rev)
	return rev, err
}

func (s *Store) shareWrite(ctx context.Context, op string, l Leadership, group string, snapRev int64, cmps []clientv3.Cmp, ops []clientv3.Op, rev *int64) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	id, p := l.TopicID, l.TP.Partition
	cmps = append(cmps,
		clientv3.Compare(clientv3.ModRevision(s.keys.leader(id, p)), "=", l.Revision),
		clientv3.Compare(clientv3.ModRevision(s.keys.shareSnap(group, id, p)), "=", snapRev))
	resp, err := s.txn(ctx, op, cmps, ops, []clientv3.Op{clientv3.OpGet(s.keys.leader(id, p))})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		if kv := rangeKV(resp, 0); kv == nil || kv.ModRevision != l.Revision {
			return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
		}
		return fmt.Errorf("%w: %s/%d of group %q", ErrShareStateChanged, l.TP.Topic, p, group)
	}
	if rev != nil {
		*rev = resp.Header.Revision
	}
	return nil
}

// ResetShareState sets a share partition's start offset, forgetting its
// delivery state (AlterShareGroupOffsets; the coordinator checks the group
// has no members). The leader that holds the old state notices the new
// snapshot at its next write and loads it.
func (s *Store) ResetShareState(ctx context.Context, group string, id TopicID, p int32, start int64) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	cur, err := s.LoadShareState(ctx, group, id, p)
	if err != nil {
		return err
	}
	st := ShareState{Seq: cur.Snapshot.Seq, Start: start, End: start, Epoch: cur.Snapshot.Epoch + 1}
	for _, d := range cur.Deltas {
		st.Seq = max(st.Seq, d.Seq)
	}
	_, err = s.txn(ctx, "reset_share_state", nil, []clientv3.Op{
		clientv3.OpPut(s.keys.shareSnap(group, id, p), mustJSON(st)),
		clientv3.OpDelete(s.keys.shareDeltas(group, id, p), clientv3.WithPrefix()),
	}, nil)
	return err
}

// DeleteShareState forgets a share partition's state (DeleteShareGroupOffsets).
func (s *Store) DeleteShareState(ctx context.Context, group string, id TopicID, p int32) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	_, err := s.txn(ctx, "delete_share_state", nil, []clientv3.Op{
		clientv3.OpDelete(s.keys.sharePart(group, id, p), clientv3.WithPrefix()),
	}, nil)
	return err
}

// SharePartitions lists the partitions a share group keeps state for,
// sorted by topic id and partition.
func (s *Store) SharePartitions(ctx context.Context, group string) ([]TopicPartitionID, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	prefix := s.keys.shareParts(group)
	seen := map[TopicPartitionID]bool{}
	err := s.rangePages(ctx, prefix, true, func(key string, _ []byte) {
		f := strings.SplitN(strings.TrimPrefix(key, prefix), "/", 3)
		if len(f) < 3 {
			return
		}
		id, err := ParseTopicID(f[0])
		p, perr := strconv.ParseInt(f[1], 10, 32)
		if err != nil || perr != nil {
			return
		}
		seen[TopicPartitionID{ID: id, Partition: int32(p)}] = true
	})
	if err != nil {
		return nil, err
	}
	out := make([]TopicPartitionID, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID.String() < out[j].ID.String()
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// TopicPartitionID names a partition by topic id.
type TopicPartitionID struct {
	ID        TopicID
	Partition int32
}

// StoredGroup is a group known from what etcd keeps of it, and its kind
// as far as the keys tell: "consumer" (KIP-848 state), "share" (share
// partition state) or "classic" (only offsets or configs).
type StoredGroup struct {
	Name string
	Kind string
}

// ListStoredGroups returns every group with any record under its prefix
// (offsets, configs, consumer or share state), sorted by name.
func (s *Store) ListStoredGroups(ctx context.Context) ([]StoredGroup, error) {
	kinds := map[string]string{}
	prefix := s.keys.groups()
	err := s.rangePages(ctx, prefix, true, func(key string, _ []byte) {
		seg, rest, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		if !ok {
			return
		}
		g, err := url.PathUnescape(seg)
		if err != nil || g == "" {
			return
		}
		switch {
		case rest == "consumer":
			kinds[g] = "consumer"
		case strings.HasPrefix(rest, "share/"):
			if kinds[g] != "consumer" {
				kinds[g] = "share"
			}
		case kinds[g] == "":
			kinds[g] = "classic"
		}
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: list groups: %w", err)
	}
	out := make([]StoredGroup, 0, len(kinds))
	for g, k := range kinds {
		out = append(out, StoredGroup{Name: g, Kind: k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GroupStored reports whether etcd keeps anything of the group (offsets,
// configs, consumer or share state).
func (s *Store) GroupStored(ctx context.Context, group string) (bool, error) {
	if err := checkGroup(group); err != nil {
		return false, err
	}
	resp, err := s.txn(ctx, "group_stored", nil, []clientv3.Op{
		clientv3.OpGet(s.keys.group(group), clientv3.WithPrefix(), clientv3.WithCountOnly()),
	}, nil)
	if err != nil {
		return false, err
	}
	return resp.Responses[0].GetResponseRange().Count > 0, nil
}
