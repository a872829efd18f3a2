package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
)

// Brokers a suite compares.
const (
	BrokerKfake = "kfake"        // franz-go's in-memory kfake: no durability, the upper bound
	BrokerFS    = "strata-fs"    // Strata, filesystem object store
	BrokerMinIO = "strata-minio" // Strata on a MinIO process
)

// Scenario is one produce workload.
type Scenario struct {
	Name        string `json:"name"`
	RecordSize  int    `json:"record_size"`
	Partitions  int    `json:"partitions"`
	Acks        string `json:"acks"`        // "all" or "1"
	Compression string `json:"compression"` // "none" or "zstd"
	// Producers overrides SuiteConfig.Producers: clients producing at once,
	// each with its own connection.
	Producers int `json:"producers,omitempty"`
}

func (sc Scenario) producers(def int) int {
	if sc.Producers > 0 {
		return sc.Producers
	}
	return def
}

// DefaultScenarios varies one dimension at a time from the base (1 KiB
// records, 6 partitions, acks=all, uncompressed): record size 100 B and
// 16 KiB, 64 and 1,000 partitions, acks=1, zstd, and 1,000 producer
// connections instead of 4.
func DefaultScenarios() []Scenario {
	base := Scenario{Name: "1KiB", RecordSize: 1024, Partitions: 6, Acks: "all", Compression: "none"}
	with := func(name string, f func(*Scenario)) Scenario { s := base; s.Name = name; f(&s); return s }
	return []Scenario{
		base,
		with("100B", func(s *Scenario) { s.RecordSize = 100 }),
		with("16KiB", func(s *Scenario) { s.RecordSize = 16 << 10 }),
		with("1KiB-64p", func(s *Scenario) { s.Partitions = 64 }),
		with("1KiB-1000p", func(s *Scenario) { s.Partitions = 1000 }),
		with("1KiB-acks1", func(s *Scenario) { s.Acks = "1" }),
		with("1KiB-zstd", func(s *Scenario) { s.Compression = "zstd" }),
		with("1KiB-1000conn", func(s *Scenario) { s.Producers = 1000 }),
	}
}

// SuiteConfig is one side-by-side run.
type SuiteConfig struct {
	// Brokers to measure, one at a time; default kfake, strata-fs,
	// strata-minio. Ratios are to kfake when it is among them.
	Brokers []string
	// Scenarios; default DefaultScenarios(). The first is the base: its
	// topic is consumed cold and its cost is reported.
	Scenarios []Scenario
	// RunBytes bounds each produce run: records = RunBytes / size (at least
	// 1,000); default 64 MB. Repeat is how many runs of each scenario (each
	// its own topic, each checked by a consume pass); the median by MB/s is
	// reported. Default 3: a shared machine's noise moves single runs by 2×.
	RunBytes int64
	Repeat   int
	// Producers is the number of producer clients; default 4. Linger is
	// theirs; default 5ms.
	Producers int
	Linger    time.Duration
	// PacedSeconds is the length of the paced-latency phase, run at half the
	// base scenario's saturation; default 5s. E2ERate and E2ESeconds shape
	// the end-to-end phase; default 5000 records/s for 6s.
	PacedSeconds float64
	E2ERate      float64
	E2ESeconds   float64
	// FlushesInFlight goes to the Strata nodes; 0 = node default.
	FlushesInFlight int
	// ExportRecords is the size of the topic (100 B records) the Arrow and
	// Parquet export phase reads; default 1,000,000; < 0 skips it.
	ExportRecords int
	// PhaseTimeout bounds every phase; default 3 minutes.
	PhaseTimeout time.Duration
	// SkipLimits skips measuring the machine's limits; NoWarmup skips the
	// untimed warm-up run of the base scenario on each broker.
	SkipLimits bool
	NoWarmup   bool
	Dir        string
	Seed       uint64
	Logger     *slog.Logger `json:"-"`
	Progress   io.Writer    `json:"-"`
	// Runner measures one broker; nil runs it in this process (RunBroker).
	// strata-bench runs each broker in a process of its own, so one
	// broker's heap (kfake keeps every record in memory) and CPU time do not
	// weigh on the next one's numbers.
	Runner BrokerRunner `json:"-"`
}

func (c *SuiteConfig) setDefaults() {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{BrokerKfake, BrokerFS, BrokerMinIO}
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = DefaultScenarios()
	}
	if c.RunBytes <= 0 {
		c.RunBytes = 64e6
	}
	if c.Repeat <= 0 {
		c.Repeat = 3
	}
	if c.Producers <= 0 {
		c.Producers = 4
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.PacedSeconds <= 0 {
		c.PacedSeconds = 5
	}
	if c.E2ERate <= 0 {
		c.E2ERate = 5000
	}
	if c.E2ESeconds <= 0 {
		c.E2ESeconds = 6
	}
	if c.ExportRecords == 0 {
		c.ExportRecords = 1_000_000
	}
	if c.PhaseTimeout <= 0 {
		c.PhaseTimeout = 3 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
}

// ScenarioResult is one produce scenario and the verified read of its topic
// from the broker that took it (the hot tier, for Strata).
type ScenarioResult struct {
	Scenario Scenario `json:"scenario"`
	// Produce and Hot are the runs with the median MB/s.
	Produce ProduceResult   `json:"produce"`
	Hot     ConsumeResult   `json:"hot_consume"`
	Runs    []ProduceResult `json:"runs"`
	// ReadyRuns is, per run, how long the new topic took until every
	// partition answered ListOffsets (before the produce, untimed there).
	ReadyRuns []time.Duration `json:"ready_ns"`
	HotRuns   []ConsumeResult `json:"hot_runs"`
	// CPUSeconds is this process's user+system CPU during the produce runs
	// (clients and broker: they share the process).
	CPUSeconds float64 `json:"cpu_seconds"`
}

// ExportResult is reading a topic as a table over HTTP.
type ExportResult struct {
	Rows              int64   `json:"rows"`
	ArrowRowsPerSec   float64 `json:"arrow_rows_per_sec"`
	ParquetRowsPerSec float64 `json:"parquet_rows_per_sec"`
	ParquetBytes      int64   `json:"parquet_bytes"`
	// ParquetPeakRSSDelta is how far the process's RSS rose above its
	// level before the Parquet export, at most.
	ParquetPeakRSSDelta int64 `json:"parquet_peak_rss_delta_bytes"`
}

// SuiteCost is what the base scenario cost on one broker.
type SuiteCost struct {
	PutsPerGB       float64 `json:"puts_per_gb"`
	ColdGetsPerGB   float64 `json:"cold_gets_per_gb"`
	EtcdTxnPerSec   float64 `json:"etcd_txn_per_sec"`
	EtcdBytesPerGB  float64 `json:"etcd_bytes_per_gb"`
	CPUSecondsPerGB float64 `json:"cpu_seconds_per_gb"`
	// PeakRSS is the process's highest RSS while this broker ran (clients
	// and broker share the process).
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// BrokerResult is every measure of one broker.
type BrokerResult struct {
	Broker    string           `json:"broker"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// Paced is acks=all latency at PacedRate (half the base scenario's
	// saturation on this broker).
	PacedRate float64       `json:"paced_rate"`
	Paced     ProduceResult `json:"paced"`
	E2E       E2EResult     `json:"end_to_end"`
	// Cold is the base topic read by a second node with an empty disk and
	// cache (Strata only).
	Cold   *ConsumeResult `json:"cold_consume,omitempty"`
	Export *ExportResult  `json:"export,omitempty"`
	Cost   SuiteCost      `json:"cost"`
}

// SuiteResult is a whole side-by-side run.
type SuiteResult struct {
	Env     Environment     `json:"environment"`
	Config  SuiteSetup      `json:"config"`
	Limits  *Limits         `json:"machine_limits,omitempty"`
	Brokers []*BrokerResult `json:"brokers"`
	Targets []Target        `json:"targets"`
}

// SuiteSetup is the configuration a suite ran with.
type SuiteSetup struct {
	Scenarios       []Scenario    `json:"scenarios"`
	RunBytes        int64         `json:"run_bytes"`
	Repeat          int           `json:"repeat"`
	Producers       int           `json:"producers"`
	Linger          time.Duration `json:"linger_ns"`
	FlushInterval   time.Duration `json:"flush_interval_ns"`
	FlushBytes      int           `json:"flush_bytes"`
	FlushesInFlight int           `json:"flushes_in_flight"`
}

// RunSuite measures the machine's limits, then each broker in turn on the
// same workloads. Every produce is checked record by record by a consume
// pass (and the end-to-end phase by its consumer); a check that fails ends
// the run with an error wrapping ErrVerify.
func RunSuite(ctx context.Context, cfg SuiteConfig) (*SuiteResult, error) {
	cfg.setDefaults()
	def := node.DefaultConfig()
	res := &SuiteResult{Env: environment(), Config: SuiteSetup{
		Scenarios: cfg.Scenarios, RunBytes: cfg.RunBytes, Repeat: cfg.Repeat, Producers: cfg.Producers, Linger: cfg.Linger,
		FlushInterval: def.FlushInterval, FlushBytes: def.FlushBytes, FlushesInFlight: cmp.Or(max(cfg.FlushesInFlight, 0), def.FlushesInFlight),
	}}
	progress := progressTo(cfg.Progress)
	for _, b := range cfg.Brokers {
		if err := checkBroker(b); err != nil {
			return res, err
		}
	}
	dir, cleanup, err := benchDir(cfg.Dir)
	if err != nil {
		return res, err
	}
	defer cleanup()
	if !cfg.SkipLimits {
		progress("measuring this machine's limits")
		l, err := MeasureLimits(ctx, dir)
		if err != nil {
			return res, err
		}
		res.Limits = &l
		progress("limits: fdatasync write %.0f MB/s, loopback TCP %.0f MB/s, zstd one core %.0f MB/s", l.FsyncWriteMBps, l.LoopbackMBps, l.ZstdMBps)
	}
	for i, b := range cfg.Brokers {
		bdir := filepath.Join(dir, fmt.Sprintf("%d-%s", i, b))
		if err := os.MkdirAll(bdir, 0o755); err != nil {
			return res, err
		}
		run := cfg.Runner
		if run == nil {
			run = RunBroker
		}
		br, err := run(ctx, cfg, b, bdir)
		if br != nil {
			res.Brokers = append(res.Brokers, br)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", b, err)
		}
		debug.FreeOSMemory()
	}
	res.Targets = res.targets()
	return res, nil
}

// BrokerRunner measures one broker with cfg (defaults set) in dir.
type BrokerRunner func(ctx context.Context, cfg SuiteConfig, broker, dir string) (*BrokerResult, error)

// RunBroker measures one broker in this process: what RunSuite does for
// each broker. dir must exist.
func RunBroker(ctx context.Context, cfg SuiteConfig, broker, dir string) (*BrokerResult, error) {
	cfg.setDefaults()
	if err := checkBroker(broker); err != nil {
		return nil, err
	}
	return runBroker(ctx, cfg, broker, dir, progressTo(cfg.Progress))
}

func checkBroker(b string) error {
	switch b {
	case BrokerKfake, BrokerFS, BrokerMinIO:
		return nil
	}
	return fmt.Errorf("bench: unknown broker %q (want %s, %s or %s)", b, BrokerKfake, BrokerFS, BrokerMinIO)
}

// brokerUnderTest is one broker's Kafka (and, for Strata, HTTP) address.
type brokerUnderTest struct {
	kafka, http string
	// metrics scrapes the node's /metrics; nil for kfake.
	metrics func(ctx context.Context) (*Metrics, error)
	// restartCold closes the node and starts another with an empty disk
	// (Strata only).
	restartCold func(ctx context.Context) error
	close       func()
}

func startBroker(ctx context.Context, cfg SuiteConfig, b, dir string) (*brokerUnderTest, error) {
	if b == BrokerKfake {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("bench: kfake: %w", err)
		}
		return &brokerUnderTest{kafka: c.ListenAddrs()[0], close: c.Close}, nil
	}
	store := StoreFS
	if b == BrokerMinIO {
		store = StoreMinIO
	}
	cl, err := StartCluster(ctx, ClusterConfig{Dir: dir, Store: store, FlushesInFlight: cfg.FlushesInFlight, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	n, err := cl.StartNode(ctx, 0)
	if err != nil {
		cl.Close()
		return nil, err
	}
	bt := &brokerUnderTest{}
	httpc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	set := func(n *node.Node) {
		mu.Lock()
		defer mu.Unlock()
		bt.kafka, bt.http = n.KafkaAddr(), n.HTTPAddr()
	}
	set(n)
	bt.metrics = func(ctx context.Context) (*Metrics, error) { return Scrape(ctx, httpc, bt.http) }
	bt.restartCold = func(ctx context.Context) error {
		if err := closeNode(n); err != nil {
			return err
		}
		n1, err := cl.StartNode(ctx, 1)
		if err != nil {
			n = nil
			return err
		}
		n = n1
		set(n)
		return nil
	}
	bt.close = func() {
		if n != nil {
			closeNode(n)
		}
		cl.Close()
	}
	return bt, nil
}

func runBroker(ctx context.Context, cfg SuiteConfig, b, dir string, progress func(string, ...any)) (*BrokerResult, error) {
	bt, err := startBroker(ctx, cfg, b, dir)
	if err != nil {
		return nil, err
	}
	defer bt.close()
	res := &BrokerResult{Broker: b}
	rss := startRSSSampler()
	defer rss.stop()

	var baseTopic string
	var baseLedger *Ledger
	if len(cfg.Scenarios) > 0 && !cfg.NoWarmup {
		// An untimed run of the base scenario, twice the size of a
		// measured one, first: the first runs on a fresh broker measured
		// 2-4x below the rest (heap growth, the page cache and etcd's WAL
		// warming up), for kfake and Strata alike.
		sc := cfg.Scenarios[0]
		records := max(int(2*cfg.RunBytes/int64(sc.RecordSize)), 1000)
		if err := CreateTopic(ctx, bt.kafka, "bench-warmup", int32(sc.Partitions)); err != nil {
			return res, err
		}
		l, err := NewLedger(records, sc.RecordSize, cfg.Seed+999)
		if err != nil {
			return res, err
		}
		progress("%s warm-up: %d records of %d B (not reported)", b, records, sc.RecordSize)
		if _, err := Produce(ctx, bt.kafka, l, ProduceOptions{Topic: "bench-warmup", Producers: cfg.Producers, TimeLimit: cfg.PhaseTimeout, ClientOpts: producerOpts(sc, cfg.Linger)}); err != nil {
			return res, fmt.Errorf("warm-up produce: %w", err)
		}
		if _, err := Consume(ctx, bt.kafka, l, ConsumeOptions{Topic: "bench-warmup", TimeLimit: cfg.PhaseTimeout}); err != nil {
			return res, fmt.Errorf("warm-up consume: %w", err)
		}
	}
	for i, sc := range cfg.Scenarios {
		records := max(int(cfg.RunBytes/int64(sc.RecordSize)), 1000)
		var before *Metrics
		if bt.metrics != nil && i == 0 {
			var err error
			if before, err = bt.metrics(ctx); err != nil {
				return res, err
			}
		}
		sr := ScenarioResult{Scenario: sc}
		var produced int64
		var elapsed time.Duration
		for r := range cfg.Repeat {
			topic := fmt.Sprintf("bench-%d-%s-%d", i, sc.Name, r)
			if err := CreateTopic(ctx, bt.kafka, topic, int32(sc.Partitions)); err != nil {
				return res, err
			}
			l, err := NewLedger(records, sc.RecordSize, cfg.Seed+uint64(i*100+r))
			if err != nil {
				return res, err
			}
			warm, err := warmPartitions(ctx, bt.kafka, topic, sc.Partitions, cfg.PhaseTimeout)
			if err != nil {
				return res, err
			}
			sr.ReadyRuns = append(sr.ReadyRuns, warm)
			progress("%s %s (%d/%d): producing %d records of %d B to %d partitions from %d clients (acks=%s, %s)", b, sc.Name, r+1, cfg.Repeat, records, sc.RecordSize, sc.Partitions, sc.producers(cfg.Producers), sc.Acks, sc.Compression)
			cpu0 := cpuSeconds()
			pr, err := Produce(ctx, bt.kafka, l, ProduceOptions{Topic: topic, Producers: sc.producers(cfg.Producers), TimeLimit: cfg.PhaseTimeout, ClientOpts: producerOpts(sc, cfg.Linger)})
			sr.CPUSeconds += cpuSeconds() - cpu0
			if err != nil {
				return res, fmt.Errorf("%s produce: %w", sc.Name, err)
			}
			if pr.TimedOut {
				return res, fmt.Errorf("%s produce: time limit %v reached", sc.Name, cfg.PhaseTimeout)
			}
			produced += pr.Bytes
			elapsed += pr.Elapsed
			progress("%s %s: %.0f records/s, %.1f MB/s; consuming", b, sc.Name, pr.RecordsPerSec, pr.MBPerSec)
			hot, err := Consume(ctx, bt.kafka, l, ConsumeOptions{Topic: topic, TimeLimit: cfg.PhaseTimeout})
			if err != nil {
				return res, fmt.Errorf("%s consume: %w", sc.Name, err)
			}
			sr.Runs = append(sr.Runs, pr)
			sr.HotRuns = append(sr.HotRuns, hot)
			if i == 0 && r == 0 {
				baseTopic, baseLedger = topic, l
			}
		}
		sr.Produce = medianBy(sr.Runs, func(p ProduceResult) float64 { return p.MBPerSec })
		sr.Hot = medianBy(sr.HotRuns, func(c ConsumeResult) float64 { return c.MBPerSec })
		if i == 0 {
			gb := float64(produced) / 1e9
			res.Cost.CPUSecondsPerGB = sr.CPUSeconds / gb
			if before != nil {
				after, err := bt.metrics(ctx)
				if err != nil {
					return res, err
				}
				d := func(name string, match ...string) float64 {
					return after.Sum(name, match...) - before.Sum(name, match...)
				}
				// Over the base scenario's runs, consume passes included
				// (they write nothing).
				res.Cost.PutsPerGB = d("strata_objstore_requests_total", "op", "put", "result", "ok") / gb
				res.Cost.EtcdTxnPerSec = d("strata_etcd_txn_total") / elapsed.Seconds()
				res.Cost.EtcdBytesPerGB = d("strata_etcd_written_bytes_total") / gb
			}
		}
		res.Scenarios = append(res.Scenarios, sr)
	}

	// Paced acks=all latency at half the base scenario's saturation.
	base := res.Scenarios[0]
	res.PacedRate = max(base.Produce.RecordsPerSec/2, 100)
	pacedN := max(int(res.PacedRate*cfg.PacedSeconds), 500)
	pl, err := NewLedger(pacedN, base.Scenario.RecordSize, cfg.Seed+100)
	if err != nil {
		return res, err
	}
	if err := CreateTopic(ctx, bt.kafka, "bench-paced", int32(base.Scenario.Partitions)); err != nil {
		return res, err
	}
	progress("%s paced: %d records at %.0f records/s", b, pacedN, res.PacedRate)
	if res.Paced, err = Produce(ctx, bt.kafka, pl, ProduceOptions{Topic: "bench-paced", Producers: cfg.Producers, Rate: res.PacedRate,
		TimeLimit: cfg.PhaseTimeout, LatencyWarmup: time.Second, ClientOpts: producerOpts(base.Scenario, cfg.Linger)}); err != nil {
		return res, fmt.Errorf("paced produce: %w", err)
	}
	if _, err := Consume(ctx, bt.kafka, pl, ConsumeOptions{Topic: "bench-paced", TimeLimit: cfg.PhaseTimeout}); err != nil {
		return res, fmt.Errorf("paced consume: %w", err)
	}

	// End-to-end latency at a fixed rate.
	if err := CreateTopic(ctx, bt.kafka, "bench-e2e", int32(base.Scenario.Partitions)); err != nil {
		return res, err
	}
	e2eN := int(cfg.E2ERate * cfg.E2ESeconds)
	progress("%s end-to-end: %d records at %.0f records/s", b, e2eN, cfg.E2ERate)
	var e2eBefore *Metrics
	if bt.metrics != nil {
		if e2eBefore, err = bt.metrics(ctx); err != nil {
			return res, err
		}
	}
	if res.E2E, err = EndToEnd(ctx, bt.kafka, "bench-e2e", 100, e2eN, cfg.E2ERate, time.Second, cfg.PhaseTimeout); err != nil {
		return res, err
	}
	if bt.metrics != nil {
		after, err := bt.metrics(ctx)
		if err != nil {
			return res, err
		}
		sec := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
		res.E2E.FlushP50 = sec(HistQuantile(e2eBefore, after, "strata_flush_duration_seconds", 0.5))
		res.E2E.FlushP99 = sec(HistQuantile(e2eBefore, after, "strata_flush_duration_seconds", 0.99))
		res.E2E.PutP99 = sec(HistQuantile(e2eBefore, after, "strata_objstore_request_duration_seconds", 0.99, "op", "put"))
	}

	if bt.http != "" && cfg.ExportRecords > 0 {
		progress("%s export: producing %d records of 100 B", b, cfg.ExportRecords)
		ex, err := measureExport(ctx, bt, cfg, rss)
		if err != nil {
			return res, fmt.Errorf("export: %w", err)
		}
		res.Export = ex
	}
	if bt.restartCold != nil {
		progress("%s cold consume of %s from a node with an empty disk", b, baseTopic)
		if err := bt.restartCold(ctx); err != nil {
			return res, err
		}
		before, err := bt.metrics(ctx)
		if err != nil {
			return res, err
		}
		cold, err := Consume(ctx, bt.kafka, baseLedger, ConsumeOptions{Topic: baseTopic, TimeLimit: cfg.PhaseTimeout})
		if err != nil {
			return res, fmt.Errorf("cold consume: %w", err)
		}
		res.Cold = &cold
		after, err := bt.metrics(ctx)
		if err != nil {
			return res, err
		}
		gets := after.Sum("strata_objstore_requests_total", "op", "get") + after.Sum("strata_objstore_requests_total", "op", "get_range") -
			before.Sum("strata_objstore_requests_total", "op", "get") - before.Sum("strata_objstore_requests_total", "op", "get_range")
		res.Cost.ColdGetsPerGB = perGB(gets, float64(cold.Bytes)/1e9)
	}
	res.Cost.PeakRSS = rss.peak()
	return res, nil
}

func producerOpts(sc Scenario, linger time.Duration) []kgo.Opt {
	opts := []kgo.Opt{kgo.ProducerLinger(linger)}
	if sc.Acks == "1" {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	if sc.Compression == "zstd" {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	} else {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	return opts
}

// measureExport produces cfg.ExportRecords records of 100 B and reads the
// topic back as Arrow IPC and as Parquet over HTTP, counting rows.
func measureExport(ctx context.Context, bt *brokerUnderTest, cfg SuiteConfig, rss *rssSampler) (*ExportResult, error) {
	const topic = "bench-export"
	if err := CreateTopic(ctx, bt.kafka, topic, 6); err != nil {
		return nil, err
	}
	l, err := NewLedger(cfg.ExportRecords, 100, cfg.Seed+200)
	if err != nil {
		return nil, err
	}
	if _, err := Produce(ctx, bt.kafka, l, ProduceOptions{Topic: topic, Producers: cfg.Producers, TimeLimit: cfg.PhaseTimeout,
		ClientOpts: []kgo.Opt{kgo.ProducerLinger(cfg.Linger)}}); err != nil {
		return nil, err
	}
	want := l.Acked()
	res := &ExportResult{Rows: want}
	httpc := &http.Client{Timeout: cfg.PhaseTimeout}

	start := time.Now()
	resp, err := httpc.Get("http://" + bt.http + "/v1/topics/" + topic + "/arrow")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("arrow: HTTP %s", resp.Status)
	}
	rd, err := ipc.NewReader(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	var rows int64
	for rd.Next() {
		rows += rd.RecordBatch().NumRows()
	}
	rerr := rd.Err()
	rd.Release()
	resp.Body.Close()
	if rerr != nil {
		return nil, fmt.Errorf("arrow: %w", rerr)
	}
	if rows != want {
		return nil, fmt.Errorf("%w: arrow export returned %d rows, want %d", ErrVerify, rows, want)
	}
	res.ArrowRowsPerSec = float64(rows) / time.Since(start).Seconds()

	path := filepath.Join(cfg.Dir, "export.parquet")
	if cfg.Dir == "" {
		f, err := os.CreateTemp("", "strata-bench-*.parquet")
		if err != nil {
			return nil, err
		}
		path = f.Name()
		f.Close()
	}
	defer os.Remove(path)
	debug.FreeOSMemory()
	base := currentRSS()
	rss.resetLocal()
	start = time.Now()
	resp, err = httpc.Get("http://" + bt.http + "/v1/topics/" + topic + "/parquet")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("parquet: HTTP %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	n, err := io.Copy(f, resp.Body)
	resp.Body.Close()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	el := time.Since(start)
	res.ParquetPeakRSSDelta = max(rss.localPeak()-base, 0)
	res.ParquetBytes = n
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	prows := pf.NumRows()
	pf.Close()
	if prows != want {
		return nil, fmt.Errorf("%w: parquet export has %d rows, want %d", ErrVerify, prows, want)
	}
	res.ParquetRowsPerSec = float64(prows) / el.Seconds()
	return res, nil
}

// cpuSeconds is this process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// currentRSS is this process's resident set size (Linux), 0 elsewhere.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// rssSampler samples the RSS every 20ms and keeps the highest: overall and
// since the last resetLocal.
type rssSampler struct {
	max, local atomic.Int64
	done       chan struct{}
	wg         sync.WaitGroup
}

func startRSSSampler() *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-t.C:
			case <-s.done:
				return
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	r := currentRSS()
	for {
		m := s.max.Load()
		if r <= m || s.max.CompareAndSwap(m, r) {
			break
		}
	}
	for {
		m := s.local.Load()
		if r <= m || s.local.CompareAndSwap(m, r) {
			break
		}
	}
}

func (s *rssSampler) peak() int64      { s.sample(); return s.max.Load() }
func (s *rssSampler) localPeak() int64 { s.sample(); return s.local.Load() }
func (s *rssSampler) resetLocal()      { s.local.Store(0) }
func (s *rssSampler) stop()            { close(s.done); s.wg.Wait() }

// medianBy returns the element of xs with the median key (the lower middle
// one for an even count).
func medianBy[T any](xs []T, key func(T) float64) T {
	s := slices.Clone(xs)
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return s[(len(s)-1)/2]
}

// warmPartitions asks the broker for every partition's end offset until
// each answers without error, and returns how long that took. A Strata node
// opens a partition (takes its leadership in etcd, loads its state) on its
// first use; a broker that elects leaders at topic creation answers at once.
// The produce that follows then measures the steady state, and this time is
// reported on its own.
func warmPartitions(ctx context.Context, addr, topic string, partitions int, limit time.Duration) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		offs, err := adm.ListEndOffsets(wctx, topic)
		ok := 0
		if err == nil {
			offs.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					ok++
				}
			})
		}
		if ok == partitions {
			return time.Since(start), nil
		}
		if wctx.Err() != nil {
			return time.Since(start), fmt.Errorf("bench: %s: %d of %d partitions ready after %v (%v)", topic, ok, partitions, limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
