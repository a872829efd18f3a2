package share

import (
	"context"
	"errors"
	"sync"

	"github.com/strata-io/strata/metadata"
)

// Key names one share partition.
type Key struct {
	Group     string
	Topic     metadata.TopicID
	Partition int32
}

// Manager holds the share partitions this node leads and the share
// sessions of the members fetching from it.
type Manager struct {
	store Store

	mu       sync.Mutex
	parts    map[Key]*Partition
	loading  map[Key]chan struct{}
	sessions map[sessionKey]*Session
}

// NewManager returns a Manager storing state in store.
func NewManager(store Store) *Manager {
	return &Manager{
		store:    store,
		parts:    map[Key]*Partition{},
		loading:  map[Key]chan struct{}{},
		sessions: map[sessionKey]*Session{},
	}
}

// Partition returns the share partition k under leadership lead, loading it
// from etcd when this node has none, had it under another leadership, or a
// write of it failed. cfg is the group's current settings; initStart gives
// the start offset of a partition the group never fetched
// (share.auto.offset.reset).
func (m *Manager) Partition(ctx context.Context, k Key, lead metadata.Leadership, cfg Config, initStart func() (int64, error)) (*Partition, error) {
	for {
		m.mu.Lock()
		p := m.parts[k]
		if p != nil && p.lead.Revision == lead.Revision && !p.isBroken() {
			m.mu.Unlock()
			p.setConfig(cfg)
			return p, nil
		}
		if wait, busy := m.loading[k]; busy {
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		m.loading[k] = done
		m.mu.Unlock()

		np, err := load(ctx, m.store, k.Group, lead, cfg, initStart)

		m.mu.Lock()
		delete(m.loading, k)
		close(done)
		if err == nil {
			m.parts[k] = np
		} else if p != nil {
			delete(m.parts, k)
		}
		m.mu.Unlock()
		return np, err
	}
}

// Loaded returns the share partitions this node holds, for metrics and
// describe.
func (m *Manager) Loaded() map[Key]*Partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]*Partition, len(m.parts))
	for k, p := range m.parts {
		if !p.isBroken() {
			out[k] = p
		}
	}
	return out
}

// Held returns the share partition k if this node holds it (and its
// last write did not fail).
func (m *Manager) Held(k Key) (*Partition, bool) {
	m.mu.Lock()
	p := m.parts[k]
	m.mu.Unlock()
	if p == nil || p.isBroken() {
		return nil, false
	}
	return p, true
}

// Forget drops partitions this node no longer leads (keep reports which it
// still does), so their state is loaded afresh if it leads them again.
func (m *Manager) Forget(keep func(Key, metadata.Leadership) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, p := range m.parts {
		if !keep(k, p.lead) {
			delete(m.parts, k)
		}
	}
}

func (p *Partition) isBroken() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.broken
}

func (p *Partition) setConfig(cfg Config) {
	p.mu.Lock()
	p.cfg = cfg.withDefaults()
	p.mu.Unlock()
}

// IsFenced reports whether err means the partition's leadership moved.
func IsFenced(err error) bool { return errors.Is(err, metadata.ErrFenced) }

type sessionKey struct{ group, member string }

// Session is a member's share session on this node: the partitions it
// fetches and the epoch its next request must carry.
type Session struct {
	Epoch int32
	Parts map[metadata.TopicPartitionID]struct{}
}

// Session errors, mapped to SHARE_SESSION_NOT_FOUND and
// INVALID_SHARE_SESSION_EPOCH.
var (
	ErrSessionNotFound = errors.New("share: session not found")
	ErrSessionEpoch    = errors.New("share: invalid share session epoch")
)

// OpenSession starts a new session for (group, member) with epoch 0,
// replacing any earlier one, and returns it with the partitions the old one
// held that the new one does not (their records are to be released).
func (m *Manager) OpenSession(group, member string) (s *Session, old *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := sessionKey{group, member}
	old = m.sessions[k]
	s = &Session{Epoch: 0, Parts: map[metadata.TopicPartitionID]struct{}{}}
	m.sessions[k] = s
	return s, old
}

// UseSession returns the session whose next epoch is epoch (> 0).
func (m *Manager) UseSession(group, member string, epoch int32) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[sessionKey{group, member}]
	if s == nil {
		return nil, ErrSessionNotFound
	}
	if s.Epoch != epoch {
		return nil, ErrSessionEpoch
	}
	return s, nil
}

// CloseSession ends (group, member)'s session and returns it (nil: none).
func (m *Manager) CloseSession(group, member string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := sessionKey{group, member}
	s := m.sessions[k]
	delete(m.sessions, k)
	return s
}

// Bump advances a session's epoch after a request it served; epochs wrap to
// 1, as Kafka's do.
func (m *Manager) Bump(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.Epoch == 1<<31-1 {
		s.Epoch = 1
		return
	}
	s.Epoch++
}

// Leadership is the leadership the partition's state was loaded under.
func (p *Partition) Leadership() metadata.Leadership { return p.lead }
