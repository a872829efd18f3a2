package ingest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestKcat checks librdkafka's protocol quirks against the server with the
// system's kcat (skipped when it is not installed): each compression codec
// is really used (librdkafka only compresses when its feature checks pass,
// which needs Produce v0 advertised and Produce 7 + Fetch 10 for zstd), and
// what was produced is consumed back.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed")
	}
	n := startNode(t, nil)
	run := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", n.addr, "-d", "feature,protocol,msg"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
		}
		if strings.Contains(stderr.String(), "does not support compression") {
			t.Fatalf("kcat %v: librdkafka disabled compression:\n%s", args, stderr.String())
		}
		return stdout.String()
	}
	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		var lines []string
		for i := range 20 {
			lines = append(lines, fmt.Sprintf("%s-%d", codec, i))
		}
		want = append(want, lines...)
		run(strings.Join(lines, "\n")+"\n", "-P", "-t", "kc", "-p", "0", "-z", codec)
	}
	got := strings.Fields(run("", "-C", "-t", "kc", "-p", "0", "-o", "beginning", "-e", "-f", "%s\n"))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("consumed %d records:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}
}
