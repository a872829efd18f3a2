package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
)

// EmbeddedMaxTxnOps is the embedded etcd's --max-txn-ops unless
// EmbeddedConfig says otherwise: a flush commit of 1,000 partitions (3
// operations each) fits in one transaction.
const EmbeddedMaxTxnOps = 4096

// EmbeddedConfig configures the in-process etcd server of the single-binary
// default and of tests.
type EmbeddedConfig struct {
	// Dir holds etcd's data (WAL and snapshots). Required; created if
	// missing, and made private (mode 0700) as etcd wants. Starting again on
	// the same Dir keeps every key.
	Dir string
	// ClientAddr is the loopback host:port clients connect to; the default
	// "127.0.0.1:0" picks a free port (see Endpoints).
	ClientAddr string
	// PeerAddr is the loopback host:port of the (unused, single-member) peer
	// listener; the default "127.0.0.1:0" picks a free port.
	PeerAddr string
	// Name is the member name; default "strata".
	Name string
	// MaxTxnOps is the server's --max-txn-ops; 0 means 4096 (etcd's own
	// default is 128). Tests set 128 to behave like an external etcd.
	MaxTxnOps uint
	// CompactionRetention is how much history the server keeps: every
	// CompactionRetention it compacts away revisions older than that
	// (etcd's periodic auto-compaction). 0 means 5 minutes. Strata reads
	// only the latest revision, plus watches resuming after a short cut.
	CompactionRetention time.Duration
	// QuotaBackendBytes is the database size at which etcd raises its
	// NOSPACE alarm and refuses writes; 0 means etcd's default, 2 GiB.
	QuotaBackendBytes int64
	// DefragInterval is how often the database file is checked for space
	// that compaction freed; when at least half of it is free (or, under a
	// NOSPACE alarm, any MiB), it is defragmented to give the space back,
	// and a NOSPACE alarm is cleared once the file is under 80% of the
	// quota. 0 means 5 minutes.
	DefragInterval time.Duration
}

// Embedded is a running in-process etcd server: one member, plain HTTP,
// listening on loopback only.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
	// closing demotes etcd's shutdown chatter ("server closed", "use of
	// closed network connection" at error level) to debug.
	closing *atomic.Bool
	// stop ends the defragmenter; done is closed when it has.
	stop chan struct{}
	done chan struct{}
	// quota is QuotaBackendBytes.
	quota int64
}

// benignEtcdWarnings are warnings etcd logs on every start of a loopback,
// auth-less, single-port server like this one.
var benignEtcdWarnings = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// StartEmbedded starts an etcd server in this process and returns once it
// serves clients. Addresses must be loopback: the embedded server has no TLS
// and no auth, so it must not be reachable from other machines.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: embedded etcd needs a Dir", ErrInvalidConfig)
	}
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:0"
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "strata"
	}
	if cfg.MaxTxnOps == 0 {
		cfg.MaxTxnOps = EmbeddedMaxTxnOps
	}
	curl, err := loopbackURL(cfg.ClientAddr)
	if err != nil {
		return nil, err
	}
	purl, err := loopbackURL(cfg.PeerAddr)
	if err != nil {
		return nil, err
	}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{*curl}
	ec.AdvertiseClientUrls = []url.URL{*curl}
	ec.ListenPeerUrls = []url.URL{*purl}
	// The peer URL is recorded in the member list in the WAL. A port-0 URL
	// is never dialled by anyone (there is one member) and stays the same
	// from run to run, so a restart matches its own data.
	ec.AdvertisePeerUrls = []url.URL{*purl}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.MaxTxnOps = cfg.MaxTxnOps
	// A single member elects itself: short ticks make start-up fast, and
	// there is no network between peers to be patient with.
	ec.TickMs = 50
	ec.ElectionMs = 500
	// Compact history older than an hour, so the database does not grow
	// with every commit forever. Watches resume within that hour; a Store
	// that falls further behind reloads (ErrCompacted).
	if cfg.CompactionRetention <= 0 {
		cfg.CompactionRetention = 5 * time.Minute
	}
	if cfg.DefragInterval <= 0 {
		cfg.DefragInterval = 5 * time.Minute
	}
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	ec.Logger = "zap"
	ec.LogLevel = "warn"
	closing := new(atomic.Bool)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLoggerDemoting(logger, zapcore.WarnLevel,
		func(msg string) bool { return closing.Load() || benignEtcdWarnings[msg] }))

	// etcd wants its data private (it warns otherwise): the WAL holds every
	// key of the cluster.
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata: embedded etcd dir: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata: embedded etcd dir: %w", err)
	}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("metadata: start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("metadata: embedded etcd: %w", err)
	case <-ctx.Done():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("metadata: embedded etcd not ready: %w", ctx.Err())
	}
	em := &Embedded{etcd: e, closing: closing, stop: make(chan struct{}), done: make(chan struct{}), quota: cfg.QuotaBackendBytes}
	for _, l := range e.Clients {
		em.endpoints = append(em.endpoints, "http://"+l.Addr().String())
	}
	if len(em.endpoints) == 0 {
		e.Close()
		return nil, errors.New("metadata: embedded etcd has no client listener")
	}
	go em.defragLoop(cfg.DefragInterval, logger)
	return em, nil
}

func loopbackURL(addr string) (*url.URL, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: address %q: %v", ErrInvalidConfig, addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%w: embedded etcd address %q is not loopback", ErrInvalidConfig, addr)
	}
	if host == "localhost" {
		host = "127.0.0.1" // etcd binds IPs, not names
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
}

// Endpoints returns the client URLs to put into Config.Endpoints.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Close stops the server (after in-flight requests, bounded by etcd's own
// request timeout) and waits for its goroutines. Close the Stores using it
// first: etcd waits up to about 6s for clients' open watch streams to end.
func (e *Embedded) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		close(e.stop)
		<-e.done
		e.etcd.Close()
		// Close returns after the server stopped; an error it met while
		// serving is reported once here instead of being lost.
		select {
		case err = <-e.etcd.Err():
		default:
		}
	})
	return err
}

// defragLoop gives back the file space compaction freed: compaction makes
// old revisions' pages free for reuse, but only a defragmentation shrinks
// the file (and the size etcd's quota counts).
func (e *Embedded) defragLoop(every time.Duration, logger *slog.Logger) {
	defer close(e.done)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		be := e.etcd.Server.Backend()
		size, inUse := be.Size(), be.SizeInUse()
		nospace := false
		for _, a := range e.etcd.Server.Alarms() {
			nospace = nospace || a.Alarm == etcdserverpb.AlarmType_NOSPACE
		}
		// Defragmenting blocks etcd for a moment (about a second per GB):
		// only when half the file is free, or under NOSPACE (whose refused
		// writes also keep bbolt from counting pages compaction freed).
		if free := size - inUse; !nospace && (free < 1<<20 || free < size/2) {
			e.disarmNoSpace(logger)
			continue
		}
		start := time.Now()
		if err := be.Defrag(); err != nil {
			logger.Warn("metadata: defragment embedded etcd", "err", err)
			continue
		}
		logger.Info("metadata: defragmented embedded etcd", "size_before", size, "in_use", inUse,
			"size_after", be.Size(), "took", time.Since(start).Round(time.Millisecond))
		e.disarmNoSpace(logger)
	}
}

// disarmNoSpace clears a NOSPACE alarm once the database is back under 80%
// of its quota (etcd never clears it by itself; writes stay refused).
func (e *Embedded) disarmNoSpace(logger *slog.Logger) {
	srv := e.etcd.Server
	quota := e.quota
	if quota <= 0 {
		quota = 2 << 30
	}
	if srv.Backend().Size() >= quota*8/10 {
		return
	}
	for _, a := range srv.Alarms() {
		if a.Alarm != etcdserverpb.AlarmType_NOSPACE {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := srv.Alarm(ctx, &etcdserverpb.AlarmRequest{Action: etcdserverpb.AlarmRequest_DEACTIVATE, MemberID: a.MemberID, Alarm: a.Alarm})
		cancel()
		if err != nil {
			logger.Warn("metadata: clear etcd NOSPACE alarm", "err", err)
			return
		}
		logger.Warn("metadata: cleared etcd NOSPACE alarm after compaction freed space", "size", srv.Backend().Size(), "quota", quota)
	}
}
