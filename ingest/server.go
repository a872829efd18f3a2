package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/ingest/group"
	"github.com/strata-io/strata/ingest/share"
	"github.com/strata-io/strata/ingest/txn"
	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier"
)

// Config of the Kafka listener. Zero values take the defaults noted.
type Config struct {
	// NodeID is this node's broker id, reported as every partition's
	// leader and as the controller.
	NodeID int32
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients
	// to connect to.
	AdvertisedHost string
	AdvertisedPort int32
	// ClusterID is reported in Metadata (v2+).
	ClusterID string
	// AutoCreateTopics lets Metadata create unknown topics the client
	// asks for, with DefaultPartitions partitions (default 1).
	AutoCreateTopics  bool
	DefaultPartitions int32
	// MaxRequestBytes bounds a request frame; a larger frame closes the
	// connection with a log line. Default 100 MiB, as Kafka's
	// socket.request.max.bytes.
	MaxRequestBytes int32
	// MaxInFlightPerConn bounds the pipelined requests per connection
	// that are read but not yet answered. Default 16.
	MaxInFlightPerConn int
	// Groups configures the consumer group coordinator the server makes
	// (session timeout bounds, initial rebalance delay); its node id and
	// address are always this server's.
	Groups group.Config
	// TransactionMaxTimeout bounds a producer's transaction.timeout.ms
	// (Kafka's transaction.max.timeout.ms); default 15 minutes.
	TransactionMaxTimeout time.Duration
	// Listeners are the node's Kafka listeners, the first one the primary
	// (AdvertisedHost and AdvertisedPort are its address). Empty: one
	// PLAINTEXT listener, the listener handed to Serve.
	Listeners []Listener
	// SASL configures the SASL listeners' mechanisms.
	SASL SASL
	// Authorizer turns ACL checks on (off: everything is allowed).
	Authorizer Authorizer
	// MaxConnections and MaxConnectionsPerIP bound the open client
	// connections, in all and from one IP (Kafka's max.connections and
	// max.connections.per.ip); a connection over either is closed at
	// once. 0: no bound.
	MaxConnections, MaxConnectionsPerIP int
	// IdleTimeout closes a connection that sends no request for this
	// long (Kafka's connections.max.idle.ms), and one whose client does
	// not take a response for this long. Default 10 minutes; negative:
	// never.
	IdleTimeout time.Duration
	// MaxFetchBytesInFlight bounds the fetch response bytes the node
	// holds at once, shared among the fetches in progress. Default 256 MiB.
	MaxFetchBytesInFlight int64
	// FetchSessionCacheSlots bounds the fetch sessions (KIP-227) the node
	// keeps (Kafka's max.incremental.fetch.session.cache.slots). Default
	// 1000; negative: none, every fetch is full (fetchsession.go).
	FetchSessionCacheSlots int
	// LagInterval is how often the node samples the lag of the consumer
	// groups it coordinates (strata_consumer_group_lag). Default 10s;
	// negative: never.
	LagInterval time.Duration
	// TransactionScanInterval is how often the transaction coordinator
	// looks for expired and unfinished transactions; default 1 s.
	TransactionScanInterval time.Duration

	// txnAfterPrepare is txn.Config.AfterPrepare: a fault hook for tests.
	txnAfterPrepare func(metadata.TxnState) error
}

// Defaults applied by NewServer.
const (
	defaultMaxRequestBytes    = 100 << 20
	defaultMaxInFlightPerConn = 16
	defaultPartitions         = 1
	defaultIdleTimeout        = 10 * time.Minute
	// defaultMaxFetchBytesInFlight: room for four full 55 MiB responses
	// and many small ones, on a laptop too.
	defaultMaxFetchBytesInFlight = 256 << 20
)

// Server serves the Kafka protocol on the listeners handed to Serve.
type Server struct {
	cfg  Config
	meta *metadata.Store
	tier *tier.Tier
	log  *slog.Logger
	m    *metrics
	// traffic counts bytes and records in and out per partition.
	traffic *traffic
	// lag samples the lag of the groups this node coordinates.
	lag *lagMonitor
	// authz decides what each principal may do (the ACLs in etcd).
	authz *authorizer
	// quotas meters clients against their byte-rate quotas.
	quotas *quotaManager
	// fetchBudget bounds fetch response bytes in flight.
	fetchBudget *byteBudget
	// fetchSessions are the fetch sessions of this node's consumers.
	fetchSessions *fetchSessionCache

	// gcfg caches group configs (groupconfig.go).
	gcfg groupConfigs
	// shares holds the share-group state of the partitions this node
	// leads, and the share sessions of members fetching from it.
	shares *share.Manager

	// groups coordinates every consumer group; made by NewServer,
	// closed by Close.
	groups *group.Coordinator
	// txns coordinates transactions; made by NewServer, closed by Close.
	txns *txn.Coordinator
	// peers sends WriteTxnMarkers to partition leaders on other nodes
	// (made on first use, closed by Close).
	peersMu     sync.Mutex
	peers       *kgo.Client
	peersClosed bool
	// pids hands out producer ids for InitProducerId.
	pids producerIDPool

	// ctx is the parent of every connection's context; cancel is called
	// when Close stops waiting for in-flight requests.
	ctx    context.Context
	cancel context.CancelFunc
	// draining is closed when Close starts: readers stop reading and
	// fetch long-polls answer at once.
	draining chan struct{}

	bufs sync.Pool // *[]byte response buffers

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[string]int // open connections by client IP
	wg        sync.WaitGroup // connection goroutines
}

// NewServer returns a server for the given metadata store and tier. logger
// may be nil (discard); reg may be nil (metrics are not registered).
func NewServer(cfg Config, meta *metadata.Store, t *tier.Tier, logger *slog.Logger, reg prometheus.Registerer) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = defaultMaxRequestBytes
	}
	if cfg.MaxInFlightPerConn <= 0 {
		cfg.MaxInFlightPerConn = defaultMaxInFlightPerConn
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = defaultPartitions
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		meta:      meta,
		tier:      t,
		log:       logger,
		m:         newMetrics(reg),
		traffic:   newTraffic(reg),
		ctx:       ctx,
		cancel:    cancel,
		draining:  make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[string]int),
	}
	if cfg.IdleTimeout == 0 {
		s.cfg.IdleTimeout = defaultIdleTimeout
	}
	s.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	if cfg.Groups.GroupConfig == nil {
		cfg.Groups.GroupConfig = func(g string) map[string]string {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return s.groupConfig(ctx, g)
		}
	}
	s.groups = newCoordinator(cfg, meta, logger, reg)
	s.shares = share.NewManager(meta)
	s.txns = s.newTxnCoordinator()
	s.authz = newAuthorizer(cfg.Authorizer, meta)
	s.quotas = newQuotaManager(s)
	if cfg.MaxFetchBytesInFlight <= 0 {
		cfg.MaxFetchBytesInFlight = defaultMaxFetchBytesInFlight
	}
	s.fetchBudget = newByteBudget(cfg.MaxFetchBytesInFlight)
	s.fetchSessions = newFetchSessionCache(cfg.FetchSessionCacheSlots, reg)
	s.lag = newLagMonitor(s, cfg.LagInterval, reg)
	if reg != nil {
		if err := reg.Register(newShareCollector(s)); err != nil {
			logger.Warn("share metrics not registered", "err", err)
		}
	}
	go s.lag.run()
	if reg != nil && t != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_partitions_led", Help: "Partitions this node leads now."},
				func() float64 { return float64(len(t.Stats())) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_cluster_nodes", Help: "Live nodes of the cluster, as this node sees them."},
				func() float64 { return float64(len(meta.Nodes())) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_fetch_bytes_in_flight", Help: "Fetch response bytes this node holds (granted from --max-fetch-bytes-in-flight)."},
				func() float64 { b, _ := s.fetchBudget.inUse(); return float64(b) }),
		)
	}
	return s
}

// Serve accepts connections on ln until Close, as the primary listener
// (Config.Listeners[0], or PLAINTEXT when there are none), then returns
// nil. Any other accept failure is returned.
func (s *Server) Serve(ln net.Listener) error {
	l := Listener{Name: ProtocolPlaintext, Protocol: ProtocolPlaintext, Host: s.cfg.AdvertisedHost, Port: s.cfg.AdvertisedPort}
	if len(s.cfg.Listeners) > 0 {
		l = s.cfg.Listeners[0]
	}
	return s.ServeListener(ln, l)
}

// ServeListener accepts connections on ln as listener l until Close: TLS
// when l's protocol asks for it (l.TLS), SASL before anything else when it
// asks for that. Serve it once per listener.
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	if l.usesTLS() {
		if l.TLS == nil {
			ln.Close()
			return fmt.Errorf("ingest: listener %s (%s) has no TLS configuration", l.Name, l.Protocol)
		}
		ln = tls.NewListener(ln, l.TLS)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off
				// rather than spin, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-s.draining:
				}
				continue
			}
			return err
		}
		backoff = 0
		s.startConn(nc, l)
	}
}

// startConn registers nc and starts its goroutines, unless Close started.
func (s *Server) startConn(nc net.Conn, l Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		return
	}
	ip, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	if max := s.cfg.MaxConnections; max > 0 && len(s.conns) >= max {
		s.m.refused("max_connections")
		nc.Close()
		return
	}
	if max := s.cfg.MaxConnectionsPerIP; max > 0 && s.perIP[ip] >= max {
		s.m.refused("max_connections_per_ip")
		nc.Close()
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := newConn(s, nc, l)
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.m.connections.Inc()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		c.readLoop()
	}()
	go func() {
		defer s.wg.Done()
		c.writeLoop()
		s.mu.Lock()
		delete(s.conns, c)
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
		s.m.connections.Dec()
	}()
}

// Close stops accepting, stops reading new requests, lets the requests
// already read finish and be answered (bounded by ctx), then closes every
// connection and waits for all goroutines. It returns ctx.Err() if it had
// to cut in-flight requests short.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.draining)
		for ln := range s.listeners {
			ln.Close()
		}
		for c := range s.conns {
			c.stopReading()
		}
	}
	s.mu.Unlock()
	// Joins and syncs waiting for a rebalance are answered NOT_COORDINATOR
	// now, so they do not hold the drain up.
	s.groups.Close()
	s.txns.Close()
	s.peersMu.Lock()
	if s.peers != nil {
		s.peers.Close()
	}
	s.peersClosed = true
	s.peersMu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
	return err
}

// putBuf returns a response buffer to the pool unless it grew too large to
// keep.
func (s *Server) putBuf(b *[]byte) {
	if cap(*b) <= maxKeptBuffer {
		*b = (*b)[:0]
		s.bufs.Put(b)
	}
}
