package metadata

import (
	"errors"
	"fmt"
	"testing"
)

func TestReplaceIndexAndDeleteBelow(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	other := openStore(t, nil, nil) // sees changes through its watch
	mustTopic(t, s, "roll", 1)
	tp := TP{"roll", 0}
	l, err := s.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Ten small flush entries covering offsets 0..99.
	for i := int64(0); i < 10; i++ {
		if f, err := s.CommitFlush(ctx, []PartitionCommit{commitOf(l, i*10, i*10+9)}); err != nil || len(f) != 0 {
			t.Fatalf("commit %d: fenced %v, %v", i, f, err)
		}
	}
	// Replace 20..79 with two entries of a segment object.
	seg := []IndexEntry{
		{BaseOffset: 20, LastOffset: 49, Object: "segments/a", Position: 10, Size: 300, Records: 30, MaxTimestamp: 1049},
		{BaseOffset: 50, LastOffset: 79, Object: "segments/a", Position: 310, Size: 300, Records: 30, MaxTimestamp: 1079},
	}
	if err := s.ReplaceIndex(ctx, l, 20, 79, seg); err != nil {
		t.Fatal(err)
	}
	want := "[0-9 10-19 20-49 50-79 80-89 90-99]"
	describe := func(st *Store) string {
		var out []string
		for _, e := range st.IndexEntries(tp, 0) {
			out = append(out, fmt.Sprintf("%d-%d", e.BaseOffset, e.LastOffset))
		}
		return fmt.Sprint(out)
	}
	if got := describe(s); got != want {
		t.Fatalf("after replace: %s, want %s", got, want)
	}
	eventually(t, "watching store sees the replacement", func() bool { return describe(other) == want })
	refs, err := s.ReferencedObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := refs["segments/a"]; !ok {
		t.Fatal("segment object not referenced")
	}
	if _, ok := refs[testEntry(30, 39).Object]; ok {
		t.Fatal("replaced flush entry still referenced")
	}

	// Retention: drop everything wholly below 55 (the entry 50-79 stays).
	if err := s.SetLogStartOffset(ctx, l, 55); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIndexBelow(ctx, l, 55); err != nil {
		t.Fatal(err)
	}
	want = "[50-79 80-89 90-99]"
	if got := describe(s); got != want {
		t.Fatalf("after delete below 55: %s, want %s", got, want)
	}
	eventually(t, "watching store sees the deletion", func() bool { return describe(other) == want })

	// A deposed leader can do neither.
	if _, err := other.AcquireLeadership(ctx, tp, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceIndex(ctx, l, 80, 99, []IndexEntry{{BaseOffset: 80, LastOffset: 99, Object: "x", Size: 1}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("replace by deposed leader: %v, want ErrFenced", err)
	}
	if err := s.DeleteIndexBelow(ctx, l, 90); !errors.Is(err, ErrFenced) {
		t.Fatalf("delete by deposed leader: %v, want ErrFenced", err)
	}
	// Replacements must cover the range exactly.
	if err := s.ReplaceIndex(ctx, l, 80, 99, []IndexEntry{{BaseOffset: 80, LastOffset: 90}}); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("short replacement: %v, want ErrInvalidCommit", err)
	}
}
