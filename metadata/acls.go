package metadata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ACL is one access control binding, in Kafka's model: a resource pattern
// (type, name, literal or prefixed), and who (principal, host) may or may
// not do which operation on it. The numbers are Kafka's (kmsg's ACL enums).
type ACL struct {
	ResourceType int8   `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  int8   `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission"`
}

// ID names a binding: the same binding always gets the same key, so
// creating it twice stores it once, as Kafka does.
func (a ACL) ID() string {
	b, _ := json.Marshal(a)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// ACLs live under security/acls/<id> (inside the cache's range), each
// holding its binding as JSON.
func (k keys) acls() string         { return k.prefix + "security/acls/" }
func (k keys) acl(id string) string { return k.acls() + id }

// CreateACLs stores bindings (those already stored are kept as they are).
func (s *Store) CreateACLs(ctx context.Context, acls []ACL) error {
	ops := make([]clientv3.Op, 0, len(acls))
	for _, a := range acls {
		ops = append(ops, clientv3.OpPut(s.keys.acl(a.ID()), string(mustJSON(a))))
	}
	if len(ops) == 0 {
		return nil
	}
	return s.chunkedTxn(ctx, "create_acls", ops)
}

// DeleteACLs removes the bindings with the given ids.
func (s *Store) DeleteACLs(ctx context.Context, ids []string) error {
	ops := make([]clientv3.Op, 0, len(ids))
	for _, id := range ids {
		ops = append(ops, clientv3.OpDelete(s.keys.acl(id)))
	}
	if len(ops) == 0 {
		return nil
	}
	return s.chunkedTxn(ctx, "delete_acls", ops)
}

// StoredACLs reads every binding from etcd (not the cache): for
// DescribeAcls and DeleteAcls, which must see what was just created.
func (s *Store) StoredACLs(ctx context.Context) (map[string]ACL, error) {
	out := map[string]ACL{}
	prefix := s.keys.acls()
	err := s.rangePages(ctx, prefix, false, func(key string, value []byte) {
		var a ACL
		if json.Unmarshal(value, &a) == nil {
			out[key[len(prefix):]] = a
		}
	})
	return out, err
}

// ACLs returns the bindings the cache holds (following etcd's watch) and a
// version that changes whenever they do: the authorizer rebuilds its index
// when the version moves.
func (s *Store) ACLs() (version int64, acls []ACL) { return s.cache.aclSnapshot() }

// ACLVersion is ACLs' version alone (cheap: for the authorizer's hot path,
// which keeps its own index and rebuilds it only when this moves).
func (s *Store) ACLVersion() int64 {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.aclVersion
}

func decodeACL(b []byte) (ACL, error) {
	var a ACL
	if err := json.Unmarshal(b, &a); err != nil {
		return ACL{}, fmt.Errorf("%w: acl: %v", errBadValue, err)
	}
	return a, nil
}

func (c *cache) aclSnapshot() (int64, []ACL) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ids := make([]string, 0, len(c.acls))
	for id := range c.acls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]ACL, len(ids))
	for i, id := range ids {
		out[i] = c.acls[id]
	}
	return c.aclVersion, out
}
