package group

import (
	"fmt"
	"testing"
)

// The server-side assignors: range deals contiguous ranges per topic,
// uniform balances over members (heterogeneous subscriptions included)
// and keeps partitions where they were when that stays balanced.
func TestServerAssignors(t *testing.T) {
	topics := map[string]int32{"a": 6, "b": 3}
	subs := map[string][]string{"m1": {"a", "b"}, "m2": {"a", "b"}, "m3": {"a"}}
	r := assignRange(subs, topics)
	if fmt.Sprint(r["m1"]) != "map[a:[0 1] b:[0 1]]" || fmt.Sprint(r["m2"]) != "map[a:[2 3] b:[2]]" || fmt.Sprint(r["m3"]) != "map[a:[4 5]]" {
		t.Fatalf("range: %v", r)
	}

	u := assignUniform(subs, topics, map[string]parts{})
	seen, total := map[string]bool{}, 0
	for id, p := range u {
		p.each(func(tp string, n int32) {
			k := fmt.Sprintf("%s/%d", tp, n)
			if seen[k] {
				t.Fatalf("uniform: %s assigned twice: %v", k, u)
			}
			seen[k] = true
			if tp == "b" && id == "m3" {
				t.Fatalf("uniform: m3 got topic b it does not subscribe to: %v", u)
			}
		})
		total += p.count()
		if c := p.count(); c != 3 {
			t.Errorf("uniform: %s has %d partitions, want 3: %v", id, c, u)
		}
	}
	if total != 9 {
		t.Fatalf("uniform assigned %d of 9 partitions: %v", total, u)
	}

	// A fourth member joins: each old member keeps 2 of its 3 partitions
	// (sticky) and the new one gets the rest.
	subs["m4"] = []string{"a", "b"}
	u2 := assignUniform(subs, topics, u)
	for id, p := range u2 {
		kept := 0
		p.each(func(tp string, n int32) {
			if u[id].has(tp, n) {
				kept++
			}
		})
		if id != "m4" && kept < 2 {
			t.Errorf("uniform: %s kept %d of its partitions: before %v after %v", id, kept, u[id], p)
		}
		if c := p.count(); c < 2 || c > 3 {
			t.Errorf("uniform: %s has %d partitions after m4 joined: %v", id, c, u2)
		}
	}
}
