package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/strata-io/strata/bench/chaos"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK        = 0
	exitViolation = 1 // Strata broke a guarantee
	exitHarness   = 2 // the checker could not do its job
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("strata-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chaos.Config
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the fault schedule (0: time-based, printed for replay)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "length of the load with faults (start-up and final checks add about 30s)")
	report := fs.String("report", "", "also write the Markdown report to this file")
	fs.StringVar(&cfg.Dir, "dir", "", "folder for etcd, MinIO, node data and logs (default: a temp dir, removed after a passing run)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temp dir after a passing run")
	fs.StringVar(&cfg.StrataBin, "strata-bin", "", "strata binary (default: go build ./cmd/strata into the run dir)")
	fs.StringVar(&cfg.EtcdBin, "etcd-bin", "", "etcd binary (default: $STRATA_ETCD_BIN, else etcd on PATH: Debian's etcd-server)")
	fs.StringVar(&cfg.MinIOBin, "minio-bin", "", "MinIO binary (default: $STRATA_MINIO_BIN, else $HOME/.cache/strata/bin/minio, else PATH)")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 10*time.Second, "the nodes' etcd lease TTL (metadata.Config's default; strata serve has no flag for it)")
	fs.DurationVar(&cfg.Slack, "slack", 10*time.Second, "a partition must serve again within lease-ttl + slack after a fault heals")
	fs.StringVar(&cfg.NodeLogLevel, "node-log-level", "info", "the nodes' --log-level")
	part := fs.Int("partitions", 6, "partitions of the acks=all topic at the start")
	fs.IntVar(&cfg.Producers, "producers", 2, "idempotent acks=all producer clients")
	fs.Float64Var(&cfg.RateAll, "rate", 25, "records/s per acks=all producer and partition")
	fs.IntVar(&cfg.GroupSize, "group-size", 2, "consumer group members")
	fs.IntVar(&cfg.TxnProducers, "txn-producers", 2, "transactional producers (each its own transactional.id) on the chaos-txn topic; -1: none")
	fs.IntVar(&cfg.ShareConsumers, "share-consumers", 4, "share consumers (KIP-932) of the chaos-share topic; -1: no share-group workload")
	compactParts := fs.Int("compact-partitions", 2, "partitions of the compacted topic chaos-compact (200 keys); -1: no compacted workload")
	fs.DurationVar(&cfg.SegmentMs, "segment-ms", 20*time.Second, "the topics' segment.ms, so the roller runs during the run (0: Strata's default, 10m)")
	fs.IntVar(&cfg.SegmentBytes, "segment-bytes", 64<<10, "the topics' segment.bytes (0: Strata's default, 64 MiB)")
	kinds := fs.String("faults", "", "comma-separated fault kinds to draw from (default all): "+kindNames())
	planOnly := fs.Bool("plan", false, "print the seed's fault schedule and exit")
	if err := fs.Parse(args); err != nil {
		return exitHarness
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata-chaos: unexpected arguments %v\n", fs.Args())
		return exitHarness
	}
	cfg.Partitions = int32(*part)
	cfg.CompactPartitions = int32(*compactParts)
	if *kinds != "" {
		for _, name := range strings.Split(*kinds, ",") {
			k, ok := kindByName(strings.TrimSpace(name))
			if !ok {
				fmt.Fprintf(stderr, "strata-chaos: unknown fault %q (want %s)\n", name, kindNames())
				return exitHarness
			}
			cfg.Kinds = append(cfg.Kinds, k)
		}
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	cfg.Out = stdout
	if *planOnly {
		for _, f := range chaos.PlanFor(cfg) {
			fmt.Fprintf(stdout, "#%d at +%s: %s\n", f.Seq, f.Start.Round(time.Millisecond), f.Describe())
		}
		return exitOK
	}

	// The replay command: the arguments as given, with the seed.
	replay := []string{"go run ./bench/cmd/strata-chaos"}
	if !seedSet {
		replay = append(replay, fmt.Sprintf("--seed %d", cfg.Seed))
	}
	replay = append(replay, args...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "strata-chaos: seed %d, duration %s (replay: %s)\n", cfg.Seed, cfg.Duration, strings.Join(replay, " "))
	rep, err := chaos.Run(ctx, cfg)
	if rep != nil {
		rep.Replay = strings.Join(replay, " ")
	}
	if err != nil {
		fmt.Fprintf(stderr, "strata-chaos: %v\n", err)
		if rep != nil && rep.Dir != "" {
			fmt.Fprintf(stderr, "strata-chaos: run dir kept: %s\n", rep.Dir)
		}
		var h *chaos.HarnessError
		if !errors.As(err, &h) {
			fmt.Fprintf(stderr, "strata-chaos: (unclassified error, treated as a harness error)\n")
		}
		fmt.Fprintf(stderr, "strata-chaos: HARNESS ERROR (not a Strata violation); replay: %s\n", strings.Join(replay, " "))
		return exitHarness
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, "\n"+md)
	if *report != "" {
		if err := os.WriteFile(*report, []byte(md), 0o644); err != nil {
			fmt.Fprintf(stderr, "strata-chaos: HARNESS ERROR: write report: %v\n", err)
			return exitHarness
		}
	}
	if rep.Failed() {
		fmt.Fprintf(stderr, "strata-chaos: VIOLATION: %d line(s) of evidence above; logs kept in %s; replay: %s\n", len(rep.Violations), rep.Dir, rep.Replay)
		return exitViolation
	}
	return exitOK
}

// kindNames lists the short names -faults accepts.
func kindNames() string {
	var s []string
	for _, n := range shortNames {
		s = append(s, n.name)
	}
	return strings.Join(s, ", ")
}

var shortNames = []struct {
	name string
	kind chaos.Kind
}{
	{"kill", chaos.KillNode},
	{"kill-empty", chaos.KillNodeEmpty},
	{"pause-node", chaos.PauseNode},
	{"cut-etcd", chaos.CutEtcd},
	{"slow-etcd", chaos.SlowEtcd},
	{"cut-minio", chaos.CutMinIO},
	{"restart-etcd", chaos.RestartEtcd},
	{"pause-minio", chaos.PauseMinIO},
	{"fail-puts", chaos.FailPuts},
	{"add-partitions", chaos.AddPartitions},
	{"delete-records", chaos.DeleteRecords},
}

func kindByName(name string) (chaos.Kind, bool) {
	for _, n := range shortNames {
		if n.name == name {
			return n.kind, true
		}
	}
	return "", false
}
