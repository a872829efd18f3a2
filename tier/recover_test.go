package tier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// crash closes tr the way a dying node leaves things: the last append never
// reaches the object store (it stays only in the local segment), and the
// active segment file ends in a torn write.
func crash(t *testing.T, e *env, tr *Tier, p *Partition) {
	t.Helper()
	unblock := e.bucket.block()
	b, h := batch(t, 2, "never-durable", 1)
	if _, _, err := p.Append(context.Background(), b, h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tr.Close(ctx)
	unblock()
	segs, _ := filepath.Glob(filepath.Join(p.dir, "*.seg"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("torn half-written block"))
	f.Close()
}

func TestRestartReusesLocalSegments(t *testing.T) {
	e := newEnv(t, 1)
	dir := t.TempDir()
	tr := e.tier(Config{DataDir: dir})
	p := e.partition(tr, 0)
	want := fill(t, p, 5, "kept", 1)
	crash(t, e, tr, p)

	tr2 := e.tier(Config{DataDir: dir})
	p2 := e.partition(tr2, 0)
	if len(p2.segs) < 2 {
		t.Fatalf("%d local segments after restart; want the recovered one and a new active one", len(p2.segs))
	}
	if got := readAll(t, p2, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart:\n got %v\nwant %v", got, want)
	}
	if local := testutil.ToFloat64(tr2.metrics.readBytes.WithLabelValues("local")); local == 0 {
		t.Fatal("reads after restart did not come from the recovered local segments")
	}
	if gets := testutil.ToFloat64(tr2.metrics.objectGets); gets != 0 {
		t.Fatalf("%v GETs after restart; the local segments had everything", gets)
	}
	// The never-durable block is gone: the next append takes its offsets.
	b, h := batch(t, 1, "next", 1)
	base, wait, err := p2.Append(context.Background(), b, h)
	if err != nil || base != 50 {
		t.Fatalf("append after restart: base %d, %v; want 50", base, err)
	}
	if err := wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, p2, 48); fmt.Sprint(got) != "[48:kept4-8 49:kept4-9 50:next-0]" {
		t.Fatalf("tail after restart: %v", got)
	}
}

func TestRestartAfterAnotherLeaderDoesNotTrustLocalData(t *testing.T) {
	e := newEnv(t, 1)
	dir := t.TempDir()
	tr := e.tier(Config{DataDir: dir})
	p := e.partition(tr, 0)
	want := fill(t, p, 3, "a", 1)
	crash(t, e, tr, p)

	// Another node leads meanwhile and commits.
	other := e.tier(Config{})
	want = append(want, fill(t, e.partition(other, 0), 2, "b", 1)...)
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	other.Close(closeCtx)

	tr2 := e.tier(Config{DataDir: dir})
	p2 := e.partition(tr2, 0)
	if got := readAll(t, p2, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after another leader:\n got %v\nwant %v", got, want)
	}
	if local := testutil.ToFloat64(tr2.metrics.readBytes.WithLabelValues("local")); local != 0 {
		t.Fatal("stale local segments were read after another leader committed")
	}
}
