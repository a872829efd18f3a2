package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SCRAM credentials live in etcd, one key per user and mechanism, holding
// the salted keys (never a password): /<c>/scram/<user>/<mechanism>. The
// value is opaque to metadata (the auth package's ScramCredential JSON).

func (k keys) scramUsers() string { return k.prefix + "scram/" }
func (k keys) scram(user, mech string) string {
	return k.scramUsers() + url.PathEscape(user) + "/" + mech
}

// ScramCredential returns the stored credential of user for mechanism,
// read from etcd (found false: none).
func (s *Store) ScramCredential(ctx context.Context, user, mech string) (value []byte, found bool, err error) {
	resp, err := s.txn(ctx, "get_scram", nil, []clientv3.Op{clientv3.OpGet(s.keys.scram(user, mech))}, nil)
	if err != nil {
		return nil, false, err
	}
	kv := rangeKV(resp, 0)
	if kv == nil {
		return nil, false, nil
	}
	return kv.Value, true, nil
}

// PutScramCredential stores (replaces) user's credential for mechanism.
func (s *Store) PutScramCredential(ctx context.Context, user, mech string, value []byte) error {
	if user == "" || mech == "" || !json.Valid(value) {
		return fmt.Errorf("%w: SCRAM credential needs a user, a mechanism and a JSON value", ErrInvalidConfig)
	}
	_, err := s.txn(ctx, "put_scram", nil, []clientv3.Op{clientv3.OpPut(s.keys.scram(user, mech), string(value))}, nil)
	return err
}

// DeleteScramCredential removes user's credential for mechanism; found
// false: there was none.
func (s *Store) DeleteScramCredential(ctx context.Context, user, mech string) (found bool, err error) {
	key := s.keys.scram(user, mech)
	resp, err := s.txn(ctx, "delete_scram",
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), ">", 0)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// ScramCredentials returns every stored credential: user → mechanism →
// value.
func (s *Store) ScramCredentials(ctx context.Context) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	prefix := s.keys.scramUsers()
	var bad error
	err := s.rangePages(ctx, prefix, false, func(key string, value []byte) {
		esc, mech, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		user, err := url.PathUnescape(esc)
		if !ok || err != nil {
			bad = fmt.Errorf("metadata: bad SCRAM key %q", key)
			return
		}
		if out[user] == nil {
			out[user] = map[string][]byte{}
		}
		out[user][mech] = append([]byte(nil), value...)
	})
	if err != nil {
		return nil, err
	}
	if bad != nil {
		s.logger.Warn("metadata: skipping bad SCRAM key", "err", bad)
	}
	return out, nil
}
