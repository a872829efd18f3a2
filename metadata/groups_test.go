package metadata

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestGroupOffsetsRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)

	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	first := map[TP]CommittedOffset{
		{"orders", 0}: {Offset: 10, LeaderEpoch: 3, Metadata: "m0", CommitTime: at},
		{"orders", 1}: {Offset: 0, LeaderEpoch: -1, CommitTime: at},
		{"audit", 7}:  {Offset: 1 << 40, LeaderEpoch: 0, Metadata: "x/y%z", CommitTime: at},
	}
	if err := s.CommitOffsets(ctx, "g1", first); err != nil {
		t.Fatal(err)
	}
	got, err := s.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("FetchOffsets = %v, want %v", got, first)
	}

	// A later commit replaces one partition and adds another; a zero
	// commit time is filled in.
	before := time.Now().Add(-time.Second)
	if err := s.CommitOffsets(ctx, "g1", map[TP]CommittedOffset{
		{"orders", 1}: {Offset: 42, LeaderEpoch: 4},
		{"orders", 2}: {Offset: 5, LeaderEpoch: 4},
	}); err != nil {
		t.Fatal(err)
	}
	got, err = s.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[TP{"orders", 0}] != first[TP{"orders", 0}] {
		t.Fatalf("after second commit: %v", got)
	}
	o1 := got[TP{"orders", 1}]
	if o1.Offset != 42 || o1.LeaderEpoch != 4 || o1.CommitTime.Before(before) || o1.CommitTime.After(time.Now().Add(time.Second)) {
		t.Fatalf("orders/1 = %+v", o1)
	}

	// Another group is independent, including one whose name is a prefix.
	if err := s.CommitOffsets(ctx, "g", map[TP]CommittedOffset{{"orders", 0}: {Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FetchOffsets(ctx, "g"); len(got) != 1 {
		t.Fatalf("group g = %v", got)
	}

	if err := s.DeleteOffsets(ctx, "g1", []TP{{"orders", 0}, {"nope", 3}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.FetchOffsets(ctx, "g1")
	if _, ok := got[TP{"orders", 0}]; ok || len(got) != 3 {
		t.Fatalf("after DeleteOffsets: %v", got)
	}

	groups, err := s.ListOffsetGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(groups, []string{"g", "g1"}) {
		t.Fatalf("ListOffsetGroups = %v", groups)
	}

	if err := s.DeleteGroupOffsets(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FetchOffsets(ctx, "g1"); len(got) != 0 {
		t.Fatalf("after DeleteGroupOffsets: %v", got)
	}
	if got, _ := s.FetchOffsets(ctx, "g"); len(got) != 1 {
		t.Fatalf("DeleteGroupOffsets(g1) touched g: %v", got)
	}
	if groups, _ := s.ListOffsetGroups(ctx); !reflect.DeepEqual(groups, []string{"g"}) {
		t.Fatalf("ListOffsetGroups after delete = %v", groups)
	}
}

// TestGroupOffsetsOddNames: any group id is legal in Kafka, including ones
// with '/', '%' and non-ASCII; each must stay one group.
func TestGroupOffsetsOddNames(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	names := []string{"a/b", "a", "a%2Fb", "ünïcødé group", "../..", "offsets"}
	for i, g := range names {
		if err := s.CommitOffsets(ctx, g, map[TP]CommittedOffset{{"t", int32(i)}: {Offset: int64(i)}}); err != nil {
			t.Fatalf("%q: %v", g, err)
		}
	}
	for i, g := range names {
		got, err := s.FetchOffsets(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[TP{"t", int32(i)}].Offset != int64(i) {
			t.Fatalf("group %q: %v", g, got)
		}
	}
	groups, err := s.ListOffsetGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(names) {
		t.Fatalf("ListOffsetGroups = %q, want %d groups", groups, len(names))
	}
	// The keys stay under the cluster's groups prefix.
	raw := rawClient(t, nil)
	resp, err := raw.Get(ctx, "/"+cluster(t)+"/groups/a%2Fb/offsets/t/0")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("escaped key: %v %v", resp, err)
	}
}

func TestGroupOffsetsInvalid(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	tests := []struct {
		name  string
		group string
		tp    TP
		want  error
	}{
		{"empty group", "", TP{"t", 0}, ErrInvalidGroup},
		{"bad topic", "g", TP{"a/b", 0}, ErrInvalidTopic},
		{"negative partition", "g", TP{"t", -1}, ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CommitOffsets(ctx, tt.group, map[TP]CommittedOffset{tt.tp: {Offset: 1}})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := s.FetchOffsets(ctx, ""); !errors.Is(err, ErrInvalidGroup) {
		t.Fatalf("FetchOffsets(\"\") = %v", err)
	}
	if groups, err := s.ListOffsetGroups(ctx); err != nil || len(groups) != 0 {
		t.Fatalf("nothing was written, but ListOffsetGroups = %v, %v", groups, err)
	}
}

// TestGroupOffsetsChunked commits more partitions than one transaction of an
// external etcd (128 ops) may hold, against a server with that limit.
func TestGroupOffsetsChunked(t *testing.T) {
	ctx := testCtx(t)
	e := startEmbedded(t, t.TempDir(), 128)
	s := openStore(t, e, nil)
	offsets := make(map[TP]CommittedOffset)
	var tps []TP
	for i := range 300 {
		tp := TP{fmt.Sprintf("topic-%d", i%3), int32(i)}
		offsets[tp] = CommittedOffset{Offset: int64(i) * 10, LeaderEpoch: 1}
		tps = append(tps, tp)
	}
	if err := s.CommitOffsets(ctx, "big", offsets); err != nil {
		t.Fatal(err)
	}
	got, err := s.FetchOffsets(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(offsets) {
		t.Fatalf("fetched %d offsets, want %d", len(got), len(offsets))
	}
	for tp, o := range offsets {
		if got[tp].Offset != o.Offset {
			t.Fatalf("%v = %+v, want %+v", tp, got[tp], o)
		}
	}
	if err := s.DeleteOffsets(ctx, "big", tps[:200]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FetchOffsets(ctx, "big"); len(got) != 100 {
		t.Fatalf("after deleting 200: %d left", len(got))
	}
}

// TestGroupOffsetsSurviveRestart: committed offsets are in etcd, not in the
// Store, so a new Store on a restarted etcd sees them.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	e := startEmbedded(t, dir, 0)
	s := openStore(t, e, nil)
	want := map[TP]CommittedOffset{{"t", 0}: {Offset: 99, LeaderEpoch: 2, Metadata: "meta", CommitTime: time.UnixMilli(1700000000000).UTC()}}
	if err := s.CommitOffsets(ctx, "survivor", want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	e.Close()

	e2 := startEmbedded(t, dir, 0)
	s2 := openStore(t, e2, nil)
	got, err := s2.FetchOffsets(ctx, "survivor")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	// The cache ignores group keys: topics are unaffected.
	if ts := s2.Topics(); len(ts) != 0 {
		t.Fatalf("group keys showed up as topics: %v", ts)
	}
	raw := rawClient(t, e2)
	if resp, err := raw.Get(ctx, "/"+cluster(t)+"/groups/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 1 {
		t.Fatalf("raw count = %v, %v", resp, err)
	}
}
