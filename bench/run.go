package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/strata-io/strata/cmd/node"
)

// Config is one bench run: the workload and the cluster it runs on.
type Config struct {
	// Store is StoreFS (default) or StoreMinIO.
	Store string
	// Records, RecordSize (bytes), Partitions and Producers shape the
	// workload; defaults 200000, 1024, 6, 4.
	Records    int
	RecordSize int
	Partitions int
	Producers  int
	// PacedRate and PacedRecords shape the paced-latency phase: PacedRecords
	// records produced at PacedRate records/s in total, well below
	// saturation, so the latency is the node's own acks=all path rather than
	// client-side queueing. Defaults 5000/s and min(Records/10, 25000);
	// PacedRecords < 0 skips the phase.
	PacedRate    float64
	PacedRecords int
	// PacedWarmup is left out of the paced phase's latency percentiles: it
	// covers the node opening the new topic's partitions on first use.
	// Default 1s; negative = nothing left out.
	PacedWarmup time.Duration
	// PhaseTimeout bounds each of produce, hot consume and cold consume;
	// default 5 minutes.
	PhaseTimeout time.Duration
	// FlushInterval and FlushBytes go to the nodes; zero = node defaults.
	FlushInterval time.Duration
	FlushBytes    int
	// Dir is where etcd, the object store and the nodes keep their data; it
	// must be empty or not exist. Empty = a temporary dir removed at the
	// end.
	Dir string
	// Topic is the topic produced to; default "bench".
	Topic string
	// Seed varies the record bytes between runs; 0 = time-based.
	Seed uint64
	// Logger receives node logs; nil discards. Progress, when set, gets one
	// line per phase.
	Logger   *slog.Logger
	Progress io.Writer
}

func (c *Config) setDefaults() {
	if c.Store == "" {
		c.Store = StoreFS
	}
	if c.Records <= 0 {
		c.Records = 200_000
	}
	if c.RecordSize <= 0 {
		c.RecordSize = 1024
	}
	if c.Partitions <= 0 {
		c.Partitions = 6
	}
	if c.Producers <= 0 {
		c.Producers = 4
	}
	if c.PacedRate <= 0 {
		c.PacedRate = 5000
	}
	if c.PacedRecords == 0 {
		c.PacedRecords = max(min(c.Records/10, 25_000), 1)
	}
	if c.PacedWarmup == 0 {
		c.PacedWarmup = time.Second
	}
	if c.PhaseTimeout <= 0 {
		c.PhaseTimeout = 5 * time.Minute
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = node.DefaultConfig().FlushInterval
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = node.DefaultConfig().FlushBytes
	}
	if c.Topic == "" {
		c.Topic = "bench"
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
}

// Environment describes the machine and build a result came from.
type Environment struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Setup is the configuration a result was measured with.
type Setup struct {
	Store         string        `json:"store"`
	Records       int           `json:"records"`
	RecordSize    int           `json:"record_size"`
	Partitions    int           `json:"partitions"`
	Producers     int           `json:"producers"`
	PacedRate     float64       `json:"paced_rate"`
	PacedRecords  int           `json:"paced_records"`
	PacedWarmup   time.Duration `json:"paced_warmup_ns"`
	FlushInterval time.Duration `json:"flush_interval_ns"`
	FlushBytes    int           `json:"flush_bytes"`
	PhaseTimeout  time.Duration `json:"phase_timeout_ns"`
}

// HotResult is the hot consume pass with where its bytes came from.
type HotResult struct {
	ConsumeResult
	// LocalReadBytes and ObjectReadBytes are the node's
	// strata_tier_read_bytes_total by source during the pass.
	LocalReadBytes  float64 `json:"local_read_bytes"`
	ObjectReadBytes float64 `json:"object_read_bytes"`
}

// ColdResult is the cold consume pass: a second node with an empty disk
// reading everything from the object store.
type ColdResult struct {
	ConsumeResult
	// ColdGets and ColdGetBytes are strata_cold_gets_total and
	// strata_cold_get_bytes_total on the cold node.
	ColdGets     float64 `json:"cold_gets"`
	ColdGetBytes float64 `json:"cold_get_bytes"`
	// StoreGets is strata_objstore_requests_total{op="get"|"get_range"}: every
	// GET the node sent to the object store.
	StoreGets float64 `json:"store_gets"`
	// GetsPerGB is StoreGets per GB (1e9 bytes) of record values consumed.
	GetsPerGB float64 `json:"gets_per_gb"`
	// AvgGetBytes is ColdGetBytes / ColdGets.
	AvgGetBytes float64 `json:"avg_get_bytes"`
}

// CostResult is what the ingested data cost in object-store requests and
// etcd keys.
type CostResult struct {
	// IngestedBytes is the record values acknowledged (records x size).
	IngestedBytes int64 `json:"ingested_bytes"`
	// Flushes and FlushPutBytes are strata_flush_total{result="ok"} and
	// strata_flush_put_bytes_total on the producing node after the produce.
	Flushes       float64 `json:"flushes"`
	FlushPutBytes float64 `json:"flush_put_bytes"`
	// FlushPutsPerGB is Flushes per GB ingested: one PUT per flush.
	FlushPutsPerGB float64 `json:"flush_puts_per_gb"`
	// StorePuts is every PUT of both nodes up to the end of the cold
	// consume (flushes and the roller's segment objects: the cold node
	// leads the partitions then, so it rolls what node 0 had not),
	// StorePutsPerGB per GB ingested.
	StorePuts      float64 `json:"store_puts"`
	StorePutsPerGB float64 `json:"store_puts_per_gb"`
	// Rolls is strata_rolls_total of both nodes over the same span.
	Rolls float64 `json:"rolls"`
	// KeysAfterProduce and KeysAtEnd count etcd keys right after the
	// produce and at the end of the run (after the roller had its chance).
	KeysAfterProduce EtcdKeys `json:"keys_after_produce"`
	KeysAtEnd        EtcdKeys `json:"keys_at_end"`
	// IndexKeysPerGB is KeysAtEnd.Index per GB retained (all of it is).
	IndexKeysPerGB float64 `json:"index_keys_per_gb"`
	// EtcdWrittenBytes is strata_etcd_written_bytes_total of the producing
	// node after the produce (keys and values it put: index entries,
	// partition state, producer state), EtcdBytesPerGB per GB ingested.
	EtcdWrittenBytes float64 `json:"etcd_written_bytes"`
	EtcdBytesPerGB   float64 `json:"etcd_bytes_per_gb"`
}

// Result is one full bench run.
type Result struct {
	Env     Environment   `json:"environment"`
	Setup   Setup         `json:"setup"`
	Produce ProduceResult `json:"produce"`
	// Paced is the paced-latency phase (zero when skipped): same producers,
	// own topic, on the second node after the cold consume. Its percentiles
	// leave out Setup.PacedWarmup (partitions opening on first use).
	Paced ProduceResult `json:"paced_produce"`
	Hot   HotResult     `json:"hot_consume"`
	Cold  ColdResult    `json:"cold_consume"`
	Cost  CostResult    `json:"cost"`
	// Verified is set when every consume pass saw every acknowledged
	// record exactly once.
	Verified bool `json:"verified"`
}

// Run starts a cluster and runs the scenarios in order: produce to node 0,
// consume from it (hot tier), close it, start node 1 with an empty disk on
// the same etcd and object store and consume everything again (cold), count
// what it cost, and finally measure acks=all latency at a paced rate on
// node 1. The returned error wraps ErrVerify if a pass missed, repeated or
// corrupted a record; the partial result is returned with it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	res := &Result{
		Env: environment(),
		Setup: Setup{
			Store: cfg.Store, Records: cfg.Records, RecordSize: cfg.RecordSize,
			Partitions: cfg.Partitions, Producers: cfg.Producers, PacedRate: cfg.PacedRate, PacedRecords: max(cfg.PacedRecords, 0),
			PacedWarmup:   max(cfg.PacedWarmup, 0),
			FlushInterval: cfg.FlushInterval, FlushBytes: cfg.FlushBytes, PhaseTimeout: cfg.PhaseTimeout,
		},
	}
	progress := progressTo(cfg.Progress)
	dir, cleanup, err := benchDir(cfg.Dir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	ledger, err := NewLedger(cfg.Records, cfg.RecordSize, cfg.Seed)
	if err != nil {
		return res, err
	}

	cluster, err := StartCluster(ctx, ClusterConfig{
		Dir: dir, Store: cfg.Store, FlushInterval: cfg.FlushInterval, FlushBytes: cfg.FlushBytes, Logger: cfg.Logger,
	})
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	httpc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	// Nodes still open when Run returns early are closed here.
	var open []*node.Node
	defer func() {
		for _, n := range open {
			closeNode(n)
		}
	}()

	// a. Produce to node 0.
	n0, err := cluster.StartNode(ctx, 0)
	if err != nil {
		return res, err
	}
	open = append(open, n0)
	if err := CreateTopic(ctx, n0.KafkaAddr(), cfg.Topic, int32(cfg.Partitions)); err != nil {
		return res, err
	}
	progress("store=%s: producing %d records of %d bytes to %d partitions from %d producers (acks=all)",
		cfg.Store, cfg.Records, cfg.RecordSize, cfg.Partitions, cfg.Producers)
	res.Produce, err = Produce(ctx, n0.KafkaAddr(), ledger, ProduceOptions{
		Topic: cfg.Topic, Producers: cfg.Producers, TimeLimit: cfg.PhaseTimeout,
	})
	if err != nil {
		return res, err
	}
	progress("produce: %.0f records/s, %.1f MB/s, p50 %v p99 %v p999 %v",
		res.Produce.RecordsPerSec, res.Produce.MBPerSec, res.Produce.P50, res.Produce.P99, res.Produce.P999)
	m, err := Scrape(ctx, httpc, n0.HTTPAddr())
	if err != nil {
		return res, err
	}
	gb := float64(res.Produce.Bytes) / 1e9
	res.Cost.IngestedBytes = res.Produce.Bytes
	res.Cost.Flushes = m.Sum("strata_flush_total", "result", "ok")
	res.Cost.FlushPutBytes = m.Sum("strata_flush_put_bytes_total")
	res.Cost.FlushPutsPerGB = perGB(res.Cost.Flushes, gb)
	res.Cost.EtcdWrittenBytes = m.Sum("strata_etcd_written_bytes_total")
	res.Cost.EtcdBytesPerGB = perGB(res.Cost.EtcdWrittenBytes, gb)
	if res.Cost.KeysAfterProduce, err = cluster.CountKeys(ctx); err != nil {
		return res, err
	}

	// b. Consume from the same node: the hot tier.
	progress("hot consume from node 0")
	before := m
	res.Hot.ConsumeResult, err = Consume(ctx, n0.KafkaAddr(), ledger, ConsumeOptions{Topic: cfg.Topic, TimeLimit: cfg.PhaseTimeout})
	if err != nil {
		return res, fmt.Errorf("hot consume: %w", err)
	}
	if m, err = Scrape(ctx, httpc, n0.HTTPAddr()); err != nil {
		return res, err
	}
	res.Hot.LocalReadBytes = m.Sum("strata_tier_read_bytes_total", "source", "local") - before.Sum("strata_tier_read_bytes_total", "source", "local")
	res.Hot.ObjectReadBytes = m.Sum("strata_tier_read_bytes_total", "source", "object") - before.Sum("strata_tier_read_bytes_total", "source", "object")
	progress("hot consume: %.0f records/s, %.1f MB/s", res.Hot.RecordsPerSec, res.Hot.MBPerSec)
	res.Cost.StorePuts = m.Sum("strata_objstore_requests_total", "op", "put", "result", "ok")
	res.Cost.Rolls = m.Sum("strata_rolls_total")

	// c. A second node with an empty disk reads it all from the object
	// store. Node 0 goes first so leadership moves without a fight (its
	// lease is revoked on close) and nothing is served from its disk.
	open = open[:0]
	if err := closeNode(n0); err != nil {
		return res, err
	}
	n1, err := cluster.StartNode(ctx, 1)
	if err != nil {
		return res, err
	}
	open = append(open, n1)
	progress("cold consume from node 1 (empty data dir)")
	res.Cold.ConsumeResult, err = Consume(ctx, n1.KafkaAddr(), ledger, ConsumeOptions{Topic: cfg.Topic, TimeLimit: cfg.PhaseTimeout})
	if err != nil {
		return res, fmt.Errorf("cold consume: %w", err)
	}
	if m, err = Scrape(ctx, httpc, n1.HTTPAddr()); err != nil {
		return res, err
	}
	res.Cold.ColdGets = m.Sum("strata_cold_gets_total")
	res.Cold.ColdGetBytes = m.Sum("strata_cold_get_bytes_total")
	res.Cold.StoreGets = m.Sum("strata_objstore_requests_total", "op", "get") + m.Sum("strata_objstore_requests_total", "op", "get_range")
	res.Cold.GetsPerGB = perGB(res.Cold.StoreGets, float64(res.Cold.Bytes)/1e9)
	res.Cost.StorePuts += m.Sum("strata_objstore_requests_total", "op", "put", "result", "ok")
	res.Cost.StorePutsPerGB = perGB(res.Cost.StorePuts, gb)
	res.Cost.Rolls += m.Sum("strata_rolls_total")
	if res.Cold.ColdGets > 0 {
		res.Cold.AvgGetBytes = res.Cold.ColdGetBytes / res.Cold.ColdGets
	}
	progress("cold consume: %.0f records/s, %.1f MB/s, %.0f GETs", res.Cold.RecordsPerSec, res.Cold.MBPerSec, res.Cold.StoreGets)

	// d. What the retained data costs in etcd, before the paced phase adds
	// its own topic.
	if res.Cost.KeysAtEnd, err = cluster.CountKeys(ctx); err != nil {
		return res, err
	}
	res.Cost.IndexKeysPerGB = perGB(float64(res.Cost.KeysAtEnd.Index), gb)

	// e. acks=all latency below saturation, checked like the rest.
	if cfg.PacedRecords > 0 {
		paced, err := NewLedger(cfg.PacedRecords, cfg.RecordSize, cfg.Seed+1)
		if err != nil {
			return res, err
		}
		topic := cfg.Topic + "-paced"
		if err := CreateTopic(ctx, n1.KafkaAddr(), topic, int32(cfg.Partitions)); err != nil {
			return res, err
		}
		progress("paced produce: %d records at %.0f records/s", cfg.PacedRecords, cfg.PacedRate)
		res.Paced, err = Produce(ctx, n1.KafkaAddr(), paced, ProduceOptions{
			Topic: topic, Producers: cfg.Producers, Rate: cfg.PacedRate, TimeLimit: cfg.PhaseTimeout,
			LatencyWarmup: cfg.PacedWarmup,
		})
		if err != nil {
			return res, fmt.Errorf("paced produce: %w", err)
		}
		if _, err := Consume(ctx, n1.KafkaAddr(), paced, ConsumeOptions{Topic: topic, TimeLimit: cfg.PhaseTimeout}); err != nil {
			return res, fmt.Errorf("paced consume: %w", err)
		}
		progress("paced produce: p50 %v p99 %v p999 %v", res.Paced.P50, res.Paced.P99, res.Paced.P999)
	}
	open = open[:0]
	if err := closeNode(n1); err != nil {
		return res, err
	}
	res.Verified = true
	return res, nil
}

// progressTo returns a printf for progress lines on w (nothing when w is
// nil).
func progressTo(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, "strata-bench: "+format+"\n", args...)
		}
	}
}

// benchDir returns dir, which must be empty or not exist, or a new
// temporary dir that cleanup removes.
func benchDir(dir string) (_ string, cleanup func(), _ error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "strata-bench-")
		if err != nil {
			return "", nil, fmt.Errorf("bench: %w", err)
		}
		return tmp, func() { os.RemoveAll(tmp) }, nil
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return "", nil, fmt.Errorf("bench: dir %s is not empty", dir)
	}
	return dir, func() {}, nil
}

func perGB(n, gb float64) float64 {
	if gb <= 0 {
		return 0
	}
	return n / gb
}

func closeNode(n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return n.Close(ctx)
}

func environment() Environment {
	return Environment{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

// cpuModel reads the first "model name" of /proc/cpuinfo; "" elsewhere.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// IsVerifyError reports whether err is an exactly-once check failure (as
// opposed to a set-up or infrastructure error).
func IsVerifyError(err error) bool { return errors.Is(err, ErrVerify) }
