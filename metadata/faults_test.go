package metadata

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A roll that swaps index entries between DeleteIndexBelow's read and its
// delete must not lose the new entry: it starts below the new log start and
// holds live offsets above it.
func TestDeleteIndexBelowRacingRollKeepsLiveEntries(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	mustTopic(t, s, "race", 1)
	tp := TP{"race", 0}
	l, err := s.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 3; i++ {
		if f, err := s.CommitFlush(ctx, []PartitionCommit{commitOf(l, i*10, i*10+9)}); err != nil || len(f) != 0 {
			t.Fatalf("commit %d: fenced %v, %v", i, f, err)
		}
	}
	if err := s.SetLogStartOffset(ctx, l, 15); err != nil {
		t.Fatal(err)
	}
	rolled := false
	testHookDeleteIndex = func() {
		if rolled {
			return
		}
		rolled = true
		seg := []IndexEntry{{BaseOffset: 0, LastOffset: 29, Object: "segments/r", Size: 900, Records: 30, MaxTimestamp: 1029}}
		if err := s.ReplaceIndex(ctx, l, 0, 29, seg); err != nil {
			t.Errorf("roll: %v", err)
		}
	}
	t.Cleanup(func() { testHookDeleteIndex = nil })
	if err := s.DeleteIndexBelow(ctx, l, 15); err != nil {
		t.Fatal(err)
	}
	if !rolled {
		t.Fatal("the hook never ran")
	}
	for _, off := range []int64{15, 20, 29} {
		e, from, ok, err := s.EntryAt(ctx, tp, off, 30)
		if err != nil || !ok || from != off || e.BaseOffset > off || e.LastOffset < off {
			t.Fatalf("offset %d after delete below 15 racing a roll: entry %+v from %d ok %v err %v", off, e, from, ok, err)
		}
	}
}

// EntryAt never answers with an entry that starts after the wanted offset,
// even when this Store's cache has not learnt the entry holding it.
func TestEntryAtReadsEtcdWhenTheCacheLags(t *testing.T) {
	ctx := testCtx(t)
	writer := openStore(t, nil, nil)
	reader := openStore(t, nil, nil)
	mustTopic(t, writer, "lag", 1)
	tp := TP{"lag", 0}
	eventually(t, "reader knows the topic", func() bool { _, ok := reader.Topic("lag"); return ok })
	l, err := writer.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	resume := reader.PauseWatch()
	defer resume()
	for i := int64(0); i < 2; i++ {
		if f, err := writer.CommitFlush(ctx, []PartitionCommit{commitOf(l, i*10, i*10+9)}); err != nil || len(f) != 0 {
			t.Fatalf("commit %d: fenced %v, %v", i, f, err)
		}
	}
	if es := reader.IndexEntries(tp, 0); len(es) != 0 {
		t.Fatalf("paused watch still delivered %d entries", len(es))
	}
	for _, off := range []int64{0, 5, 10, 19} {
		e, from, ok, err := reader.EntryAt(ctx, tp, off, 20)
		if err != nil || !ok || from != off || e.BaseOffset > off || e.LastOffset < off {
			t.Fatalf("EntryAt(%d) with a lagging cache: %+v from %d ok %v err %v", off, e, from, ok, err)
		}
	}
	// Below the log start it moves to the log start; at or past the end
	// of what is durable it says so.
	if err := writer.SetLogStartOffset(ctx, l, 12); err != nil {
		t.Fatal(err)
	}
	e, from, ok, err := reader.EntryAt(ctx, tp, 3, 20)
	if err != nil || !ok || from != 12 || fmt.Sprint(e.BaseOffset, e.LastOffset) != "10 19" {
		t.Fatalf("EntryAt(3) below log start 12: %+v from %d ok %v err %v", e, from, ok, err)
	}
	if _, from, ok, err := reader.EntryAt(ctx, tp, 3, 12); err != nil || ok || from != 12 {
		t.Fatalf("EntryAt(3, end 12) with log start 12: from %d ok %v err %v, want not ok", from, ok, err)
	}
}

// Two live nodes never share a node id: the second is refused with a clear
// error. A restart after kill -9 (the old lease not yet expired, nobody
// renewing it) waits for the old lease and then registers.
func TestNodeIDInUseIsRefusedButARestartTakesItOver(t *testing.T) {
	ctx := testCtx(t)
	short := func(c *Config) { c.LeaseTTL = 2 * time.Second }
	live := openStore(t, nil, short)
	if err := live.RegisterNode(ctx, Node{ID: 7, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	dup := openStore(t, nil, short)
	start := time.Now()
	err := dup.RegisterNode(ctx, Node{ID: 7, Host: "127.0.0.1", Port: 9093})
	if !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), "--node-id") {
		t.Fatalf("second live node with id 7: %v, want ErrNodeIDInUse naming --node-id", err)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if ns := dup.Nodes(); len(ns) != 1 || ns[0].Port != 9092 {
		t.Fatalf("the refused node changed the registration: %v", ns)
	}

	// The live node dies without revoking its lease (kill -9); a new
	// process with the same id registers once that lease expires.
	live.revokeOnClose = false
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := openStore(t, nil, short)
	if err := restarted.RegisterNode(ctx, Node{ID: 7, Host: "127.0.0.1", Port: 9094}); err != nil {
		t.Fatalf("restart with the id of a dead node: %v", err)
	}
	eventually(t, "the restarted node is registered", func() bool {
		ns := dup.Nodes()
		return len(ns) == 1 && ns[0].Port == 9094
	})
}

// The embedded etcd keeps itself small: it compacts old revisions and
// defragments, so history does not fill its quota; and when the quota is
// reached anyway, the NOSPACE alarm shows in EtcdHealth (and so in /readyz
// and metrics) and clears once compaction and defragmentation freed space.
func TestEmbeddedEtcdCompactsDefragmentsAndReportsNoSpace(t *testing.T) {
	ctx := testCtx(t)
	e, err := StartEmbedded(ctx, EmbeddedConfig{Dir: t.TempDir(), QuotaBackendBytes: 8 << 20,
		CompactionRetention: time.Second, DefragInterval: 500 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s := openStore(t, e, nil)
	cli := rawClient(t, e)
	if h := s.CheckEtcdHealth(ctx); h.Err != nil || len(h.Alarms) != 0 || h.DBSize == 0 {
		t.Fatalf("fresh etcd health: %+v", h)
	}
	// Overwrite one key with 256 KiB values until etcd refuses (the
	// history of one key fills the quota faster than compaction frees it).
	val := strings.Repeat("x", 256<<10)
	full := false
	for i := 0; i < 400 && !full; i++ {
		if _, err := cli.Put(ctx, "/bloat", val); err != nil {
			if !strings.Contains(err.Error(), "space exceeded") {
				t.Fatalf("put %d: %v", i, err)
			}
			full = true
		}
	}
	if !full {
		t.Fatal("100 MB of overwrites never reached etcd's 8 MiB quota")
	}
	h := s.CheckEtcdHealth(ctx)
	if !slices.Contains(h.Alarms, "NOSPACE") {
		t.Fatalf("etcd refused a write for space but health shows alarms %v", h.Alarms)
	}
	if got := s.EtcdHealth(); !slices.Contains(got.Alarms, "NOSPACE") {
		t.Fatalf("EtcdHealth after the check: %v", got.Alarms)
	}
	// Compaction and defragmentation free the space; the alarm clears and
	// writes go through again, with nobody stepping in.
	eventually(t, "the NOSPACE alarm clears", func() bool {
		return len(s.CheckEtcdHealth(ctx).Alarms) == 0
	})
	if _, err := cli.Put(ctx, "/after", "ok"); err != nil {
		t.Fatalf("write after the alarm cleared: %v", err)
	}
}
