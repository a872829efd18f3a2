package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/cmd/node/console"
	"github.com/strata-io/strata/ingest"
	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/tier"
	"github.com/strata-io/strata/tier/objstore"
)

// Config is a node's whole configuration. DefaultConfig gives laptop defaults.
type Config struct {
	DataDir        string // default ./strata-data
	KafkaAddr      string // listen address, default 127.0.0.1:9092 (port 0 picks one)
	AdvertisedAddr string // host:port clients are told; default = the bound KafkaAddr
	HTTPAddr       string // the web console, /metrics, /healthz, /readyz, /v1/topics/...; default 127.0.0.1:9644; "" disables
	// AdvertisedHTTPAddr is the host:port other nodes (and the console in
	// a browser) reach this node's HTTP server at; default: the bound
	// HTTPAddr, with the advertised Kafka host when it listens on every
	// interface.
	AdvertisedHTTPAddr string
	// LagInterval is how often the node samples the lag of the consumer
	// groups it coordinates (strata_consumer_group_lag); default 10s.
	LagInterval   time.Duration
	FlightAddr    string   // Arrow Flight; "" (DefaultConfig: several nodes per process must not share a port) disables; strata serve uses DefaultFlightAddr
	NodeID        int32    // default 0
	Cluster       string   // etcd key prefix, default "strata"
	EtcdEndpoints []string // empty = start the embedded etcd under DataDir/etcd
	// EtcdMaxTxnOps is the etcd server's --max-txn-ops: how many operations
	// one flush commit transaction may carry (3 per partition and more for
	// producer state). 0 = 128, etcd's default, or the embedded etcd's
	// 4096 when it is used.
	EtcdMaxTxnOps    int
	ObjectStore      string        // URL; empty = file://<DataDir>/objects
	CreateBucket     bool          // create a missing S3 bucket
	FlushInterval    time.Duration // default 25ms
	FlushBytes       int           // default 8 MiB
	FlushesInFlight  int           // flushes under way at once; default 2
	MaxBufferedBytes int64         // unflushed bytes before producers wait; default 256 MiB
	HotTierBytes     int64         // local segment bytes kept per partition; default 256 MiB
	CacheBytes       int64         // local disk budget for cold reads; default 1 GiB
	SweepGrace       time.Duration // unreferenced objects older than this are deleted; default 10m
	SweepInterval    time.Duration // how often to look for unreferenced objects; default 1m
	// MaintenanceInterval is how often partitions are checked for rolling
	// and retention; default 2s.
	MaintenanceInterval time.Duration
	// ProducerIDExpiration is how long an idempotent producer may be idle
	// before partitions forget it (Kafka's producer.id.expiration.ms);
	// default 24h.
	ProducerIDExpiration time.Duration
	// TransactionMaxTimeout bounds a producer's transaction.timeout.ms
	// (Kafka's transaction.max.timeout.ms); default 15m.
	TransactionMaxTimeout time.Duration
	// Security holds the listeners, TLS and SASL settings (default: one
	// PLAINTEXT listener on KafkaAddr, advertised as AdvertisedAddr).
	Security          Security
	MaxRequestBytes   int32 // default 100 MiB
	AutoCreateTopics  bool  // default true
	DefaultPartitions int32 // default 1
}

// DefaultFlightAddr is `strata serve`'s default Arrow Flight address.
const DefaultFlightAddr = "127.0.0.1:9645"

// DefaultConfig returns the laptop defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:               "./strata-data",
		KafkaAddr:             "127.0.0.1:9092",
		HTTPAddr:              "127.0.0.1:9644",
		Cluster:               "strata",
		FlushInterval:         25 * time.Millisecond,
		FlushBytes:            8 << 20,
		FlushesInFlight:       2,
		MaxBufferedBytes:      256 << 20,
		HotTierBytes:          256 << 20,
		CacheBytes:            1 << 30,
		SweepGrace:            10 * time.Minute,
		ProducerIDExpiration:  24 * time.Hour,
		TransactionMaxTimeout: 15 * time.Minute,
		MaxRequestBytes:       100 << 20,
		AutoCreateTopics:      true,
		DefaultPartitions:     1,
	}
}

// Node is a running Strata node.
type Node struct {
	cfg    Config
	logger *slog.Logger

	embedded *metadata.Embedded
	meta     *metadata.Store
	bucket   objstore.Bucket
	tier     *tier.Tier
	server   *ingest.Server
	kafkaLn  net.Listener   // the inter-node listener
	extraLns []net.Listener // the other Kafka listeners
	// listenerAddrs are the bound addresses by listener name.
	listenerAddrs map[string]string
	httpSrv       *http.Server
	httpLn        net.Listener
	// httpStop cancels every HTTP request's context at shutdown, so a long
	// Arrow stream ends at once instead of holding Shutdown until its ctx
	// expires.
	httpStop context.CancelFunc
	console  *console.Console
	flight   *query.FlightServer
	flightLn net.Listener

	serveErr  chan error
	closing   atomic.Bool // set when Close begins; /readyz answers 503
	closeOnce sync.Once
	closeErr  error
}

// Start starts a node and returns once it accepts Kafka connections. On
// error everything started so far is stopped again.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Node, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	def := DefaultConfig()
	if cfg.DataDir == "" {
		cfg.DataDir = def.DataDir
	}
	if cfg.KafkaAddr == "" {
		cfg.KafkaAddr = def.KafkaAddr
	}
	if cfg.Cluster == "" {
		cfg.Cluster = def.Cluster
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = def.MaxRequestBytes
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = def.DefaultPartitions
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	cfg.DataDir = dataDir
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}

	// n is not the named result: a failed Start returns nil, and the
	// cleanup below (and goroutines started meanwhile) must keep the node.
	n := &Node{cfg: cfg, logger: logger, serveErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			n.shutdown(context.Background())
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	endpoints, maxTxnOps := cfg.EtcdEndpoints, cfg.EtcdMaxTxnOps
	if len(endpoints) == 0 {
		n.embedded, err = metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: filepath.Join(dataDir, "etcd"), MaxTxnOps: uint(maxTxnOps)}, logger)
		if err != nil {
			return nil, fmt.Errorf("node: embedded etcd: %w", err)
		}
		endpoints = n.embedded.Endpoints()
		if maxTxnOps == 0 {
			maxTxnOps = metadata.EmbeddedMaxTxnOps
		}
	}
	etcdTLS, err := cfg.Security.EtcdTLS.config()
	if err != nil {
		return nil, fmt.Errorf("node: etcd TLS: %w", err)
	}
	n.meta, err = metadata.Open(ctx, metadata.Config{Endpoints: endpoints, Cluster: cfg.Cluster, TLS: etcdTLS, MaxTxnOps: maxTxnOps}, logger, reg)
	if err != nil {
		return nil, fmt.Errorf("node: metadata: %w", err)
	}

	storeURL, create := cfg.ObjectStore, cfg.CreateBucket
	if storeURL == "" {
		// The laptop default: a store inside the data folder, made on first run.
		storeURL, create = "file://"+filepath.Join(dataDir, "objects"), true
	}
	storeTLS, err := cfg.Security.ObjectStoreTLS.config()
	if err != nil {
		return nil, fmt.Errorf("node: object store TLS: %w", err)
	}
	bucket, err := objstore.Open(ctx, storeURL, objstore.Options{CreateBucket: create, TLS: storeTLS}, logger)
	if err != nil {
		return nil, fmt.Errorf("node: object store: %w", err)
	}
	n.bucket = objstore.Instrument(bucket, reg, "primary")

	n.tier, err = tier.New(tier.Config{
		DataDir:              dataDir,
		NodeID:               cfg.NodeID,
		FlushInterval:        cfg.FlushInterval,
		FlushBytes:           cfg.FlushBytes,
		FlushesInFlight:      cfg.FlushesInFlight,
		MaxBufferedBytes:     cfg.MaxBufferedBytes,
		HotTierBytes:         cfg.HotTierBytes,
		CacheBytes:           cfg.CacheBytes,
		SweepGrace:           cfg.SweepGrace,
		SweepInterval:        cfg.SweepInterval,
		MaintenanceInterval:  cfg.MaintenanceInterval,
		ProducerIDExpiration: cfg.ProducerIDExpiration,
	}, n.bucket, n.meta, logger, reg)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}

	plans, sasl, inter, err := planListeners(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	authz, err := cfg.Security.authorizer()
	if err != nil {
		return nil, err
	}
	if cfg.Security.Listeners == "" && cfg.AdvertisedAddr != "" {
		plans[0].l.Host = cfg.AdvertisedAddr // the one-listener shorthand
	}
	lns, listeners, err := bindListeners(plans)
	if err != nil {
		return nil, err
	}
	n.kafkaLn = lns[inter]
	for i, ln := range lns {
		if i != inter {
			n.extraLns = append(n.extraLns, ln)
		}
	}
	// The inter-node listener comes first: the server's primary address.
	listeners[0], listeners[inter] = listeners[inter], listeners[0]
	lns[0], lns[inter] = lns[inter], lns[0]
	host, port := listeners[0].Host, listeners[0].Port
	listenersStr := ""
	if len(listeners) > 1 {
		listenersStr = ingest.ListenersString(listeners)
	}
	var httpAdv string
	httpTLS, err := cfg.Security.httpTLS(logger)
	if err != nil {
		return nil, fmt.Errorf("node: HTTP TLS: %w", err)
	}
	if cfg.Security.HTTPTLS && cfg.HTTPAddr == "" && cfg.FlightAddr == "" {
		logger.Warn("--http-tls is set but neither an HTTP nor a Flight address is")
	}
	if cfg.HTTPAddr != "" {
		// Listening before registering lets the registration carry the
		// HTTP address the console asks other nodes at.
		n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("node: http listener: %w", err)
		}
		httpAdv = cfg.AdvertisedHTTPAddr
		if httpAdv == "" {
			hh, hp, _ := net.SplitHostPort(n.httpLn.Addr().String())
			if ip := net.ParseIP(hh); ip != nil && ip.IsUnspecified() {
				hh = host
			}
			httpAdv = net.JoinHostPort(hh, hp)
		}
		if httpTLS != nil {
			httpAdv = "https://" + httpAdv // peers reach it over TLS
			n.httpLn = tls.NewListener(n.httpLn, httpTLS)
		}
	}
	if err := n.meta.RegisterNode(ctx, metadata.Node{ID: cfg.NodeID, Host: host, Port: port, HTTP: httpAdv, Listeners: listenersStr}); err != nil {
		return nil, fmt.Errorf("node: register: %w", err)
	}
	n.server = ingest.NewServer(ingest.Config{
		NodeID:                cfg.NodeID,
		AdvertisedHost:        host,
		AdvertisedPort:        port,
		ClusterID:             cfg.Cluster,
		AutoCreateTopics:      cfg.AutoCreateTopics,
		DefaultPartitions:     cfg.DefaultPartitions,
		MaxRequestBytes:       cfg.MaxRequestBytes,
		TransactionMaxTimeout: cfg.TransactionMaxTimeout,
		LagInterval:           cfg.LagInterval,
		Listeners:             listeners,
		SASL:                  sasl,
		Authorizer:            authz,
		MaxConnections:        cfg.Security.MaxConnections,
		MaxConnectionsPerIP:   cfg.Security.MaxConnectionsPerIP,
		IdleTimeout:           cfg.Security.IdleTimeout,
		MaxFetchBytesInFlight: cfg.Security.MaxFetchBytesInFlight,
	}, n.meta, n.tier, logger, reg)
	n.listenerAddrs = map[string]string{}
	for i, ln := range lns {
		n.listenerAddrs[listeners[i].Name] = ln.Addr().String()
		srv, ln, l, serveErr, primary := n.server, ln, listeners[i], n.serveErr, i == 0
		go func() {
			err := srv.ServeListener(ln, l)
			if primary || err != nil {
				select {
				case serveErr <- err:
				default: // the first error is the one reported
				}
			}
		}()
	}

	if n.httpLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			// Not ready once shutdown began: load balancers stop sending.
			if n.closing.Load() {
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
				return
			}
			// etcd refusing writes (its database reached its quota) stops
			// every acks=all produce: say so where operators look.
			for _, a := range n.meta.EtcdHealth().Alarms {
				http.Error(w, "etcd alarm "+a+": etcd refuses writes (database over its quota); compact and defragment etcd, then disarm the alarm", http.StatusServiceUnavailable)
				return
			}
			if !n.meta.HoldsLease() {
				http.Error(w, "no etcd lease: this node cannot confirm its membership with etcd", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ready\n"))
		})
		reader := query.New(n.meta, n.bucket, logger)
		mux.Handle("/v1/", query.NewHTTPHandler(reader, logger))
		var authorize func(*http.Request, kmsg.ACLOperation, kmsg.ACLResourceType, string) bool
		if n.server.AuthorizerEnabled() {
			srv := n.server
			authorize = func(r *http.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
				return srv.Allowed(r, console.PrincipalFrom(r.Context()), op, rt, name)
			}
		}
		peerTLS, err := ClientTLS{CAFile: cfg.Security.CAFile}.config()
		if err != nil {
			return nil, fmt.Errorf("node: --tls-ca-file: %w", err)
		}
		n.console = console.New(console.Config{NodeID: cfg.NodeID, Meta: n.meta, Server: n.server, Tier: n.tier,
			Reader: reader, Bucket: n.bucket, KafkaAddr: n.kafkaLn.Addr().String(), Logger: logger, Authorize: authorize,
			PeerTLS: peerTLS})
		mux.Handle("/", n.console)
		httpCtx, httpStop := context.WithCancel(context.Background())
		n.httpStop = httpStop
		n.httpSrv = &http.Server{Handler: httpGuard(n.server, logger, mux), ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return httpCtx }}
		go n.httpSrv.Serve(n.httpLn)
	}
	if cfg.FlightAddr != "" {
		n.flightLn, err = net.Listen("tcp", cfg.FlightAddr)
		if err != nil {
			return nil, fmt.Errorf("node: flight listener: %w", err)
		}
		// Any node serves any partition (reads come from the object
		// store), so endpoints point back at this node.
		fhost, fport, _ := net.SplitHostPort(n.flightLn.Addr().String())
		if ip := net.ParseIP(fhost); ip != nil && ip.IsUnspecified() {
			fhost = host
		}
		scheme := "grpc+tcp://"
		if httpTLS != nil {
			scheme = "grpc+tls://"
		}
		n.flight = query.NewFlightServer(query.New(n.meta, n.bucket, logger), query.FlightConfig{
			Location:  scheme + net.JoinHostPort(fhost, fport),
			TLS:       httpTLS,
			Authorize: flightAuthorizer(n.server),
		}, logger)
		go n.flight.Serve(n.flightLn)
	}
	logger.Info("strata node started", "node_id", cfg.NodeID, "kafka", n.kafkaLn.Addr().String(), "listeners", ingest.ListenersString(listeners),
		"advertised", net.JoinHostPort(host, strconv.Itoa(int(port))), "http", n.HTTPAddr(), "flight", n.FlightAddr(),
		"etcd", endpoints, "object_store", storeURL, "data_dir", dataDir)
	return n, nil
}

// advertised returns the host and port clients are told to connect to.
func advertised(adv, bound string) (string, int32, error) {
	addr := adv
	if addr == "" {
		addr = bound
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("node: advertised address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("node: advertised address %q: bad port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return host, int32(port), nil
}

// KafkaAddr is the bound address (host:port) of the inter-node Kafka
// listener (the only one by default).
func (n *Node) KafkaAddr() string { return n.kafkaLn.Addr().String() }

// ListenerAddr is the bound address of the Kafka listener named name, ""
// if there is none.
func (n *Node) ListenerAddr(name string) string {
	return n.listenerAddrs[strings.ToUpper(name)]
}

// HTTPAddr is the bound HTTP address, or "" when disabled.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// FlightAddr is the bound Arrow Flight address, or "" when disabled.
func (n *Node) FlightAddr() string {
	if n.flightLn == nil {
		return ""
	}
	return n.flightLn.Addr().String()
}

// EtcdEndpoints are the etcd endpoints the node uses: the embedded etcd's
// when it started one, else Config.EtcdEndpoints.
func (n *Node) EtcdEndpoints() []string {
	if n.embedded != nil {
		return n.embedded.Endpoints()
	}
	return append([]string(nil), n.cfg.EtcdEndpoints...)
}

// ServeErr delivers the Kafka server's error if it stops on its own (nil
// after Close).
func (n *Node) ServeErr() <-chan error { return n.serveErr }

// Close shuts down gracefully: stop accepting, flush, answer or fail in-flight
// requests, close etcd. Bounded by ctx.
func (n *Node) Close(ctx context.Context) error {
	n.closing.Store(true)
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(ctx) })
	return n.closeErr
}

func (n *Node) shutdown(ctx context.Context) error {
	var errs []error
	if n.server != nil {
		// In-flight acks=all produces wait for the flusher, which runs until
		// the tier closes below.
		errs = append(errs, n.server.Close(ctx))
	} else if n.kafkaLn != nil {
		n.kafkaLn.Close()
		for _, ln := range n.extraLns {
			ln.Close()
		}
	}
	if n.tier != nil {
		errs = append(errs, n.tier.Close(ctx))
	}
	if n.console != nil {
		n.console.Close()
	}
	if n.httpSrv != nil {
		n.httpStop()
		errs = append(errs, n.httpSrv.Shutdown(ctx))
	} else if n.httpLn != nil {
		n.httpLn.Close() // a Start that failed after listening
	}
	if n.flight != nil {
		errs = append(errs, n.flight.Close(ctx))
	} else if n.flightLn != nil {
		n.flightLn.Close()
	}
	if n.meta != nil {
		errs = append(errs, n.meta.Close())
	}
	if n.bucket != nil {
		errs = append(errs, n.bucket.Close())
	}
	if n.embedded != nil {
		errs = append(errs, n.embedded.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: close: %w", err)
	}
	return nil
}
