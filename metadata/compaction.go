package metadata

// Compaction progress: one key per compacted partition (KEYS.md,
// "Compaction"), written by the leader's compactor after each pass.

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CompactionState is what the compactor records of a partition.
type CompactionState struct {
	// Cleaned is the offset compaction has reached: every record below it
	// was compacted against the keys above it at least once. Records at
	// and above it are the dirty part.
	Cleaned int64 `json:"cleaned"`
	// LastMs is when the last pass finished (unix ms).
	LastMs int64 `json:"last_ms"`
	Passes int64 `json:"passes"`
	// Totals over every pass.
	BytesRead    int64 `json:"bytes_read"`
	BytesWritten int64 `json:"bytes_written"`
	RecordsIn    int64 `json:"records_in"`
	RecordsOut   int64 `json:"records_out"`
	Puts         int64 `json:"puts"`
	Gets         int64 `json:"gets"`
	EtcdTxns     int64 `json:"etcd_txns"`
}

func (k keys) compaction(id TopicID, p int32) string { return k.part(id, p) + "compaction" }

// Compaction reads tp's compaction state (the zero state when it was never
// compacted).
func (s *Store) Compaction(ctx context.Context, tp TP) (CompactionState, error) {
	t, ok := s.Topic(tp.Topic)
	if !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		return CompactionState{}, fmt.Errorf("%w: %s/%d", ErrUnknownTopic, tp.Topic, tp.Partition)
	}
	resp, err := s.txn(ctx, "get_compaction", nil, []clientv3.Op{clientv3.OpGet(s.keys.compaction(t.ID, tp.Partition))}, nil)
	if err != nil {
		return CompactionState{}, err
	}
	var st CompactionState
	if kv := rangeKV(resp, 0); kv != nil {
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return CompactionState{}, fmt.Errorf("metadata: compaction state of %s/%d: %w", tp.Topic, tp.Partition, err)
		}
	}
	return st, nil
}

// SetCompaction writes tp's compaction state, guarded by the leadership.
func (s *Store) SetCompaction(ctx context.Context, l Leadership, st CompactionState) error {
	id, p := l.TopicID, l.TP.Partition
	resp, err := s.txn(ctx, "set_compaction",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.keys.leader(id, p)), "=", l.Revision)},
		[]clientv3.Op{clientv3.OpPut(s.keys.compaction(id, p), mustJSON(st))}, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s/%d epoch %d", ErrFenced, l.TP.Topic, p, l.Epoch)
	}
	return nil
}
