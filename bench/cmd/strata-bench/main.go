package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/strata-io/strata/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "compare" {
		return compare(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "compare-broker" {
		return compareBroker(args[1:], stderr)
	}
	fs := flag.NewFlagSet("strata-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.Store, "store", bench.StoreFS, "object store: fs or minio (a MinIO process on 127.0.0.1)")
	fs.IntVar(&cfg.Records, "records", 200_000, "records to produce")
	fs.IntVar(&cfg.RecordSize, "size", 1024, "record value size in bytes")
	fs.IntVar(&cfg.Partitions, "partitions", 6, "partitions of the topic")
	fs.IntVar(&cfg.Producers, "producers", 4, "producer clients at once")
	fs.Float64Var(&cfg.PacedRate, "paced-rate", 0, "records/s of the paced-latency phase (default 5000)")
	fs.IntVar(&cfg.PacedRecords, "paced-records", 0, "records of the paced-latency phase (default min(records/10, 25000); -1 skips it)")
	fs.DurationVar(&cfg.PacedWarmup, "paced-warmup", 0, "start of the paced phase left out of its latency percentiles (default 1s)")
	fs.DurationVar(&cfg.PhaseTimeout, "timeout", 0, "time limit of each phase (default 5m)")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", 0, "node flush interval (default: the node's, 25ms)")
	fs.IntVar(&cfg.FlushBytes, "flush-bytes", 0, "node flush size trigger (default: the node's, 8 MiB)")
	fs.StringVar(&cfg.Dir, "dir", "", "data dir for etcd, the object store and nodes; must be empty (default: a temp dir, removed)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the record bytes (0: time-based)")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of Markdown")
	jsonFile := fs.String("json-file", "", "also write the result as JSON to this file")
	verbose := fs.Bool("v", false, "log node output (warnings and up) to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata-bench: unexpected arguments %v\n", fs.Args())
		return 2
	}
	cfg.Progress = stderr
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	return report(stdout, stderr, "strata-bench", res, err, *asJSON, *jsonFile)
}

// report prints a run's result as Markdown (or JSON with asJSON), writes it
// as JSON to jsonFile when set, and returns the exit status: 1 when err is
// a failed exactly-once check, 2 for any other error.
func report(stdout, stderr io.Writer, name string, res interface{ Markdown() string }, err error, asJSON bool, jsonFile string) int {
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if bench.IsVerifyError(err) {
			return 1
		}
		return 2
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	js = append(js, '\n')
	if jsonFile != "" {
		if err := os.WriteFile(jsonFile, js, 0o644); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 2
		}
	}
	if asJSON {
		stdout.Write(js)
		return 0
	}
	fmt.Fprint(stdout, res.Markdown())
	return 0
}

// compare runs the side-by-side suite: this machine's limits, then kfake,
// Strata on the filesystem store and Strata on MinIO, one at a time.
func compare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("strata-bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.SuiteConfig
	brokers := fs.String("brokers", strings.Join([]string{bench.BrokerKfake, bench.BrokerFS, bench.BrokerMinIO}, ","), "brokers to measure, in order (kfake, strata-fs, strata-minio)")
	scenarios := fs.String("scenarios", "", "comma-separated scenario names to run (default all: "+scenarioNames(bench.DefaultScenarios())+"); the first is the base")
	runMB := fs.Int64("run-mb", 64, "MB of record values per produce run")
	fs.IntVar(&cfg.Repeat, "repeat", 3, "runs of each produce scenario; the median is reported")
	fs.IntVar(&cfg.Producers, "producers", 4, "producer clients at once")
	fs.DurationVar(&cfg.Linger, "linger", 5*time.Millisecond, "producer linger")
	fs.Float64Var(&cfg.PacedSeconds, "paced-seconds", 5, "length of the paced-latency phase (at half the base scenario's saturation)")
	fs.Float64Var(&cfg.E2ERate, "e2e-rate", 5000, "records/s of the end-to-end latency phase")
	fs.Float64Var(&cfg.E2ESeconds, "e2e-seconds", 6, "length of the end-to-end latency phase")
	fs.IntVar(&cfg.FlushesInFlight, "flushes-in-flight", 0, "Strata nodes' --flushes-in-flight (default: the node's)")
	fs.IntVar(&cfg.ExportRecords, "export-records", 1_000_000, "100 B records in the Arrow/Parquet export topic (-1 skips)")
	fs.DurationVar(&cfg.PhaseTimeout, "timeout", 3*time.Minute, "time limit of each phase")
	fs.BoolVar(&cfg.SkipLimits, "skip-limits", false, "do not measure the machine's limits")
	fs.BoolVar(&cfg.NoWarmup, "no-warmup", false, "skip the untimed warm-up run of the base scenario on each broker")
	fs.StringVar(&cfg.Dir, "dir", "", "data dir; must be empty (default: a temp dir, removed)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the record bytes (0: time-based)")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of Markdown")
	jsonFile := fs.String("json-file", "", "also write the result as JSON to this file")
	verbose := fs.Bool("v", false, "log node output (warnings and up) to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each broker's run (clients and broker) to this file, suffixed with the broker's name")
	inProcess := fs.Bool("in-process", false, "measure every broker in this process instead of one process per broker")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" && *inProcess {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "strata-bench compare: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "strata-bench compare: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata-bench compare: unexpected arguments %v\n", fs.Args())
		return 2
	}
	if *runMB <= 0 {
		fmt.Fprintf(stderr, "strata-bench compare: -run-mb must be positive\n")
		return 2
	}
	cfg.RunBytes = *runMB * 1e6
	cfg.Brokers = strings.Split(*brokers, ",")
	if *scenarios != "" {
		all := bench.DefaultScenarios()
		for _, name := range strings.Split(*scenarios, ",") {
			i := slices.IndexFunc(all, func(s bench.Scenario) bool { return s.Name == name })
			if i < 0 {
				fmt.Fprintf(stderr, "strata-bench compare: unknown scenario %q (have %s)\n", name, scenarioNames(all))
				return 2
			}
			cfg.Scenarios = append(cfg.Scenarios, all[i])
		}
	}
	cfg.Progress = stderr
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if !*inProcess {
		cfg.Runner = execRunner(stderr, *cpuProfile, *verbose)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.RunSuite(ctx, cfg)
	return report(stdout, stderr, "strata-bench compare", res, err, *asJSON, *jsonFile)
}

func scenarioNames(ss []bench.Scenario) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}

// execRunner measures each broker in a child process (compare-broker): its
// heap, CPU time and RSS are its own, whatever ran before it.
func execRunner(stderr io.Writer, cpuProfile string, verbose bool) bench.BrokerRunner {
	return func(ctx context.Context, cfg bench.SuiteConfig, broker, dir string) (*bench.BrokerResult, error) {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfgJSON, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		cfgPath, outPath := filepath.Join(dir, "config.json"), filepath.Join(dir, "result.json")
		if err := os.WriteFile(cfgPath, cfgJSON, 0o644); err != nil {
			return nil, err
		}
		args := []string{"compare-broker", "-broker", broker, "-config", cfgPath, "-out", outPath, "-dir", filepath.Join(dir, "data")}
		if cpuProfile != "" {
			args = append(args, "-cpuprofile", cpuProfile+"."+broker)
		}
		if verbose {
			args = append(args, "-v")
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		runErr := cmd.Run()
		var res *bench.BrokerResult
		if b, err := os.ReadFile(outPath); err == nil {
			res = new(bench.BrokerResult)
			if err := json.Unmarshal(b, res); err != nil {
				return nil, fmt.Errorf("%s: result: %w", broker, err)
			}
		}
		var ee *exec.ExitError
		switch {
		case runErr == nil && res != nil:
			return res, nil
		case errors.As(runErr, &ee) && ee.ExitCode() == 1:
			return res, fmt.Errorf("%w (see above)", bench.ErrVerify)
		case runErr == nil:
			return nil, errors.New("no result written")
		default:
			return res, fmt.Errorf("measuring %s: %w (see above)", broker, runErr)
		}
	}
}

// compareBroker is the child process of compare: one broker's measures,
// written as JSON to -out. Exit status 1 is a failed exactly-once check.
func compareBroker(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("strata-bench compare-broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "", "broker to measure")
	cfgPath := fs.String("config", "", "suite configuration (JSON)")
	out := fs.String("out", "", "result file (JSON)")
	dir := fs.String("dir", "", "data dir")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile file")
	verbose := fs.Bool("v", false, "node logs to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg bench.SuiteConfig
	b, err := os.ReadFile(*cfgPath)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err == nil {
		err = os.MkdirAll(*dir, 0o755)
	}
	if err != nil || *out == "" {
		fmt.Fprintf(stderr, "strata-bench compare-broker: %v (out %q)\n", err, *out)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "strata-bench compare-broker: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "strata-bench compare-broker: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Progress = stderr
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := bench.RunBroker(ctx, cfg, *broker, *dir)
	if res != nil {
		js, err := json.Marshal(res)
		if err == nil {
			err = os.WriteFile(*out, js, 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "strata-bench compare-broker: %v\n", err)
			return 2
		}
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "strata-bench compare-broker: %s: %v\n", *broker, runErr)
		if bench.IsVerifyError(runErr) {
			return 1
		}
		return 2
	}
	return 0
}
