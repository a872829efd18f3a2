package group

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-io/strata/metadata"
)

// Store is where committed offsets live and what the coordinator asks about
// topics. *metadata.Store implements it.
type Store interface {
	// CommitOffsets durably stores offsets of the group, replacing earlier
	// commits of the same partitions.
	CommitOffsets(ctx context.Context, group string, offsets map[metadata.TP]metadata.CommittedOffset) error
	// FetchOffsets returns every committed offset of the group.
	FetchOffsets(ctx context.Context, group string) (map[metadata.TP]metadata.CommittedOffset, error)
	// DeleteOffsets removes the group's commits of the given partitions.
	DeleteOffsets(ctx context.Context, group string, tps []metadata.TP) error
	// DeleteGroupOffsets removes every commit of the group.
	DeleteGroupOffsets(ctx context.Context, group string) error
	// ListOffsetGroups returns every group with at least one commit.
	ListOffsetGroups(ctx context.Context) ([]string, error)
	// PutTxnOffsets adds offsets a transaction commits for the group; they
	// wait in etcd for the transaction's end (its coordinator applies or
	// drops them).
	PutTxnOffsets(ctx context.Context, group string, txn metadata.TxnState, offsets map[metadata.TP]metadata.CommittedOffset) (bool, error)
	// GetTxn reads a transactional id's state.
	GetTxn(ctx context.Context, id string) (metadata.TxnState, bool, error)
	// PendingTxnOffsets returns, per producer id, the partitions whose
	// offsets an open transaction holds for the group.
	PendingTxnOffsets(ctx context.Context, group string) (map[int64][]metadata.TP, error)
	// Topic returns a topic of the cluster: OffsetCommit and OffsetDelete
	// refuse partitions of topics that do not exist, as Kafka does.
	Topic(name string) (metadata.Topic, bool)
	// TopicByID and Topics resolve KIP-848 assignments (topic ids) and
	// regex subscriptions.
	TopicByID(id metadata.TopicID) (metadata.Topic, bool)
	Topics() []metadata.Topic
	// ConsumerGroupState and PutConsumerGroupState read and write a
	// KIP-848 group's state (nil: none / delete).
	ConsumerGroupState(ctx context.Context, group string) ([]byte, error)
	PutConsumerGroupState(ctx context.Context, group string, state []byte) error
	// ListStoredGroups returns every group etcd keeps anything of;
	// GroupStored says whether it keeps anything of one group.
	ListStoredGroups(ctx context.Context) ([]metadata.StoredGroup, error)
	GroupStored(ctx context.Context, group string) (bool, error)
}

// Config configures a Coordinator. Zero values take the defaults noted.
type Config struct {
	// NodeID, Host and Port name this node in FindCoordinator answers: it
	// coordinates every group.
	NodeID int32
	Host   string
	Port   int32
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (INVALID_SESSION_TIMEOUT otherwise), as Kafka's
	// group.min/max.session.timeout.ms. Defaults 6s and 30m.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (Kafka's
	// group.initial.rebalance.delay.ms, default there 3s). Default 0: no
	// wait, which suits tests and single-consumer groups; a negative value
	// is also no wait.
	InitialRebalanceDelay time.Duration
	// MaxMetadataBytes bounds a committed offset's metadata string
	// (OFFSET_METADATA_TOO_LARGE beyond it), as Kafka's
	// offset.metadata.max.bytes. Default 4096.
	MaxMetadataBytes int
	// Owner names the node that coordinates a group, when several nodes
	// share the cluster (ok false: no answer yet, this node takes it). Every
	// node must compute the same owner; requests for a group another node
	// owns get NOT_COORDINATOR, so a group never has two coordinators. Nil:
	// this node coordinates every group.
	Owner func(group string) (nodeID int32, host string, port int32, ok bool)
	// OwnershipVersion changes whenever Owner's answers may have changed
	// (the live node set changed). Committed offsets cached while it had
	// another value are read again from the store: the group may have
	// been coordinated, and committed to, elsewhere meanwhile. Nil: never
	// changes.
	OwnershipVersion func() int64
	// Serving reports whether this node may coordinate at all now: false
	// while it cannot confirm its membership with etcd (another node may
	// coordinate its groups meanwhile). Offset commits and fetches then
	// answer NOT_COORDINATOR. Nil: always.
	Serving func() bool
	// LeaseEpoch changes whenever this node's etcd lease is replaced (it
	// was lost: the node was paused or cut off past the TTL, and other
	// nodes took its groups over). Generations begun under an earlier
	// epoch take no more commits: a consumer of the old session would
	// otherwise move committed offsets back past what the group committed
	// elsewhere meanwhile. Nil: never changes.
	LeaseEpoch func() int64
	// GroupConfig returns a group's configs (IncrementalAlterConfigs on
	// a GROUP resource): heartbeat intervals and session timeouts of
	// consumer-protocol and share members. Nil: none, the defaults
	// apply.
	GroupConfig func(group string) map[string]string
	// ConsumerHeartbeatInterval and ConsumerSessionTimeout are the
	// defaults of consumer-protocol and share members
	// (group.consumer.heartbeat.interval.ms and
	// group.consumer.session.timeout.ms: 5s and 45s).
	ConsumerHeartbeatInterval time.Duration
	ConsumerSessionTimeout    time.Duration
}

// Defaults applied by New.
const (
	defaultMinSessionTimeout = 6 * time.Second
	defaultMaxSessionTimeout = 30 * time.Minute
	defaultMaxMetadataBytes  = 4096
)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("group: coordinator closed")

// errNotOwner: another node coordinates the group.
var errNotOwner = errors.New("group: another node coordinates this group")

// owner returns the node coordinating group name.
func (c *Coordinator) owner(name string) (nodeID int32, host string, port int32) {
	if c.cfg.Owner != nil {
		if id, h, p, ok := c.cfg.Owner(name); ok {
			return id, h, p
		}
	}
	return c.cfg.NodeID, c.cfg.Host, c.cfg.Port
}

// leaseEpoch is cfg.LeaseEpoch's value, or 0.
func (c *Coordinator) leaseEpoch() int64 {
	if c.cfg.LeaseEpoch == nil {
		return 0
	}
	return c.cfg.LeaseEpoch()
}

// ownershipVersion is cfg.OwnershipVersion's value, or 0.
func (c *Coordinator) ownershipVersion() int64 {
	if c.cfg.OwnershipVersion == nil {
		return 0
	}
	return c.cfg.OwnershipVersion()
}

// owns reports whether this node coordinates group name.
func (c *Coordinator) owns(name string) bool {
	id, _, _ := c.owner(name)
	return id == c.cfg.NodeID
}

// Client describes the connection a request came on, for DescribeGroups.
type Client struct {
	// ID is the request header's client id.
	ID string
	// Host is the client's address as Kafka shows it ("/127.0.0.1").
	Host string
}

// Coordinator owns every consumer group of this node. Safe for concurrent
// use; Join and Sync block until the rebalance they take part in is
// decided, bounded by their ctx.
type Coordinator struct {
	cfg   Config
	store Store
	log   *slog.Logger
	m     *metrics

	// mu guards groups and closed. Lock order: group.offMu, then
	// group.mu, then mu: never take a group's lock while holding mu.
	mu     sync.Mutex
	closed bool
	groups map[string]*group
	// timers counts armed timers whose function has not finished; Close
	// waits for it, so no timer goroutine outlives the Coordinator.
	timers sync.WaitGroup
}

// New returns a Coordinator storing offsets in store. logger may be nil
// (discard); reg may be nil (metrics are not registered).
func New(cfg Config, store Store, logger *slog.Logger, reg prometheus.Registerer) (*Coordinator, error) {
	if store == nil {
		return nil, errors.New("group: nil store")
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = defaultMinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = defaultMaxSessionTimeout
	}
	if cfg.MaxSessionTimeout < cfg.MinSessionTimeout {
		return nil, fmt.Errorf("group: max session timeout %v below min %v", cfg.MaxSessionTimeout, cfg.MinSessionTimeout)
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = defaultMaxMetadataBytes
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Coordinator{
		cfg:    cfg,
		store:  store,
		log:    logger,
		m:      m,
		groups: make(map[string]*group),
	}, nil
}

// Close answers every Join and Sync still waiting with NOT_COORDINATOR (the
// client looks for the coordinator again), stops every timer and waits for
// timer functions already running. Later calls answer NOT_COORDINATOR.
// Commits already writing to the store finish on their own.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	c.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		g.shutdownLocked()
		c.m.members.Sub(float64(len(g.members) + len(g.smembers) + len(g.cmembers)))
		g.mu.Unlock()
	}
	c.m.groups.Sub(float64(len(gs)))
	c.timers.Wait()
}

// lookup returns the live group named name, creating it (Empty) when create
// is set. ok is false when it does not exist and create is unset; err is
// ErrClosed after Close. The caller locks the group and must look again if
// it turns out dead (removed meanwhile).
func (c *Coordinator) lookup(name string, create bool) (g *group, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if !c.owns(name) {
		return nil, errNotOwner
	}
	g = c.groups[name]
	if g == nil && create {
		g = newGroup(c, name)
		c.groups[name] = g
		c.m.groups.Inc()
	}
	return g, nil
}

// forgetLocked removes g from the coordinator's map; g.mu is held. Later
// lookups create a fresh group.
func (c *Coordinator) forgetLocked(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
		c.m.groups.Dec()
	}
}

// snapshot returns the live groups.
func (c *Coordinator) snapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	return gs
}

// afterFunc arms a timer that runs f with g.mu held, unless g was shut down
// or removed first. It returns nil after Close (nothing is armed). Called
// with g.mu held.
func (c *Coordinator) afterFunc(g *group, d time.Duration, f func()) *time.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.timers.Add(1)
	return time.AfterFunc(d, func() {
		defer c.timers.Done()
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.stopped {
			return
		}
		f()
	})
}

// stopTimer stops t; a timer stopped before it fired will never run, so
// its count is released here. A nil t is a no-op.
func (c *Coordinator) stopTimer(t *time.Timer) {
	if t != nil && t.Stop() {
		c.timers.Done()
	}
}

// newMemberID returns a member id as Kafka makes them: the client id (or
// the instance id of a static member), a dash and a random UUID.
func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand never fails on supported platforms
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
