package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/strata-io/strata/bench"
)

func TestMain(m *testing.M) {
	// compare runs each broker in a child process of this executable: in
	// a test, the test binary, which then acts as strata-bench.
	if len(os.Args) > 1 && os.Args[1] == "compare-broker" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // required in stdout
		err  string // required in stderr
	}{
		{"json", []string{"-records", "500", "-size", "64", "-partitions", "2", "-producers", "1", "-paced-records", "-1", "-json"}, 0, `"verified": true`, "cold consume"},
		{"markdown", []string{"-records", "300", "-size", "64", "-paced-records", "50", "-paced-rate", "500", "-paced-warmup", "10ms", "-dir", t.TempDir(), "-json-file", filepath.Join(t.TempDir(), "r.json")}, 0, "| verified | yes", ""},
		{"bad store", []string{"-store", "s4", "-records", "10"}, 2, "", "unknown store"},
		{"bad size", []string{"-size", "4", "-records", "10"}, 2, "", "record size"},
		{"bad flag", []string{"-nope"}, 2, "", "flag provided but not defined"},
		{"extra args", []string{"x"}, 2, "", "unexpected arguments"},
		{"compare: a broker per process", []string{"compare", "-brokers", "kfake", "-scenarios", "100B", "-run-mb", "1", "-repeat", "1", "-skip-limits",
			"-export-records", "-1", "-paced-seconds", "0.5", "-e2e-seconds", "0.5", "-e2e-rate", "200", "-no-warmup"}, 0, "| 100B: 100 B, 6p, acks=all, none, 4 clients |", "kfake end-to-end"},
		{"compare: bad broker", []string{"compare", "-brokers", "kafka"}, 2, "", `unknown broker "kafka"`},
		{"compare: bad scenario", []string{"compare", "-scenarios", "1KiB,2KiB"}, 2, "", `unknown scenario "2KiB"`},
		{"compare: bad size", []string{"compare", "-run-mb", "0"}, 2, "", "-run-mb must be positive"},
		{"compare: extra args", []string{"compare", "x"}, 2, "", "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.out) || !strings.Contains(stderr.String(), tt.err) {
				t.Fatalf("stdout %q lacks %q or stderr %q lacks %q", stdout.String(), tt.out, stderr.String(), tt.err)
			}
			if tt.name == "json" {
				var res bench.Result
				if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
					t.Fatal(err)
				}
				if res.Produce.Records != 500 || res.Cold.Records != 500 || res.Paced.Records != 0 {
					t.Fatalf("records produced %d, cold %d, paced %d; want 500, 500, 0", res.Produce.Records, res.Cold.Records, res.Paced.Records)
				}
			}
		})
	}
}
