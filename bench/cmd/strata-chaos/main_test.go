package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The chaos schedule itself is not part of `go test ./...` (it needs etcd
// and MinIO processes and minutes); CI runs the command directly. These
// tests cover the command line only, except TestShortSchedule, which runs
// only when STRATA_CHAOS_TEST is set.

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"extra"},
		{"--faults", "kill,bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitHarness {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitHarness, errb.String())
		}
	}
}

func TestFaultNames(t *testing.T) {
	for _, n := range shortNames {
		if k, ok := kindByName(n.name); !ok || k != n.kind {
			t.Errorf("%s: %q, %v", n.name, k, ok)
		}
	}
	if !strings.Contains(kindNames(), "delete-records") {
		t.Errorf("kindNames() = %q", kindNames())
	}
}

// TestShortSchedule runs a 20s schedule end to end when STRATA_CHAOS_TEST
// is set (it needs etcd on PATH and MinIO from .ci/install-minio).
func TestShortSchedule(t *testing.T) {
	if os.Getenv("STRATA_CHAOS_TEST") == "" {
		t.Skip("set STRATA_CHAOS_TEST=1 to run a short chaos schedule")
	}
	report := filepath.Join(t.TempDir(), "report.md")
	var out, errb bytes.Buffer
	code := run([]string{"--seed", "1", "--duration", "20s", "--report", report}, &out, &errb)
	t.Log(out.String())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	md, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(md), "PASS") {
		t.Fatalf("report: %v\n%s", err, md)
	}
}
