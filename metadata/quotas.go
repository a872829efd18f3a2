package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Client quotas, in Kafka's model: an entity is a user, a client id, or
// both, each named or the default ("" name here, "<default>" in Kafka's
// tools); its quotas map keys (producer_byte_rate, consumer_byte_rate, ...)
// to values. One key per entity: security/quotas/<entity>, where <entity>
// is "user=<name>,client-id=<name>" (either part may be absent; names
// path-escaped; an empty name is the default), holding the JSON map.

// QuotaEntity names who a quota applies to. A nil part is absent; a
// pointer to "" is the default entity of that type.
type QuotaEntity struct {
	User     *string
	ClientID *string
}

// Key is the entity's canonical etcd key suffix.
func (e QuotaEntity) Key() string {
	var parts []string
	if e.User != nil {
		parts = append(parts, "user="+url.PathEscape(*e.User))
	}
	if e.ClientID != nil {
		parts = append(parts, "client-id="+url.PathEscape(*e.ClientID))
	}
	return strings.Join(parts, ",")
}

// ParseQuotaEntity is the inverse of Key.
func ParseQuotaEntity(key string) (QuotaEntity, error) {
	var e QuotaEntity
	for _, part := range strings.Split(key, ",") {
		k, v, ok := strings.Cut(part, "=")
		name, err := url.PathUnescape(v)
		if !ok || err != nil {
			return e, fmt.Errorf("metadata: bad quota entity %q", key)
		}
		switch k {
		case "user":
			e.User = &name
		case "client-id":
			e.ClientID = &name
		default:
			return e, fmt.Errorf("metadata: bad quota entity %q", key)
		}
	}
	if e.User == nil && e.ClientID == nil {
		return e, fmt.Errorf("metadata: empty quota entity")
	}
	return e, nil
}

func (k keys) quotas() string             { return k.prefix + "security/quotas/" }
func (k keys) quota(entity string) string { return k.quotas() + entity }

// AlterQuotas sets and removes quota values of one entity (compare and
// swap on the entity's key, retried).
func (s *Store) AlterQuotas(ctx context.Context, e QuotaEntity, set map[string]float64, remove []string) error {
	key := s.keys.quota(e.Key())
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		resp, err := s.txn(ctx, "get_quota", nil, []clientv3.Op{clientv3.OpGet(key)}, nil)
		if err != nil {
			return err
		}
		cur := map[string]float64{}
		var rev int64
		if kv := rangeKV(resp, 0); kv != nil {
			rev = kv.ModRevision
			if err := json.Unmarshal(kv.Value, &cur); err != nil {
				return fmt.Errorf("metadata: quota %s: %w", e.Key(), err)
			}
		}
		for k, v := range set {
			cur[k] = v
		}
		for _, k := range remove {
			delete(cur, k)
		}
		op := clientv3.OpPut(key, mustJSON(cur))
		if len(cur) == 0 {
			op = clientv3.OpDelete(key)
		}
		tr, err := s.txn(ctx, "alter_quota", []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}, []clientv3.Op{op}, nil)
		if err != nil {
			return err
		}
		if tr.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("metadata: quota %s: too much contention", e.Key())
}

// QuotaVersion changes whenever the cached quotas do (cheap: for hot
// paths that keep their own copy).
func (s *Store) QuotaVersion() int64 {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.quotaVersion
}

// Quotas returns the cached quotas (entity key → values) and a version
// that changes whenever they do.
func (s *Store) Quotas() (version int64, quotas map[string]map[string]float64) {
	return s.cache.quotaSnapshot()
}

func (c *cache) quotaSnapshot() (int64, map[string]map[string]float64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]map[string]float64, len(c.quotas))
	keys := make([]string, 0, len(c.quotas))
	for k := range c.quotas {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := make(map[string]float64, len(c.quotas[k]))
		for kk, v := range c.quotas[k] {
			m[kk] = v
		}
		out[k] = m
	}
	return c.quotaVersion, out
}
