package chaos

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPlanIsSeededAndFits(t *testing.T) {
	cfg := PlanConfig{Seed: 7, Length: 5 * time.Minute, Warmup: 3 * time.Second, Tail: 15 * time.Second, LeaseTTL: 10 * time.Second, Nodes: 3}
	a, b := Plan(cfg), Plan(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two plans")
	}
	cfg.Seed = 8
	if reflect.DeepEqual(a, Plan(cfg)) {
		t.Fatal("two seeds gave the same plan")
	}
	kinds := map[Kind]bool{}
	prevEnd := time.Duration(0)
	for _, f := range a {
		kinds[f.Kind] = true
		if f.Start < cfg.Warmup || f.Start+f.Expected(cfg.LeaseTTL) > cfg.Length-cfg.Tail || f.Start < prevEnd {
			t.Fatalf("fault #%d %s at %v for %v is outside [%v, %v] or overlaps the one before", f.Seq, f.Kind, f.Start, f.Dur, cfg.Warmup, cfg.Length-cfg.Tail)
		}
		if f.Kind == PauseNode && f.Dur <= cfg.LeaseTTL {
			t.Fatalf("a node pause of %v does not outlast the lease", f.Dur)
		}
		prevEnd = f.Start + f.Expected(cfg.LeaseTTL)
	}
	if len(kinds) != len(Kinds) {
		t.Fatalf("5 minutes of plan use %d of the %d fault kinds", len(kinds), len(Kinds))
	}
}

// scenario builds a check input from a few records: partition 0 of topic
// "all" with acks at offsets 0..n-1, and what the final read saw.
type scenario struct {
	rec     *Recorder
	all     *FinalRead
	one     *FinalRead
	events  []Event
	loadEnd time.Duration
}

func newScenario(n int) *scenario {
	s := &scenario{
		rec:     NewRecorder(time.Now()),
		all:     &FinalRead{Topic: "all", Parts: 1, LogStart: map[int32]int64{0: 0}, HWM: map[int32]int64{0: int64(n)}, Recs: map[int32][]readRec{}},
		one:     &FinalRead{Topic: "one", Parts: 1, LogStart: map[int32]int64{0: 0}, HWM: map[int32]int64{0: 0}, Recs: map[int32][]readRec{}},
		loadEnd: time.Duration(n) * time.Millisecond,
	}
	for i := range n {
		v := fmt.Sprintf("a0-0-%d", i)
		o := tpo{tp{"all", 0}, int64(i)}
		s.rec.mu.Lock()
		s.rec.acks[v] = Ack{At: o, Value: v, Time: time.Duration(i) * time.Millisecond}
		s.rec.ackTimes[0] = append(s.rec.ackTimes[0], time.Duration(i)*time.Millisecond)
		s.rec.seen[o] = sighting{Value: v, Who: "a0 ack"}
		s.rec.mu.Unlock()
		s.all.Recs[0] = append(s.all.Recs[0], readRec{Offset: int64(i), Value: v})
	}
	return s
}

func (s *scenario) check(t *testing.T) *Report {
	t.Helper()
	rep := &Report{}
	check(checkInput{
		rec: s.rec, events: s.events, all: s.all, one: s.one, topicAll: "all", topicOne: "one",
		starts: map[int32]time.Duration{0: 0}, loadEnd: s.loadEnd,
		probes: map[tp]probeResult{{"all", 0}: {OK: true, At: s.loadEnd}},
		limit:  20 * time.Second,
	}, rep)
	return rep
}

func TestCheckCleanRun(t *testing.T) {
	s := newScenario(10)
	l := s.rec.newReader("reader0", false)
	for i := range 10 {
		s.rec.read(l, tpo{tp{"all", 0}, int64(i)}, fmt.Sprintf("a0-0-%d", i))
	}
	if rep := s.check(t); rep.Failed() {
		t.Fatalf("a clean run failed: %v", rep.Violations)
	}
}

func TestCheckFindsViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(s *scenario)
		count func(r *Report) int
		want  string
	}{
		{"lost", func(s *scenario) { s.all.Recs[0] = s.all.Recs[0][:9] }, func(r *Report) int { return r.Lost }, "lost"},
		{"duplicated", func(s *scenario) {
			s.all.Recs[0] = append(s.all.Recs[0], readRec{Offset: 10, Value: "a0-0-3"})
		}, func(r *Report) int { return r.Duplicated }, "duplicated"},
		{"reordered", func(s *scenario) {
			r := s.all.Recs[0]
			r[4].Value, r[5].Value = r[5].Value, r[4].Value
		}, func(r *Report) int { return r.Reordered }, "reordered"},
		{"conflict", func(s *scenario) {
			s.rec.read(s.rec.newReader("reader0", false), tpo{tp{"all", 0}, 2}, "other")
		}, func(r *Report) int { return r.Conflicts }, "offset conflict"},
		{"skip", func(s *scenario) {
			l := s.rec.newReader("reader0", false)
			s.rec.read(l, tpo{tp{"all", 0}, 0}, "a0-0-0")
			s.rec.read(l, tpo{tp{"all", 0}, 2}, "a0-0-2")
		}, func(r *Report) int { return r.Skips }, "skip"},
		{"regression", func(s *scenario) {
			s.rec.committed(map[string]map[int32]int64{"all": {0: 5}}, 1, nil)
			s.rec.committed(map[string]map[int32]int64{"all": {0: 3}}, 2, nil)
		}, func(r *Report) int { return r.Regressions }, "committed offset regression"},
		{"deleted served", func(s *scenario) {
			i := s.rec.deleteSent(0, 4)
			s.rec.deleteDone(i, 4, true)
		}, func(r *Report) int { return r.DeletedServed }, "deleted records served"},
		{"unavailable", func(s *scenario) {
			s.events = []Event{{Fault: Fault{Seq: 1, Kind: PauseMinIO}, Applied: 0, Healed: time.Millisecond}}
			s.rec.ackTimes[0] = nil
			s.loadEnd = time.Minute
		}, func(r *Report) int {
			n := 0
			for _, a := range r.Avail {
				if a.Violation {
					n++
				}
			}
			return n
		}, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(10)
			tc.spoil(s)
			rep := s.check(t)
			if tc.count(rep) == 0 || !rep.Failed() {
				t.Fatalf("not found: %+v", rep)
			}
			found := false
			for _, v := range rep.Violations {
				found = found || strings.HasPrefix(v, tc.want)
			}
			if !found {
				t.Fatalf("evidence %q, want a %q line", rep.Violations, tc.want)
			}
		})
	}
}

func TestCheckAllowsDeletesAndAcksOneLoss(t *testing.T) {
	s := newScenario(10)
	i := s.rec.deleteSent(0, 4)
	s.rec.deleteDone(i, 4, true)
	s.all.LogStart[0] = 4
	s.all.Recs[0] = s.all.Recs[0][4:]
	l := s.rec.newReader("reader0", false)
	s.rec.read(l, tpo{tp{"all", 0}, 1}, "a0-0-1")
	s.rec.read(l, tpo{tp{"all", 0}, 4}, "a0-0-4") // jumped to the new log start
	s.rec.ackOne(tpo{tp{"one", 0}, 0}, "b0-0-0")
	rep := s.check(t)
	if rep.Failed() {
		t.Fatalf("violations: %v", rep.Violations)
	}
	if rep.Deleted != 4 || rep.LostOne != 1 {
		t.Fatalf("deleted %d (want 4), acks=1 lost %d (want 1)", rep.Deleted, rep.LostOne)
	}
}
