package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strata-io/strata/bench"
)

// ClusterConfig says what to run.
type ClusterConfig struct {
	Dir           string // everything lives here: etcd, MinIO, node folders, logs
	StrataBin     string
	EtcdBin       string
	MinIOBin      string
	Nodes         int
	FlushInterval time.Duration
	LogLevel      string // the nodes' --log-level
	Seed          uint64 // of the PUT-fault proxy's coin flips
}

// Cluster is etcd, MinIO and Strata nodes as separate processes on
// 127.0.0.1, each node reaching etcd and MinIO through fault proxies of
// its own: node → etcd proxy → etcd, node → S3 proxy → PUT-fault proxy →
// MinIO. Clients reach the nodes directly.
type Cluster struct {
	cfg      ClusterConfig
	Etcd     *Etcd
	MinIO    *bench.MinIO
	minioPID int
	Puts     *PutFaults
	Nodes    []*Node
	EtcdPx   []*Proxy // per node
	S3Px     []*Proxy // per node
}

// Bucket is the S3 bucket the nodes share.
const Bucket = "strata-chaos"

// StartCluster starts everything and waits until every node is ready.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	c := &Cluster{cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Etcd, err = StartEtcd(ctx, cfg.EtcdBin, filepath.Join(cfg.Dir, "etcd")); err != nil {
		return nil, err
	}
	if c.MinIO, err = bench.StartMinIO(ctx, cfg.MinIOBin, filepath.Join(cfg.Dir, "minio", "data")); err != nil {
		return nil, err
	}
	if c.minioPID = childPID("minio"); c.minioPID == 0 {
		return nil, errors.New("chaos: cannot find the MinIO process's pid")
	}
	if c.Puts, err = NewPutFaults(c.MinIO.Endpoint, cfg.Seed); err != nil {
		return nil, err
	}
	env := []string{"AWS_ACCESS_KEY_ID=" + bench.MinIOAccessKey, "AWS_SECRET_ACCESS_KEY=" + bench.MinIOSecretKey}
	for _, kv := range os.Environ() {
		// No STRATA_* variable may change the nodes (the CLI reads them as
		// flag defaults), and the credentials are ours.
		if !strings.HasPrefix(kv, "STRATA_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for id := range cfg.Nodes {
		ep, err := NewProxy(fmt.Sprintf("node%d->etcd", id), c.Etcd.ClientAddr())
		if err != nil {
			return nil, err
		}
		c.EtcdPx = append(c.EtcdPx, ep)
		sp, err := NewProxy(fmt.Sprintf("node%d->minio", id), c.Puts.Addr())
		if err != nil {
			return nil, err
		}
		c.S3Px = append(c.S3Px, sp)
		kafka, err := freeAddr()
		if err != nil {
			return nil, err
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		store := "s3://" + Bucket + "/data?" + url.Values{
			"endpoint":   {"http://" + sp.Addr()},
			"region":     {bench.MinIORegion},
			"path_style": {"true"},
		}.Encode()
		base := filepath.Join(cfg.Dir, "node-"+strconv.Itoa(id))
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		logf, err := os.OpenFile(filepath.Join(base, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		n := &Node{
			proc:      proc{name: "node " + strconv.Itoa(id), log: logf},
			ID:        id,
			KafkaAddr: kafka,
			HTTPAddr:  httpAddr,
			bin:       cfg.StrataBin,
			baseDir:   base,
			env:       env,
			args: []string{
				"--node-id", strconv.Itoa(id),
				"--kafka-addr", kafka,
				"--http-addr", httpAddr,
				"--flight-addr", "",
				"--etcd-endpoints", "http://" + ep.Addr(),
				"--object-store", store,
				"--object-store-create-bucket",
				"--flush-interval", cfg.FlushInterval.String(),
				"--auto-create-topics=false",
				"--log-level", cfg.LogLevel,
			},
		}
		n.NewDataDir()
		c.Nodes = append(c.Nodes, n)
	}
	// Start the nodes at once: each waits for /readyz.
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Start(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Seeds are the nodes' Kafka addresses.
func (c *Cluster) Seeds() []string {
	var s []string
	for _, n := range c.Nodes {
		s = append(s, n.KafkaAddr)
	}
	return s
}

// PauseMinIO sends SIGSTOP (pause) or SIGCONT (resume) to MinIO.
func (c *Cluster) PauseMinIO(pause bool) error {
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	if err := syscall.Kill(c.minioPID, sig); err != nil {
		return fmt.Errorf("chaos: signal %v to minio (pid %d): %w", sig, c.minioPID, err)
	}
	return nil
}

// HealAll puts every proxy back to pass-through, turns PUT faults off and
// resumes every paused process. It does not restart dead ones.
func (c *Cluster) HealAll() {
	for _, p := range append(append([]*Proxy(nil), c.EtcdPx...), c.S3Px...) {
		p.SetMode(Pass, 0)
	}
	if c.Puts != nil {
		c.Puts.Set(0, 0)
	}
	if c.minioPID != 0 {
		_ = syscall.Kill(c.minioPID, syscall.SIGCONT)
	}
	for _, n := range c.Nodes {
		if n.Pid() != 0 {
			_ = n.Resume()
		}
	}
}

// Logs lists every log file: nodes, etcd, MinIO.
func (c *Cluster) Logs() []string {
	var l []string
	for _, n := range c.Nodes {
		l = append(l, n.LogPath())
	}
	if c.Etcd != nil {
		l = append(l, c.Etcd.log.Name())
	}
	l = append(l, filepath.Join(c.cfg.Dir, "minio", "minio.log"))
	return l
}

// Close kills every process and stops every proxy.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Close())
	}
	for _, p := range append(append([]*Proxy(nil), c.EtcdPx...), c.S3Px...) {
		p.Close()
	}
	if c.Puts != nil {
		c.Puts.Close()
	}
	if c.MinIO != nil {
		if c.minioPID != 0 {
			_ = syscall.Kill(c.minioPID, syscall.SIGCONT)
		}
		errs = append(errs, c.MinIO.Close())
	}
	if c.Etcd != nil {
		errs = append(errs, c.Etcd.Close())
	}
	return errors.Join(errs...)
}
