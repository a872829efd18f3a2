package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"

	"github.com/strata-io/strata/metadata/retry"
)

const (
	defaultDialTimeout    = 5 * time.Second
	defaultLeaseTTL       = 10 * time.Second
	defaultRequestTimeout = 5 * time.Second
	defaultMaxTxnOps      = 128
	// loadPageSize bounds one range read of the initial load, so a large
	// index does not become one huge gRPC message.
	loadPageSize = 2000
	// maxCASAttempts bounds the read-compare-write loops; beyond it the
	// contention is a bug or a storm and the caller gets an error.
	maxCASAttempts = 64
)

// Store is the etcd-backed metadata of one cluster with a watch-fed cache.
// Safe for concurrent use.
type Store struct {
	cfg     Config
	logger  *slog.Logger
	cli     *clientv3.Client
	keys    keys
	cache   *cache
	metrics *metrics
	health  *health

	mu    sync.Mutex
	lease clientv3.LeaseID // 0 while a lost lease is being replaced
	// watchGate is held by PauseWatch (fault injection): watched events
	// wait while it is.
	watchGate sync.RWMutex
	// leaseTTL is the TTL etcd granted (it may raise the one asked for).
	leaseTTL time.Duration
	// leaseUntil is the monoNow() time until which the lease is certainly
	// alive in etcd (0: not held); see extendLease.
	leaseUntil atomic.Int64
	// leaseRev is the etcd revision when the current lease was granted:
	// leader keys written under it have a higher ModRevision.
	leaseRev   atomic.Int64
	registered map[int32]Node // re-put under a new lease after a loss

	cancel    context.CancelFunc // stops the watch and keep-alive goroutines
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	// revokeOnClose is false only in tests that need a Store to die the way
	// a killed process does: its lease must expire rather than be revoked.
	revokeOnClose bool
}

// Open connects to etcd, loads the cache and starts the watch that keeps it
// fresh. reg may be nil.
func Open(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no etcd endpoints", ErrInvalidConfig)
	}
	if !validName(cfg.Cluster) {
		return nil, fmt.Errorf("%w: cluster name %q (want 1..249 of [a-zA-Z0-9._-])", ErrInvalidConfig, cfg.Cluster)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = defaultLeaseTTL
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = defaultMaxTxnOps
	}
	if cfg.MaxTxnOps < 2 {
		return nil, fmt.Errorf("%w: MaxTxnOps %d (a partition's commit needs 2)", ErrInvalidConfig, cfg.MaxTxnOps)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	h, err := newHealth(reg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         cfg.TLS,
		Logger:      newZapLogger(logger, zapcore.WarnLevel),
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: etcd client: %w", err)
	}
	k := newKeys(cfg.Cluster)
	s := &Store{
		cfg:           cfg,
		logger:        logger,
		cli:           cli,
		keys:          k,
		cache:         newCache(k, logger),
		metrics:       m,
		health:        h,
		registered:    make(map[int32]Node),
		revokeOnClose: true,
	}

	// The lease grant is the first round trip: bound it by DialTimeout so an
	// unreachable etcd fails Open instead of hanging it.
	gctx, gcancel := context.WithTimeout(ctx, cfg.DialTimeout)
	sent := monoNow()
	lease, err := cli.Grant(gctx, ttlSeconds(cfg.LeaseTTL))
	gcancel()
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("metadata: grant lease: %w", err)
	}
	s.lease = lease.ID
	s.leaseTTL = time.Duration(lease.TTL) * time.Second
	s.leaseRev.Store(lease.ResponseHeader.Revision)
	s.extendLease(sent)
	if err := s.load(ctx); err != nil {
		s.revoke()
		cli.Close()
		return nil, err
	}

	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(3)
	go s.keepAliveLoop(bg)
	go s.healthLoop(bg)
	go s.watchLoop(bg)
	return s, nil
}

// Close stops the watch and lease keep-alive and closes the client.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.revokeOnClose {
			// Revoking drops this node's key and leader keys now instead of
			// a lease TTL later, so other nodes take over at once.
			s.revoke()
		}
		s.closeErr = s.cli.Close()
	})
	return s.closeErr
}

func (s *Store) revoke() {
	s.mu.Lock()
	id := s.lease
	s.mu.Unlock()
	if id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, id); err != nil {
		s.logger.Warn("metadata: revoke lease", "err", err)
	}
}

func ttlSeconds(d time.Duration) int64 {
	sec := int64((d + time.Second - 1) / time.Second)
	return max(sec, 1)
}

// currentLease returns the lease new lease-bound keys are written with.
func (s *Store) currentLease() (clientv3.LeaseID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == 0 {
		return 0, errors.New("metadata: node lease lost, being replaced")
	}
	return s.lease, nil
}

// PauseWatch is for fault injection in tests: the cache stops applying
// watched changes (as when a node's watch falls behind) until resume is
// called. The Store's own writes still reach its cache.
func (s *Store) PauseWatch() (resume func()) {
	s.watchGate.Lock()
	var once sync.Once
	return func() { once.Do(s.watchGate.Unlock) }
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is a monotonic clock reading in nanoseconds. It keeps running
// while the process is stopped (SIGSTOP), which is what lease checks need.
func monoNow() int64 { return int64(time.Since(monoBase)) }

// extendLease records that etcd renewed (or granted) the lease in answer to
// a request sent at sent: etcd restarted the lease's TTL no earlier than
// that, so it cannot expire before sent+TTL. The node counts on it only
// until sent+2/3·TTL, leaving a third of the TTL for clock-rate drift and
// the time between a check and the action it guards.
func (s *Store) extendLease(sent int64) {
	until := sent + int64(s.leaseTTL)*2/3
	for {
		cur := s.leaseUntil.Load()
		if cur >= until || s.leaseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// keepAliveLoop renews the lease every TTL/4 with one request at a time,
// timing each from before it is sent (a response read late, after the
// process was stopped, must not count as a fresh renewal). When etcd lets
// the lease expire (etcd was unreachable for longer than the TTL) the keys
// bound to it are gone: the loop grants a new lease and registers this
// Store's nodes again. Leader keys are not re-written: those leaderships
// are over (their commits fail as fenced) and the tier acquires them again.
func (s *Store) keepAliveLoop(ctx context.Context) {
	defer s.wg.Done()
	interval := max(s.leaseTTL/4, 100*time.Millisecond)
	failures := 0
	for {
		wait := interval
		if failures > 0 {
			wait = min(interval, retry.Etcd.Backoff(failures))
		}
		if retry.Sleep(ctx, wait) != nil {
			return
		}
		s.mu.Lock()
		id := s.lease
		s.mu.Unlock()
		sent := monoNow()
		kctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		_, err := s.cli.KeepAliveOnce(kctx, id)
		cancel()
		if err == nil {
			s.extendLease(sent)
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.logger.Warn("metadata: lease keep-alive failed", "lease", int64(id), "err", err, "holds_lease", s.HoldsLease())
			continue
		}
		s.mu.Lock()
		s.lease = 0
		s.mu.Unlock()
		s.leaseUntil.Store(0)
		s.logger.Error("metadata: node lease lost; granting a new one", "lease", int64(id))
		// Without a bound or a predicate, Do ends only with a new lease or
		// with ctx.
		if retry.Do(ctx, retry.Etcd, s.regrant, retry.OnError(func(err error, attempt int, delay time.Duration) {
			s.logger.Warn("metadata: grant lease", "attempt", attempt, "retry_in", delay, "err", err)
		})) != nil {
			return
		}
		failures = 0
	}
}

func (s *Store) regrant(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	sent := monoNow()
	g, err := s.cli.Grant(gctx, ttlSeconds(s.cfg.LeaseTTL))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.lease = g.ID
	s.leaseTTL = time.Duration(g.TTL) * time.Second
	s.leaseRev.Store(g.ResponseHeader.Revision)
	nodes := make([]Node, 0, len(s.registered))
	for _, n := range s.registered {
		nodes = append(nodes, n)
	}
	s.mu.Unlock()
	s.extendLease(sent)
	for _, n := range nodes {
		prev, err := s.putNode(gctx, n, g.ID)
		if err != nil {
			s.logger.Warn("metadata: re-register node", "node", n.ID, "err", err)
		} else if prev != nil {
			s.logger.Error("metadata: node id was registered by another process while this node's lease was lost; not taking it back",
				"node", n.ID, "registered", string(prev.Value))
		}
	}
	s.logger.Info("metadata: new node lease", "lease", int64(g.ID))
	return nil
}

// load reads the cache's key range at one revision, page by page, and
// installs it as the cache.
func (s *Store) load(ctx context.Context) error {
	var (
		evs       []event
		rev       int64
		from, end = s.keys.cacheRange()
	)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return fmt.Errorf("metadata: load %s: %w", from, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			evs = append(evs, kvEvent(kv))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	s.cache.replace(rev, evs)
	return nil
}

func kvEvent(kv *mvccpb.KeyValue) event {
	return event{key: string(kv.Key), value: kv.Value, modRev: kv.ModRevision, createRev: kv.CreateRevision}
}

// watchLoop keeps the cache fresh. The client resumes a watch across
// reconnects by itself; this loop handles the cases it does not: the resume
// revision was compacted away (reload everything, then watch again) and a
// watch cancelled by the server (watch again from the last applied revision,
// after a backoff).
func (s *Store) watchLoop(ctx context.Context) {
	defer s.wg.Done()
	failures := 0 // watches in a row that ended early
	for {
		start := time.Now()
		err := s.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		// A watch that ran longer than the longest backoff was healthy:
		// its end starts the backoff over instead of adding to the
		// failures of hours ago.
		if time.Since(start) > retry.Etcd.MaxDelay {
			failures = 0
		}
		failures++
		if errors.Is(err, rpctypes.ErrCompacted) {
			s.logger.Warn("metadata: watch revision compacted; reloading", "err", err)
			if err := s.load(ctx); err == nil {
				failures = 0
				continue
			} else {
				s.logger.Warn("metadata: reload after compaction", "err", err)
			}
		} else {
			s.logger.Warn("metadata: watch ended; watching again", "err", err)
		}
		if retry.Sleep(ctx, retry.Etcd.Backoff(failures)) != nil {
			return
		}
	}
}

// watchOnce watches the cache's key range from the revision after the cache's and
// applies events until the watch ends; it returns why (rpctypes.ErrCompacted
// when the cache is too old to catch up by watching).
func (s *Store) watchOnce(ctx context.Context) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	rev := s.cache.revision()
	start, end := s.keys.cacheRange()
	wch := s.cli.Watch(wctx, start, clientv3.WithRange(end), clientv3.WithRev(rev+1))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("%w: resume revision %d, compacted up to %d", rpctypes.ErrCompacted, rev+1, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return err
		}
		if len(resp.Events) == 0 {
			// A progress notification says nothing newer is pending; only
			// then does its header revision tell how far the cache is.
			if resp.IsProgressNotify() {
				s.cache.applyWatched(nil, resp.Header.Revision)
			}
			continue
		}
		evs := make([]event, len(resp.Events))
		for i, e := range resp.Events {
			evs[i] = kvEvent(e.Kv)
			evs[i].del = e.Type == clientv3.EventTypeDelete
		}
		// Events arrive in revision order; a response can stop in the
		// middle of a long catch-up, so the last event's revision (not the
		// header's) says how far the cache is.
		s.watchGate.RLock()
		s.cache.applyWatched(evs, evs[len(evs)-1].modRev)
		s.watchGate.RUnlock()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("metadata: watch channel closed")
}

// sleepCtx reports whether d passed before ctx ended. It remains for the
// periodic loops of health.go and nodes.go, which can call retry.Sleep
// directly.
func sleepCtx(ctx context.Context, d time.Duration) bool { return retry.Sleep(ctx, d) == nil }

// txn runs one transaction bounded by RequestTimeout and counts it.
func (s *Store) txn(ctx context.Context, op string, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	var written int
	for _, o := range then {
		written += len(o.KeyBytes()) + len(o.ValueBytes())
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err == nil && resp.Succeeded {
		s.metrics.written.Add(float64(written))
	}
	result := "ok"
	switch {
	case err != nil:
		result = "error"
	case !resp.Succeeded:
		result = "conflict"
	}
	s.metrics.observe(op, result, time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", op, err)
	}
	return resp, nil
}

// rangeKV returns the single key-value of the i-th response of a
// transaction made of gets, or nil when the key is absent.
func rangeKV(resp *clientv3.TxnResponse, i int) *mvccpb.KeyValue {
	if i >= len(resp.Responses) {
		return nil
	}
	rr := resp.Responses[i].GetResponseRange()
	if rr == nil || len(rr.Kvs) == 0 {
		return nil
	}
	return rr.Kvs[0]
}
