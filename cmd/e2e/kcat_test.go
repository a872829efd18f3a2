package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestKcat drives Debian's kcat (librdkafka 2.0.2) as a user would: produce
// key:value lines with each codec to a topic that does not exist yet, read
// them back from the beginning, and compare line for line. librdkafka
// silently sends uncompressed batches when it thinks the broker lacks a
// codec (a debug-level "does not support compression type" line, hence
// -d msg), so that line must not appear and the stored batch must carry the
// codec.
func TestKcat(t *testing.T) {
	kcat := requireTool(t, "kcat")
	addr := startBroker(t)
	codecs := []struct {
		name string
		attr int16
	}{
		{"none", 0},
		{"gzip", 1},
		{"snappy", 2},
		{"lz4", 3},
		{"zstd", 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx := testContext(t)
			topic := "kcat-" + c.name
			const n = 2000
			var in strings.Builder
			want := make([]string, n)
			for i := range want {
				want[i] = fmt.Sprintf("key-%s-%04d:value-%s-%04d-%s", c.name, i, c.name, i, strings.Repeat("v", i%50))
				in.WriteString(want[i] + "\n")
			}
			args := []string{"-b", addr, "-P", "-t", topic, "-K:", "-X", "acks=all",
				"-H", "origin=kcat", "-H", "codec=" + c.name, "-d", "msg"}
			if c.name != "none" {
				args = append(args, "-z", c.name)
			}
			_, stderr := runCmd(t, ctx, []byte(in.String()), nil, kcat, args...)
			checkKcatStderr(t, stderr)

			out, stderr := runCmd(t, ctx, nil, nil, kcat, "-b", addr, "-C", "-t", topic,
				"-e", "-o", "beginning", "-f", "%o|%k:%s|%h\n")
			checkKcatStderr(t, stderr)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != n {
				t.Fatalf("kcat consumed %d lines, want %d\nfirst lines: %q", len(lines), n, lines[:min(len(lines), 5)])
			}
			for i, line := range lines {
				wantLine := fmt.Sprintf("%d|%s|origin=kcat,codec=%s", i, want[i], c.name)
				if line != wantLine {
					t.Fatalf("line %d:\n got %q\nwant %q", i, line, wantLine)
				}
			}
			if c.attr != 0 {
				checkStoredCodec(t, ctx, rawClient(t, addr), topic, c.attr)
			}
		})
	}

	t.Run("auto-create", func(t *testing.T) {
		ctx := testContext(t)
		topic := "brand-new-topic"
		_, stderr := runCmd(t, ctx, []byte("first\nsecond\nthird\n"), nil, kcat, "-b", addr, "-P", "-t", topic)
		checkKcatStderr(t, stderr)
		out, _ := runCmd(t, ctx, nil, nil, kcat, "-b", addr, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%s\n")
		if out != "first\nsecond\nthird\n" {
			t.Fatalf("consumed %q from the auto-created topic, want the three produced lines", out)
		}
	})
}

// checkKcatStderr fails on librdkafka's warnings that mean a user's data
// went out differently than asked (or not at all).
func checkKcatStderr(t *testing.T, stderr string) {
	t.Helper()
	for _, bad := range []string{
		"does not support compression type",
		"Delivery failed",
		"ERROR",
	} {
		var hits []string
		for _, line := range strings.Split(stderr, "\n") {
			if strings.Contains(line, bad) {
				hits = append(hits, line)
			}
		}
		if len(hits) > 0 {
			t.Errorf("kcat stderr has %d lines with %q; first: %s", len(hits), bad, hits[0])
		}
	}
}
