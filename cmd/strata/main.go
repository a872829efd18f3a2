// Command strata runs a Strata node and administers topics.
//
//	strata serve [flags]            run a node (embedded etcd + local object store by default)
//	strata topic create|list|describe|delete
//	strata export --topic T --out FILE   a topic as an Arrow IPC or Parquet file
//	strata version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/strata-io/strata/cmd/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `strata: a Kafka-compatible broker that keeps its data in object storage

Usage:
  strata serve [flags]                       run a node (try: strata serve -h)
  strata topic create NAME [-partitions N] [-config k=v,...]
  strata topic list
  strata topic describe NAME
  strata topic delete NAME
  strata group list
  strata group describe NAME                 members, assignments, committed offsets, lag
  strata group reset NAME --topic T --to earliest|latest|timestamp|offset [--value V]
  strata group delete NAME
  strata user create NAME --password-file F  a SCRAM user (SCRAM-SHA-256 and -512)
  strata user list
  strata user delete NAME
  strata acl add|list|remove ...             ACLs (strata acl -h)
  strata export --topic T --out FILE [--format arrow|parquet] [--partition N]
                [--from O --to O] [--start-time T --end-time T] [--http URL]
  strata version

Every flag has an environment twin: --flush-bytes is STRATA_FLUSH_BYTES.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "topic", "topics":
		err = topicCmd(args[1:], stdout, stderr)
	case "group", "groups":
		err = groupCmd(args[1:], stdout, stderr)
	case "user", "users":
		err = userCmd(args[1:], stdout, stderr)
	case "acl", "acls":
		err = aclCmd(args[1:], stdout, stderr)
	case "export":
		err = exportCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "strata", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "strata: %v\n", err)
		return 1
	}
	return 0
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

func serve(args []string, stderr io.Writer) error {
	def := node.DefaultConfig()
	cfg := def
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: strata serve [flags]\n\nEvery flag has an environment twin (--flush-bytes: STRATA_FLUSH_BYTES) and may be\nset in the YAML file given with --config. Flags win over the environment, which wins\nover the file.\n\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "optional YAML config file (keys are flag names)")
	fs.StringVar(&cfg.DataDir, "data-dir", def.DataDir, "data folder (hot tier; embedded etcd and object store by default)")
	fs.StringVar(&cfg.KafkaAddr, "kafka-addr", def.KafkaAddr, "Kafka listener address")
	fs.StringVar(&cfg.AdvertisedAddr, "advertised-addr", "", "host:port told to clients (default: the listener address)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", def.HTTPAddr, "HTTP address for the web console (/), /metrics, /healthz, /readyz and the Arrow and Parquet endpoints /v1/topics/{topic}/arrow|parquet (empty disables)")
	fs.StringVar(&cfg.AdvertisedHTTPAddr, "advertised-http-addr", "", "host:port other nodes reach this node's HTTP server at (default: the HTTP listener address)")
	fs.DurationVar(&cfg.LagInterval, "lag-interval", 10*time.Second, "how often to sample consumer group lag (strata_consumer_group_lag)")
	fs.StringVar(&cfg.FlightAddr, "flight-addr", node.DefaultFlightAddr, "Arrow Flight address (empty disables)")
	nodeID := fs.Int("node-id", 0, "this node's id")
	fs.StringVar(&cfg.Cluster, "cluster", def.Cluster, "cluster name: the etcd key prefix")
	var endpoints listFlag
	fs.Var(&endpoints, "etcd-endpoints", "comma-separated etcd URLs (empty: embedded etcd in the data folder)")
	fs.IntVar(&cfg.EtcdMaxTxnOps, "etcd-max-txn-ops", 0, "the etcd server's --max-txn-ops: operations per flush commit transaction (default 128, etcd's default; 4096 with the embedded etcd). Raise both together for many partitions")
	fs.StringVar(&cfg.ObjectStore, "object-store", "", "object store URL: file:///abs/path or s3://bucket/prefix?endpoint=...&region=...&path_style=true (default: file://<data-dir>/objects)")
	fs.BoolVar(&cfg.CreateBucket, "object-store-create-bucket", false, "create the S3 bucket if it does not exist")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", def.FlushInterval, "flush pending data to the object store at least this often")
	flushBytes := byteSize(def.FlushBytes)
	fs.Var(&flushBytes, "flush-bytes", "flush early once this much data is pending (e.g. 8MiB)")
	fs.IntVar(&cfg.FlushesInFlight, "flushes-in-flight", def.FlushesInFlight, "flushes under way at once: the next flush's PUT overlaps the previous one's etcd commit (commits stay in order)")
	maxBuffered := byteSize(def.MaxBufferedBytes)
	fs.Var(&maxBuffered, "max-buffered-bytes", "unflushed data ceiling; producers wait above it")
	hotTier := byteSize(def.HotTierBytes)
	fs.Var(&hotTier, "hot-tier-bytes", "local segment bytes kept per partition before eviction")
	cacheBytes := byteSize(def.CacheBytes)
	fs.Var(&cacheBytes, "cache-bytes", "local disk budget for data read from the object store")
	fs.DurationVar(&cfg.SweepGrace, "sweep-grace", def.SweepGrace, "delete unreferenced objects once they are this old")
	fs.DurationVar(&cfg.ProducerIDExpiration, "producer-id-expiration", def.ProducerIDExpiration, "forget an idempotent producer idle this long (Kafka's producer.id.expiration.ms)")
	fs.DurationVar(&cfg.TransactionMaxTimeout, "transaction-max-timeout", def.TransactionMaxTimeout, "the longest transaction.timeout.ms a producer may ask for (Kafka's transaction.max.timeout.ms)")
	maxReq := byteSize(def.MaxRequestBytes)
	fs.Var(&maxReq, "max-request-bytes", "largest Kafka request frame; larger ones close the connection")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", def.AutoCreateTopics, "create unknown topics on first use")
	defParts := fs.Int("default-partitions", int(def.DefaultPartitions), "partitions of auto-created topics")
	sec := &cfg.Security
	fs.StringVar(&sec.Listeners, "listeners", "", "Kafka listeners, NAME://host:port,... (Kafka's listeners; default PLAINTEXT://<kafka-addr>)")
	fs.StringVar(&sec.AdvertisedListeners, "advertised-listeners", "", "addresses told to clients per listener, NAME://host:port,... (default: the bound ones)")
	fs.StringVar(&sec.ProtocolMap, "listener-security-protocol-map", "", "NAME:PROTOCOL,... for listener names other than PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
	fs.StringVar(&sec.InterNodeListener, "inter-node-listener", "", "the PLAINTEXT listener nodes use among themselves (default: the first; Kafka's inter.broker.listener.name)")
	fs.StringVar(&sec.TLS.CertFile, "tls-cert-file", "", "PEM certificate (chain) of SSL and SASL_SSL listeners; reloaded when it changes")
	fs.StringVar(&sec.TLS.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&sec.TLS.ClientCAFile, "tls-client-ca-file", "", "PEM CAs that client certificates must chain to (mTLS: the principal is the certificate's subject)")
	fs.StringVar(&sec.TLS.ClientAuth, "tls-client-auth", "", "client certificates: none, requested or required (default: required with --tls-client-ca-file, else none)")
	var mechs listFlag
	fs.Var(&mechs, "sasl-enabled-mechanisms", "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (default: both SCRAMs, plus PLAIN and OAUTHBEARER when configured)")
	fs.StringVar(&sec.PlainUsersFile, "sasl-plain-users-file", "", "file of user:password lines for SASL PLAIN (read again when it changes)")
	fs.StringVar(&sec.OAuthJWKS, "sasl-oauthbearer-jwks", "", "JWKS file or http(s) URL whose keys sign OAUTHBEARER tokens")
	fs.StringVar(&sec.OAuthIssuer, "sasl-oauthbearer-issuer", "", "the iss OAUTHBEARER tokens must carry (empty: any)")
	fs.StringVar(&sec.OAuthAudience, "sasl-oauthbearer-audience", "", "an aud OAUTHBEARER tokens must carry (empty: any)")
	fs.StringVar(&sec.OAuthSubjectClaim, "sasl-oauthbearer-sub-claim", "sub", "the token claim that names the user")
	fs.StringVar(&sec.Authorizer, "authorizer", "none", "none (everything allowed) or acl (ACLs decide, managed with strata acl or Kafka's CreateAcls)")
	fs.StringVar(&sec.SuperUsers, "super-users", "", "principals allowed everything, separated by ; (User:admin;User:ANONYMOUS)")
	fs.BoolVar(&sec.HTTPTLS, "http-tls", false, "serve the HTTP API, console, metrics and Arrow Flight over TLS with --tls-cert-file")
	fs.StringVar(&sec.CAFile, "tls-ca-file", "", "PEM CAs this node trusts for other nodes' HTTPS servers (default: the system's)")
	fs.StringVar(&sec.EtcdTLS.CAFile, "etcd-ca-file", "", "PEM CAs of https:// etcd endpoints (default: the system's)")
	fs.StringVar(&sec.EtcdTLS.CertFile, "etcd-cert-file", "", "PEM client certificate for etcd")
	fs.StringVar(&sec.EtcdTLS.KeyFile, "etcd-key-file", "", "PEM key of --etcd-cert-file")
	fs.StringVar(&sec.ObjectStoreTLS.CAFile, "object-store-ca-file", "", "PEM CAs of an https S3 endpoint (default: the system's, or AWS_CA_BUNDLE)")
	fs.StringVar(&sec.ObjectStoreTLS.CertFile, "object-store-cert-file", "", "PEM client certificate for the S3 endpoint")
	fs.StringVar(&sec.ObjectStoreTLS.KeyFile, "object-store-key-file", "", "PEM key of --object-store-cert-file")
	fetchInFlight := byteSize(256 << 20)
	fs.Var(&fetchInFlight, "max-fetch-bytes-in-flight", "fetch response bytes a node holds at once, shared fairly among fetches (e.g. 256MiB)")
	fs.IntVar(&sec.MaxConnections, "max-connections", 0, "most client connections open at once (0: no bound; Kafka's max.connections)")
	fs.IntVar(&sec.MaxConnectionsPerIP, "max-connections-per-ip", 0, "most client connections from one IP (0: no bound)")
	fs.DurationVar(&sec.IdleTimeout, "connections-max-idle", 10*time.Minute, "close connections that send no request for this long (Kafka's connections.max.idle.ms)")
	fs.BoolVar(&sec.AllowEveryoneIfNoACLFound, "allow-everyone-if-no-acl-found", false, "allow access to resources no ACL mentions (Kafka's allow.everyone.if.no.acl.found)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cp := *configPath
	if cp == "" {
		cp = os.Getenv("STRATA_CONFIG")
	}
	if err := applyLayers(fs, cp); err != nil {
		return err
	}
	if *nodeID < 0 || *nodeID > 1<<31-1 {
		return fmt.Errorf("--node-id %d out of range", *nodeID)
	}
	if *defParts < 1 || *defParts > 1<<20 {
		return fmt.Errorf("--default-partitions %d out of range (1..1048576)", *defParts)
	}
	if cfg.EtcdMaxTxnOps < 0 || cfg.EtcdMaxTxnOps == 1 || cfg.EtcdMaxTxnOps > 1<<20 {
		return fmt.Errorf("--etcd-max-txn-ops %d out of range (0 for the default, or 2..1048576)", cfg.EtcdMaxTxnOps)
	}
	if cfg.FlushesInFlight < 1 || cfg.FlushesInFlight > 64 {
		return fmt.Errorf("--flushes-in-flight %d out of range (1..64)", cfg.FlushesInFlight)
	}
	if maxReq > 1<<30 {
		return fmt.Errorf("--max-request-bytes %d too large (at most 1GiB)", maxReq)
	}
	cfg.NodeID = int32(*nodeID)
	cfg.EtcdEndpoints = endpoints
	cfg.Security.SASLMechanisms = mechs
	cfg.Security.MaxFetchBytesInFlight = int64(fetchInFlight)
	cfg.FlushBytes = int(flushBytes)
	cfg.MaxBufferedBytes = int64(maxBuffered)
	cfg.HotTierBytes = int64(hotTier)
	cfg.CacheBytes = int64(cacheBytes)
	cfg.MaxRequestBytes = int32(maxReq)
	cfg.DefaultPartitions = int32(*defParts)

	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	n, err := node.Start(startCtx, cfg, logger)
	cancel()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-n.ServeErr():
		if err != nil {
			logger.Error("kafka server stopped", "err", err)
		}
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(closeCtx); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}
