package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigLayersFlagsEnvFile(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(cfgFile, []byte("flush-bytes: 4MiB\ndata-dir: /from/file\netcd-endpoints: [http://a:1, http://b:2]\ncluster: filecluster\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRATA_DATA_DIR", "/from/env")
	t.Setenv("STRATA_CLUSTER", "envcluster")

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./default", "")
	cluster := fs.String("cluster", "strata", "")
	fb := byteSize(8 << 20)
	fs.Var(&fb, "flush-bytes", "")
	var eps listFlag
	fs.Var(&eps, "etcd-endpoints", "")
	if err := fs.Parse([]string{"--cluster", "flagcluster"}); err != nil {
		t.Fatal(err)
	}
	if err := applyLayers(fs, cfgFile); err != nil {
		t.Fatal(err)
	}
	if *cluster != "flagcluster" {
		t.Errorf("cluster = %q; the flag must win", *cluster)
	}
	if *dataDir != "/from/env" {
		t.Errorf("data-dir = %q; the environment must win over the file", *dataDir)
	}
	if fb != 4<<20 {
		t.Errorf("flush-bytes = %d; want 4MiB from the file", fb)
	}
	if strings.Join(eps, " ") != "http://a:1 http://b:2" {
		t.Errorf("etcd-endpoints = %v", eps)
	}
}

func TestBadInputGivesReadableErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("flush-bytes: 4MiB\nno-such-option: 1\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"serve", "--flush-bytes", "lots"}, `invalid size "lots"`},
		{[]string{"serve", "--config", bad}, "unknown keys: no-such-option"},
		{[]string{"serve", "--config", filepath.Join(dir, "missing.yaml")}, "config file"},
		{[]string{"serve", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"topic"}, "want a subcommand"},
		{[]string{"topic", "create"}, "want exactly one topic name"},
		{[]string{"topic", "create", "x", "--partitions", "0"}, "--partitions must be at least 1"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code == 0 {
			t.Errorf("%v: exit 0, want failure", c.args)
		}
		if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: stderr %q does not contain %q", c.args, errb.String(), c.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "8MiB": 8 << 20, "64MB": 64e6, "512KiB": 512 << 10, "2GiB": 2 << 30, "10B": 10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "12XB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "strata ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
}

func TestByteSizeString(t *testing.T) {
	for n, want := range map[int64]string{8 << 20: "8MiB", 1 << 30: "1GiB", 512 << 10: "512KiB", 1000: "1000", 0: "0"} {
		b := byteSize(n)
		if got := b.String(); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := parseBytes(want); err != nil || back != n {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", want, back, err, n)
		}
	}
}
