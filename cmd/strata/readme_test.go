package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the first fenced block of the given language after
// heading in README.md.
func readmeBlock(t *testing.T, readme, heading, lang string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	rest := readme[i:]
	open := "```" + lang + "\n"
	j := strings.Index(rest, open)
	if j < 0 {
		t.Fatalf("README.md %q has no ```%s block", heading, lang)
	}
	rest = rest[j+len(open):]
	k := strings.Index(rest, "```")
	if k < 0 {
		t.Fatalf("README.md %q: unterminated ```%s block", heading, lang)
	}
	return rest[:k]
}

// TestReadmeKcatBlock runs README.md's "Try it with kcat" block as a user
// pastes it, with a freshly built strata on the PATH, in an empty folder,
// and checks that it prints the output the README shows (the topic id is
// random: any 32 hex digits match).
func TestReadmeKcatBlock(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	block := readmeBlock(t, readme, "## Try it with kcat", "sh")
	want := readmeBlock(t, readme, "## Try it with kcat", "text")
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("kcat not found on PATH: run bash .ci/setup")
	}
	// The block uses the laptop defaults: those ports must be free.
	for _, addr := range []string{"127.0.0.1:9092", "127.0.0.1:9644", "127.0.0.1:9645"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s is in use: the README block starts strata serve on the default ports; stop whatever listens there", addr)
		}
	}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "strata"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", block)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	// The block's `kill %1` stops the node; wait until it let go of its
	// ports, so nothing outlives the test.
	defer func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			c, err := net.DialTimeout("tcp", "127.0.0.1:9092", time.Second)
			if err != nil {
				return
			}
			c.Close()
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("strata serve still listens on 127.0.0.1:9092 30 s after the block's kill %%1")
	}()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "strata.log"))
		t.Fatalf("the block failed: %v\nstdout:\n%s\nstrata.log:\n%s", err, out, log)
	}
	hex := regexp.MustCompile(`[0-9a-f]{32}`)
	gotLines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	wantLines := strings.Split(strings.TrimRight(want, "\n"), "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("the block printed %d lines, the README shows %d:\n--- got\n%s\n--- README\n%s", len(gotLines), len(wantLines), out, want)
	}
	for i, w := range wantLines {
		re := regexp.MustCompile("^" + hex.ReplaceAllString(regexp.QuoteMeta(w), "[0-9a-f]{32}") + "$")
		if !re.MatchString(gotLines[i]) {
			t.Fatalf("line %d: got %q, the README shows %q\n--- got\n%s", i+1, gotLines[i], w, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "strata-data")); err != nil {
		t.Fatalf("the block left no ./strata-data: %v", err)
	}
}
