package metadata

// Consumer group offsets: one key per (group, topic, partition) under
// /<cluster>/groups/ (KEYS.md, "Consumer group offsets"). The group
// coordinator (ingest/group) is their only writer; it keeps its own cache,
// so these keys are not part of the Store's watch-fed cache (the cache skips
// them as unknown kinds).

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

// ErrInvalidGroup: the group id is empty. Any other string is a legal group
// id; it is escaped before it becomes a key segment.
var ErrInvalidGroup = errors.New("metadata: invalid group id")

// CommittedOffset is one partition's committed consumer offset.
type CommittedOffset struct {
	// Offset is the next offset the group will consume.
	Offset int64
	// LeaderEpoch is the leader epoch the client saw for the record before
	// Offset (KIP-320), -1 when unknown.
	LeaderEpoch int32
	// Metadata is the client's free-form string; Kafka answers a null one
	// as the empty string, so "" stands for both.
	Metadata string
	// CommitTime is when the coordinator accepted the commit. A zero time
	// is replaced by the time of the write.
	CommitTime time.Time
}

// offsetRec is the JSON under an offset key.
type offsetRec struct {
	Offset      int64     `json:"offset"`
	LeaderEpoch int32     `json:"leader_epoch"`
	Metadata    string    `json:"metadata,omitempty"`
	CommitTime  time.Time `json:"commit_time"`
}

// groupSeg turns a group id into one key segment. url.PathEscape keeps the
// usual names ([A-Za-z0-9._-]) readable and escapes '/' and '%', so any
// group id maps to exactly one segment and back.
func groupSeg(group string) string { return url.PathEscape(group) }

func (k keys) groups() string { return k.prefix + "groups/" }

// group is the prefix of everything one group keeps: DeleteGroupOffsets
// removes it with one range delete. The trailing '/' keeps group "g" from
// matching group "g2".
func (k keys) group(group string) string { return k.groups() + groupSeg(group) + "/" }

func (k keys) groupOffsets(group string) string { return k.group(group) + "offsets/" }

func (k keys) groupOffset(group string, tp TP) string {
	return k.groupOffsets(group) + tp.Topic + "/" + strconv.FormatInt(int64(tp.Partition), 10)
}

// parseOffsetKey returns the partition an offset key of the group names.
func (k keys) parseOffsetKey(group, key string) (TP, bool) {
	rest, ok := strings.CutPrefix(key, k.groupOffsets(group))
	if !ok {
		return TP{}, false
	}
	topic, part, ok := strings.Cut(rest, "/")
	if !ok || !validName(topic) {
		return TP{}, false
	}
	p, err := strconv.ParseInt(part, 10, 32)
	if err != nil || p < 0 {
		return TP{}, false
	}
	return TP{Topic: topic, Partition: int32(p)}, true
}

func checkGroup(group string) error {
	if group == "" {
		return fmt.Errorf("%w: empty", ErrInvalidGroup)
	}
	return nil
}

// CommitOffsets stores the group's committed offsets, replacing earlier
// commits of the same partitions. Partitions whose topic name is not a legal
// topic name or whose number is negative fail the whole call with
// ErrInvalidTopic before anything is written (the coordinator checks topics
// against the cluster before it calls this).
//
// The puts go in one transaction per Config.MaxTxnOps of them: each
// partition's commit is atomic, a commit larger than one transaction is not
// (a failure can leave an earlier chunk applied, which a retry overwrites
// with the same values).
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets map[TP]CommittedOffset) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	tps := sortedTPs(offsets)
	ops := make([]clientv3.Op, 0, len(tps))
	for _, tp := range tps {
		if !validName(tp.Topic) || tp.Partition < 0 {
			return fmt.Errorf("%w: %q partition %d", ErrInvalidTopic, tp.Topic, tp.Partition)
		}
		o := offsets[tp]
		if o.CommitTime.IsZero() {
			o.CommitTime = now
		}
		ops = append(ops, clientv3.OpPut(s.keys.groupOffset(group, tp), mustJSON(offsetRec{
			Offset:      o.Offset,
			LeaderEpoch: o.LeaderEpoch,
			Metadata:    o.Metadata,
			CommitTime:  o.CommitTime.UTC(),
		})))
	}
	return s.chunkedTxn(ctx, "commit_offsets", ops)
}

// chunkedTxn applies ops in unconditional transactions of at most
// Config.MaxTxnOps operations each.
func (s *Store) chunkedTxn(ctx context.Context, op string, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), s.cfg.MaxTxnOps)
		if _, err := s.txn(ctx, op, nil, ops[:n], nil); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// FetchOffsets returns every committed offset of the group (an empty map for
// a group that never committed). It is a linearizable read of etcd, paged so
// a group with many partitions is not one huge message. Values that do not
// decode are skipped with a warning: a corrupt key must not hide the rest.
func (s *Store) FetchOffsets(ctx context.Context, group string) (map[TP]CommittedOffset, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	out := make(map[TP]CommittedOffset)
	err := s.rangePages(ctx, s.keys.groupOffsets(group), false, func(key string, value []byte) {
		tp, ok := s.keys.parseOffsetKey(group, key)
		if !ok {
			s.logger.Warn("metadata: skipping unknown key under group offsets", "key", key)
			return
		}
		var r offsetRec
		if err := json.Unmarshal(value, &r); err != nil {
			s.logger.Warn("metadata: skipping malformed committed offset", "key", key, "err", err)
			return
		}
		out[tp] = CommittedOffset{Offset: r.Offset, LeaderEpoch: r.LeaderEpoch, Metadata: r.Metadata, CommitTime: r.CommitTime}
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: fetch offsets of group %q: %w", group, err)
	}
	return out, nil
}

// rangePages reads every key under prefix at one revision, page by page,
// and hands each to fn in key order. keysOnly leaves value nil.
func (s *Store) rangePages(ctx context.Context, prefix string, keysOnly bool, fn func(key string, value []byte)) error {
	var (
		rev  int64
		from = prefix
		end  = clientv3.GetPrefixRangeEnd(prefix)
	)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPageSize)}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		resp, err := s.cli.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			fn(string(kv.Key), kv.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// DeleteOffsets removes the group's committed offsets of tps. Partitions
// without a commit are no error. Deletes are chunked like CommitOffsets.
func (s *Store) DeleteOffsets(ctx context.Context, group string, tps []TP) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	ops := make([]clientv3.Op, 0, len(tps))
	for _, tp := range tps {
		if !validName(tp.Topic) || tp.Partition < 0 {
			continue // never stored, so nothing to delete
		}
		ops = append(ops, clientv3.OpDelete(s.keys.groupOffset(group, tp)))
	}
	return s.chunkedTxn(ctx, "delete_offsets", ops)
}

// DeleteGroupOffsets removes every key of the group with one range delete.
// A group without keys is no error.
func (s *Store) DeleteGroupOffsets(ctx context.Context, group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	_, err := s.txn(ctx, "delete_group", nil,
		[]clientv3.Op{clientv3.OpDelete(s.keys.group(group), clientv3.WithPrefix())}, nil)
	return err
}

// ListOffsetGroups returns, sorted, the id of every group that has at least
// one committed offset. It reads keys only, page by page.
func (s *Store) ListOffsetGroups(ctx context.Context) ([]string, error) {
	seen := make(map[string]struct{})
	prefix := s.keys.groups()
	err := s.rangePages(ctx, prefix, true, func(key string, _ []byte) {
		seg, rest, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		if !ok || !strings.HasPrefix(rest, "offsets/") {
			return
		}
		g, err := url.PathUnescape(seg)
		if err != nil || g == "" {
			s.logger.Warn("metadata: skipping malformed group key", "key", key)
			return
		}
		seen[g] = struct{}{}
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: list groups: %w", err)
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// sortedTPs returns m's keys in topic, partition order, so chunks and
// transactions are deterministic.
func sortedTPs[V any](m map[TP]V) []TP {
	tps := make([]TP, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	return tps
}
