package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/metadata"
)

// Store names accepted by ClusterConfig.Store.
const (
	StoreFS    = "fs"
	StoreMinIO = "minio"
)

// clusterName is the etcd key prefix of the bench's nodes.
const clusterName = "strata"

// ClusterConfig is what the nodes of a bench cluster share.
type ClusterConfig struct {
	// Dir holds etcd's data, the object store (fs) or MinIO's data, and one
	// data dir per node. Required; it should be empty.
	Dir string
	// Store is StoreFS (default) or StoreMinIO.
	Store string
	// MinIOBin is the MinIO server binary; empty = MinIOBinary().
	MinIOBin string
	// FlushInterval and FlushBytes go to every node; zero = node defaults.
	FlushInterval time.Duration
	FlushBytes    int
	// FlushesInFlight goes to every node; zero = node default.
	FlushesInFlight int
	// Logger receives the nodes' and etcd's logs; nil discards.
	Logger *slog.Logger
}

// Cluster is an embedded etcd and an object store that nodes started with
// StartNode share, so a node with an empty disk can serve what another
// produced.
type Cluster struct {
	cfg      ClusterConfig
	etcd     *metadata.Embedded
	minio    *MinIO
	storeURL string
	started  int
}

// StartCluster starts etcd (and MinIO for StoreMinIO). With MinIO it sets
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in this process's environment,
// because nodes take S3 credentials only from there.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("bench: cluster needs a Dir")
	}
	if cfg.Store == "" {
		cfg.Store = StoreFS
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	cfg.Dir = dir
	c := &Cluster{cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	switch cfg.Store {
	case StoreFS:
		c.storeURL = "file://" + filepath.Join(dir, "objects")
	case StoreMinIO:
		bin := cfg.MinIOBin
		if bin == "" {
			if bin, err = MinIOBinary(); err != nil {
				return nil, err
			}
		}
		if c.minio, err = StartMinIO(ctx, bin, filepath.Join(dir, "minio", "data")); err != nil {
			return nil, err
		}
		os.Setenv("AWS_ACCESS_KEY_ID", MinIOAccessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", MinIOSecretKey)
		c.storeURL = c.minio.URL("strata-bench", "")
	default:
		return nil, fmt.Errorf("bench: unknown store %q (want %s or %s)", cfg.Store, StoreFS, StoreMinIO)
	}
	c.etcd, err = metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: filepath.Join(dir, "etcd")}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// StoreURL is the object store every node uses.
func (c *Cluster) StoreURL() string { return c.storeURL }

// EtcdEndpoints are the embedded etcd's client URLs.
func (c *Cluster) EtcdEndpoints() []string { return c.etcd.Endpoints() }

// StartNode starts node id with a fresh, empty data dir on the shared etcd
// and object store. The caller closes it.
func (c *Cluster) StartNode(ctx context.Context, id int32) (*node.Node, error) {
	c.started++
	dataDir := filepath.Join(c.cfg.Dir, fmt.Sprintf("node-%d-%d", id, c.started))
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NodeID = id
	cfg.Cluster = clusterName
	cfg.EtcdEndpoints = c.etcd.Endpoints()
	// The bench's embedded etcd takes this many operations per transaction.
	cfg.EtcdMaxTxnOps = metadata.EmbeddedMaxTxnOps
	cfg.ObjectStore = c.storeURL
	cfg.CreateBucket = true
	if c.cfg.FlushInterval > 0 {
		cfg.FlushInterval = c.cfg.FlushInterval
	}
	if c.cfg.FlushBytes > 0 {
		cfg.FlushBytes = c.cfg.FlushBytes
	}
	if c.cfg.FlushesInFlight > 0 {
		cfg.FlushesInFlight = c.cfg.FlushesInFlight
	}
	logger := c.cfg.Logger
	if logger != nil {
		logger = logger.With("node", id)
	}
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("bench: start node %d: %w", id, err)
	}
	return n, nil
}

// Close stops etcd and MinIO. Nodes must be closed first.
func (c *Cluster) Close() error {
	var errs []error
	if c.etcd != nil {
		errs = append(errs, c.etcd.Close())
		c.etcd = nil
	}
	if c.minio != nil {
		errs = append(errs, c.minio.Close())
		c.minio = nil
	}
	return errors.Join(errs...)
}

// EtcdKeys counts the cluster's keys in etcd.
type EtcdKeys struct {
	// Total is every key under the cluster prefix.
	Total int64 `json:"total"`
	// Index is the segment-index keys (.../index/<base>), one per indexed
	// run of a partition: what grows with retained data.
	Index int64 `json:"index"`
	// IndexValueBytes is the size of the index keys' values.
	IndexValueBytes int64 `json:"index_value_bytes"`
	// DBSize and DBSizeInUse are etcd's database file size and its live
	// part (etcd's Status), when the keys were counted.
	DBSize      int64 `json:"db_size"`
	DBSizeInUse int64 `json:"db_size_in_use"`
}

// CountKeys reads every key under the cluster prefix, a page at a time.
func (c *Cluster) CountKeys(ctx context.Context) (EtcdKeys, error) {
	var k EtcdKeys
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.etcd.Endpoints(),
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		return k, fmt.Errorf("bench: etcd client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, ep := range c.etcd.Endpoints() {
		if st, err := cli.Status(ctx, ep); err == nil {
			k.DBSize, k.DBSizeInUse = st.DbSize, st.DbSizeInUse
			break
		}
	}
	prefix := "/" + clusterName + "/"
	end := clientv3.GetPrefixRangeEnd(prefix)
	key := prefix
	for {
		resp, err := cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(1000),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if err != nil {
			return k, fmt.Errorf("bench: count etcd keys: %w", err)
		}
		for _, kv := range resp.Kvs {
			k.Total++
			if bytes.Contains(kv.Key, []byte("/index/")) && strings.HasPrefix(string(kv.Key), prefix+"partitions/") {
				k.Index++
				k.IndexValueBytes += int64(len(kv.Value))
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return k, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
