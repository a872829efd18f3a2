package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-io/strata/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
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
	if err != nil {
		fmt.Fprintf(stderr, "strata-bench: %v\n", err)
		if bench.IsVerifyError(err) {
			return 1
		}
		return 2
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "strata-bench: %v\n", err)
		return 2
	}
	js = append(js, '\n')
	if *jsonFile != "" {
		if err := os.WriteFile(*jsonFile, js, 0o644); err != nil {
			fmt.Fprintf(stderr, "strata-bench: %v\n", err)
			return 2
		}
	}
	if *asJSON {
		stdout.Write(js)
		return 0
	}
	fmt.Fprint(stdout, res.Markdown())
	return 0
}
