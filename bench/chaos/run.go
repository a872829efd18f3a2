package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-io/strata/bench"
)

// Config is one checker run.
type Config struct {
	Seed     uint64
	Duration time.Duration // of the load, faults included

	// Dir holds everything (etcd, MinIO, node folders and logs); empty: a
	// temp dir, removed after a passing run unless Keep.
	Dir  string
	Keep bool

	StrataBin string // empty: go build ./cmd/strata into Dir
	EtcdBin   string // empty: EtcdBinary()
	MinIOBin  string // empty: bench.MinIOBinary()

	Nodes         int           // default 3
	LeaseTTL      time.Duration // the nodes' lease TTL (metadata's default, 10s)
	Slack         time.Duration // recovery limit = LeaseTTL + Slack; default 10s
	FlushInterval time.Duration // default 10ms
	NodeLogLevel  string        // default info

	Partitions    int32   // acks=all topic at the start; default 6
	MaxPartitions int32   // AddPartitions ceiling; default 12
	PartsOne      int32   // acks=1 topic; default 3
	Producers     int     // acks=all clients; default 2
	RateAll       float64 // records/s per acks=all client and partition; default 25
	RateOne       float64 // records/s of the acks=1 client per partition; default 20
	Readers       int     // direct consumers; default 2
	GroupSize     int     // group members; default 2
	MaxRecords    int64   // per producer client; default 1,000,000
	// TxnProducers is the transactional workload's producers (each its
	// own transactional id) on a topic of TxnPartitions; default 2 and 4.
	// Negative: no transactional workload.
	TxnProducers  int
	TxnPartitions int32
	// CompactPartitions is the compacted workload's topic (cleanup.policy
	// compact, tiny segments); default 2, negative: none.
	CompactPartitions int32
	// ShareConsumers is the share-group workload's consumers, all on a
	// topic of SharePartitions; default 4 and 1, negative: none.
	ShareConsumers  int
	SharePartitions int32

	// SegmentMs and SegmentBytes set the topics' segment.ms and
	// segment.bytes, so the roller (and so cold reads of rolled segments)
	// runs during short runs; 0 leaves Strata's defaults (10 min, 64 MiB).
	SegmentMs    time.Duration
	SegmentBytes int

	Kinds []Kind // fault kinds to draw from; empty: all

	// Out gets the progress and one line per fault applied and healed.
	Out io.Writer
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.Nodes <= 0 {
		c.Nodes = 3
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.Slack <= 0 {
		c.Slack = 10 * time.Second
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 10 * time.Millisecond
	}
	if c.NodeLogLevel == "" {
		c.NodeLogLevel = "info"
	}
	if c.Partitions <= 0 {
		c.Partitions = 6
	}
	if c.MaxPartitions < c.Partitions {
		c.MaxPartitions = 2 * c.Partitions
	}
	if c.PartsOne <= 0 {
		c.PartsOne = 3
	}
	if c.Producers <= 0 {
		c.Producers = 2
	}
	if c.RateAll <= 0 {
		c.RateAll = 25
	}
	if c.RateOne <= 0 {
		c.RateOne = 20
	}
	if c.Readers <= 0 {
		c.Readers = 2
	}
	if c.GroupSize <= 0 {
		c.GroupSize = 2
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = 1_000_000
	}
	if c.TxnProducers == 0 {
		c.TxnProducers = 2
	}
	if c.TxnPartitions <= 0 {
		c.TxnPartitions = 4
	}
	if c.CompactPartitions == 0 {
		c.CompactPartitions = 2
	}
	if c.ShareConsumers == 0 {
		c.ShareConsumers = 4
	}
	if c.SharePartitions <= 0 {
		c.SharePartitions = 1
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

// planTail is the quiet end of the load: no fault is applied in it.
func planTail(cfg Config) time.Duration { return min(15*time.Second, cfg.Duration/4) }

// PlanFor is the fault schedule Run applies for cfg (seed, duration, kinds),
// times relative to the start of the load.
func PlanFor(cfg Config) []Fault {
	cfg.defaults()
	return Plan(PlanConfig{
		Seed: cfg.Seed, Length: cfg.Duration, Warmup: min(3*time.Second, cfg.Duration/10), Tail: planTail(cfg),
		LeaseTTL: cfg.LeaseTTL, Nodes: cfg.Nodes, Kinds: cfg.Kinds,
	})
}

// HarnessError is a failure of the checker or its environment (a binary
// missing, a process that would not start, a port taken): it says nothing
// about Strata.
type HarnessError struct{ Err error }

func (e *HarnessError) Error() string { return "harness error: " + e.Err.Error() }
func (e *HarnessError) Unwrap() error { return e.Err }

func harness(err error) error {
	if err == nil {
		return nil
	}
	var h *HarnessError
	if errors.As(err, &h) {
		return err
	}
	return &HarnessError{Err: err}
}

// BuildStrata builds ./cmd/strata of the module in the current directory
// into dir/strata.
func BuildStrata(ctx context.Context, dir string, out io.Writer) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if _, err := os.Stat(filepath.Join(root, "cmd", "strata")); err != nil {
		return "", fmt.Errorf("no cmd/strata in the module at %s (run from the repository, or pass --strata-bin): %w", root, err)
	}
	bin := filepath.Join(dir, "strata")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/strata")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/strata: %w", err)
	}
	return bin, nil
}

// sourceVersion describes the checkout at root: its commit, and whether
// the working tree differs from it ("" when git cannot tell).
func sourceVersion(ctx context.Context, root string) string {
	rev, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := "commit " + strings.TrimSpace(string(rev))
	if exec.CommandContext(ctx, "git", "-C", root, "diff", "--quiet", "HEAD", "--").Run() != nil {
		v += " plus uncommitted changes"
	}
	return v
}

// Run starts the cluster, runs the load and the seed's fault schedule,
// heals everything, lets the cluster settle and checks what the clients
// saw. A non-nil error is a *HarnessError; the report (possibly partial)
// says whether Strata violated anything.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg.defaults()
	t0 := time.Now()
	rec := NewRecorder(t0)
	out := cfg.Out
	logf := func(format string, args ...any) {
		fmt.Fprintf(out, "[+%8.3fs] %s\n", rec.since().Seconds(), fmt.Sprintf(format, args...))
	}
	rep = &Report{Seed: cfg.Seed, Duration: cfg.Duration, LeaseTTL: cfg.LeaseTTL, Limit: cfg.LeaseTTL + cfg.Slack}

	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "strata-chaos-"); err != nil {
			return rep, harness(err)
		}
		defer func() {
			if err == nil && !rep.Failed() && !cfg.Keep {
				os.RemoveAll(dir)
				rep.Dir += " (removed)"
			}
		}()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, harness(err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return rep, harness(err)
	}
	rep.Dir = dir
	defer func() { rep.Wall = time.Since(t0) }()
	logf("run dir %s", dir)

	if cfg.StrataBin == "" {
		logf("building ./cmd/strata")
		if cfg.StrataBin, err = BuildStrata(ctx, dir, out); err != nil {
			return rep, harness(err)
		}
		rep.Strata = "built from ./cmd/strata"
		if wd, err := os.Getwd(); err == nil {
			if v := sourceVersion(ctx, wd); v != "" {
				rep.Strata += " at " + v
			}
		}
	} else {
		rep.Strata = cfg.StrataBin
	}
	if cfg.EtcdBin == "" {
		if cfg.EtcdBin, err = EtcdBinary(); err != nil {
			return rep, harness(err)
		}
	}
	if cfg.MinIOBin == "" {
		if cfg.MinIOBin, err = bench.MinIOBinary(); err != nil {
			return rep, harness(err)
		}
	}

	logf("starting etcd, MinIO and %d nodes", cfg.Nodes)
	c, err := StartCluster(ctx, ClusterConfig{
		Dir: dir, StrataBin: cfg.StrataBin, EtcdBin: cfg.EtcdBin, MinIOBin: cfg.MinIOBin,
		Nodes: cfg.Nodes, FlushInterval: cfg.FlushInterval, LogLevel: cfg.NodeLogLevel, Seed: cfg.Seed,
	})
	if err != nil {
		return rep, harness(err)
	}
	defer c.Close()
	clogf, err := os.Create(filepath.Join(dir, "clients.log"))
	if err != nil {
		return rep, harness(err)
	}
	defer clogf.Close()
	clog := &lockedWriter{w: clogf}
	rep.Logs = append(c.Logs(), clogf.Name())
	for _, n := range c.Nodes {
		logf("node %d: kafka %s, http %s, etcd via %s, MinIO via %s, log %s", n.ID, n.KafkaAddr, n.HTTPAddr, c.EtcdPx[n.ID].Addr(), c.S3Px[n.ID].Addr(), n.LogPath())
	}

	lcfg := LoadConfig{
		Seeds:    c.Seeds(),
		TopicAll: "chaos-acks-all", TopicOne: "chaos-acks-1", Group: "chaos-group",
		Partitions: cfg.Partitions, PartsOne: cfg.PartsOne,
		Producers: cfg.Producers, RateAll: cfg.RateAll, RateOne: cfg.RateOne, InFlight: 32,
		Readers: cfg.Readers, GroupSize: cfg.GroupSize, MaxRecords: cfg.MaxRecords,
		CommitEvery: time.Second,
		Log:         clog,
	}
	if cfg.SegmentMs > 0 {
		lcfg.TopicConfigs = map[string]string{"segment.ms": strconv.FormatInt(cfg.SegmentMs.Milliseconds(), 10)}
	}
	if cfg.SegmentBytes > 0 {
		if lcfg.TopicConfigs == nil {
			lcfg.TopicConfigs = map[string]string{}
		}
		lcfg.TopicConfigs["segment.bytes"] = strconv.Itoa(cfg.SegmentBytes)
	}
	load, err := StartLoad(ctx, lcfg, rec)
	if err != nil {
		return rep, harness(fmt.Errorf("start load: %w", err))
	}
	defer load.Close()
	var txn *TxnLoad
	if cfg.TxnProducers > 0 {
		if txn, err = StartTxnLoad(ctx, c.Seeds(), clog, load.admin, "chaos-txn", cfg.TxnPartitions, cfg.TxnProducers, lcfg.TopicConfigs); err != nil {
			return rep, harness(fmt.Errorf("start transactional load: %w", err))
		}
		defer txn.StopReading()
		logf("transactional load running: %d producers over %d partitions", cfg.TxnProducers, cfg.TxnPartitions)
	}
	var compact *CompactLoad
	if cfg.CompactPartitions > 0 {
		if compact, err = StartCompactLoad(ctx, c.Seeds(), clog, load.admin, "chaos-compact", cfg.CompactPartitions); err != nil {
			return rep, harness(fmt.Errorf("start compacted load: %w", err))
		}
		defer compact.StopProducing()
		logf("compacted load running: 200 keys over %d partitions", cfg.CompactPartitions)
	}
	var shareLoad *ShareLoad
	if cfg.ShareConsumers > 0 {
		if shareLoad, err = StartShareLoad(ctx, c.Seeds(), clog, load.admin, "chaos-share", "chaos-share-group", cfg.SharePartitions, cfg.ShareConsumers, lcfg.TopicConfigs); err != nil {
			return rep, harness(fmt.Errorf("start share-group load: %w", err))
		}
		defer shareLoad.StopProducing()
		logf("share-group load running: %d share consumers on %d partition(s)", cfg.ShareConsumers, cfg.SharePartitions)
	}
	loadStart := time.Now()
	loadStartAt := rec.since()
	logf("load running: %d acks=all producers × %d partitions × %.0f/s, acks=1 producer × %d partitions × %.0f/s, %d readers, group of %d",
		cfg.Producers, cfg.Partitions, cfg.RateAll, cfg.PartsOne, cfg.RateOne, cfg.Readers, cfg.GroupSize)

	tail := planTail(cfg)
	plan := PlanFor(cfg)
	logf("fault plan: %d faults", len(plan))
	inj := &Injector{C: c, Load: load, Rec: rec, Out: out, Max: cfg.MaxPartitions, LeaseTTL: cfg.LeaseTTL}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		inj.Run(ctx, plan, loadStart, loadStartAt+cfg.Duration-tail/2)
	}()
	select {
	case <-time.After(time.Until(loadStart.Add(cfg.Duration))):
	case <-ctx.Done():
	}
	wg.Wait() // the injector heals what it applied before it returns
	rep.Events = inj.Events()
	if ctx.Err() != nil {
		return rep, harness(fmt.Errorf("interrupted: %w", ctx.Err()))
	}
	for _, e := range rep.Events {
		// A fault the checker could not apply or heal (a process that would
		// not die, etcd that would not start) leaves the run meaningless. A
		// node that does not come back is Strata's failure: a violation.
		if e.HealErr != nil && !e.Violation {
			return rep, harness(fmt.Errorf("fault #%d (%s): %w", e.Fault.Seq, e.Fault.Describe(), e.HealErr))
		}
	}

	// Heal anything left and make sure every node runs.
	c.HealAll()
	var nodesDown []string
	for _, n := range c.Nodes {
		if n.Pid() == 0 {
			nodesDown = append(nodesDown, fmt.Sprintf("node %d was not running after the schedule (log %s)", n.ID, n.LogPath()))
			if err := n.Start(ctx); err != nil {
				nodesDown = append(nodesDown, fmt.Sprintf("node %d: %v", n.ID, err))
			}
		}
	}
	loadEnd := rec.since()
	logf("load stopping; waiting for buffered records")
	unfinished := load.StopProducing(30 * time.Second)
	if txn != nil {
		txn.StopProducing(60 * time.Second)
	}
	if compact != nil {
		compact.StopProducing()
	}
	if shareLoad != nil {
		shareLoad.StopProducing()
	}

	lastHeal := loadStartAt
	for _, e := range rep.Events {
		if e.Healed > lastHeal {
			lastHeal = e.Healed
		}
	}
	logf("probing every partition (a produce and a fetch each)")
	probes, err := probe(ctx, c.Seeds(), clog, rec, map[string]int32{lcfg.TopicAll: load.PartitionsAll(), lcfg.TopicOne: cfg.PartsOne},
		max(lastHeal+rep.Limit+5*time.Second, rec.since()+20*time.Second))
	if err != nil {
		return rep, harness(fmt.Errorf("probe: %w", err))
	}
	hold(ctx, 2*time.Second) // let the direct readers see the probes too
	load.StopReading(15 * time.Second)
	if txn != nil {
		txn.StopReading()
	}

	logf("final read of both topics")
	all, err := finalRead(ctx, c.Seeds(), clog, load.admin, rec, lcfg.TopicAll, 30*time.Second, 10*time.Minute)
	if err != nil {
		return rep, harness(err)
	}
	one, err := finalRead(ctx, c.Seeds(), clog, load.admin, rec, lcfg.TopicOne, 30*time.Second, 10*time.Minute)
	if err != nil {
		return rep, harness(err)
	}
	for _, fr := range []*FinalRead{all, one} {
		logf("final read of %s: %d records in %s", fr.Topic, fr.Records, fr.Took.Round(time.Millisecond))
		rep.Notes = append(rep.Notes, fmt.Sprintf("the final read of %s got %d records in %s (%.0f records/s)",
			fr.Topic, fr.Records, fr.Took.Round(time.Millisecond), float64(fr.Records)/max(fr.Took.Seconds(), 0.001)))
	}
	starts := map[int32]time.Duration{}
	for p := range all.Parts {
		if s, ok := load.partStart(p); ok {
			starts[p] = s
		}
	}
	if compact != nil {
		logf("final read of %s", "chaos-compact")
		// Quiet for 30 s, as the final read of the other topics: a node
		// that came back on an empty disk reads unrolled data slowly.
		res, err := compact.Check(ctx, 30*time.Second, 10*time.Minute)
		if err != nil {
			return rep, harness(fmt.Errorf("compacted check: %w", err))
		}
		rep.Compact = &res
	}
	if txn != nil {
		logf("final read_committed read of %s", "chaos-txn")
		res, err := txn.Check(ctx, 30*time.Second, 10*time.Minute)
		if err != nil {
			return rep, harness(fmt.Errorf("transactional check: %w", err))
		}
		rep.Txn = &res
	}
	if shareLoad != nil {
		logf("share group: draining chaos-share")
		res := shareLoad.Check(ctx, 30*time.Second, 3*time.Minute)
		rep.Share = &res
	}
	check(checkInput{
		rec: rec, events: rep.Events, all: all, one: one, topicAll: lcfg.TopicAll, topicOne: lcfg.TopicOne,
		starts: starts, loadEnd: loadEnd, probes: probes, limit: rep.Limit, unfinish: unfinished, nodesDown: nodesDown,
	}, rep)
	if cr := rep.Compact; cr != nil {
		rep.Violations = append(rep.Violations, cr.Evidence...)
	}
	if t := rep.Txn; t != nil {
		rep.Violations = append(rep.Violations, t.Evidence...)
		if t.Violations() > 0 && len(t.Evidence) == 0 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("transactions: %d violations", t.Violations()))
		}
		for msg, n := range t.Errors {
			rep.Notes = append(rep.Notes, fmt.Sprintf("transactional producers: %d× %s", n, msg))
		}
	}
	if sr := rep.Share; sr != nil {
		rep.Violations = append(rep.Violations, sr.Evidence...)
		if sr.Violations() > 0 && len(sr.Evidence) == 0 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("share group: %d violations", sr.Violations()))
		}
		for msg, n := range sr.Errors {
			rep.Notes = append(rep.Notes, fmt.Sprintf("share workload: %d× %s", n, msg))
		}
	}
	logf("done: %d acks=all records acknowledged, %d violation line(s)", rep.AckedAll, len(rep.Violations))
	return rep, nil
}
