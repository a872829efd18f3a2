package chaos

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PartAvail is one acks=all partition's availability during the run.
type PartAvail struct {
	Partition int32
	Acks      int
	// LongestGap is the longest time without an acknowledgement while the
	// producers ran (faults included), and when it began.
	LongestGap time.Duration
	GapFrom    time.Duration
	// Reads counts the records direct readers received from it.
	Reads int
	// WorstProduce is the longest time from a fault's heal to the
	// partition's next acknowledgement, WorstFetch to the next record a
	// direct reader received (for the last heal: to the final probe's
	// produce and fetch), each with the fault's number (0: none).
	WorstProduce, WorstFetch time.Duration
	ProduceAfter, FetchAfter int
	Violation                bool
}

// Report is the outcome of a run. A run with violations found a bug in
// Strata (or the checker); a harness error is reported by Run as an
// error instead.
type Report struct {
	Seed     uint64
	Duration time.Duration
	Replay   string // the command that replays the run
	Strata   string // which strata binary ran
	Dir      string
	Logs     []string
	Wall     time.Duration
	LeaseTTL time.Duration
	Limit    time.Duration // longest allowed recovery

	Events []Event

	AttemptedAll, AckedAll, FailedAll, UnfinishedAll int64
	Probes                                           int
	Lost, Duplicated, Reordered, Misplaced           int
	Conflicts, Skips, Regressions, DeletedServed     int
	DataLoss, Incomplete, NodeDown                   int
	Deleted                                          int // acked records below a DeleteRecords point (expected gone)
	Unverified, UnverifiedOne                        int // acked records past where an incomplete final read stopped
	DupUnacked                                       int // values never acknowledged but stored twice (not a violation)
	Rewinds                                          int // a direct reader went back to an offset it had read (not a violation)
	AttemptedOne, AckedOne, LostOne, DupOne          int64
	CommitsSeen, CommitPolls, CommitErrors           int64
	DeleteRequests, DeleteOK                         int
	FinalParts                                       int32
	FailErrs                                         map[string]int
	ReaderErrs                                       map[string]int

	Avail []PartAvail

	// Txn is the transactional workload's verdict (nil: not run).
	Txn *TxnResult
	// Compact is the compacted workload's verdict (nil: not run).
	Compact *CompactResult
	// Share is the share-group workload's verdict (nil: not run).
	Share *ShareResult

	// Violations holds the evidence, one line each (capped per kind).
	Violations []string
	// Notes are things worth knowing that are not violations.
	Notes []string
}

// Failed reports whether the run found a violation.
func (r *Report) Failed() bool {
	return len(r.Violations) > 0 || r.Txn != nil && r.Txn.Violations() > 0 || r.Compact != nil && r.Compact.Violations() > 0 ||
		r.Share != nil && r.Share.Violations() > 0
}

// evidence collects violation lines, at most cap per kind.
type evidence struct {
	lines  []string
	counts map[string]int
}

const evidenceCap = 8

func (e *evidence) add(kind, format string, args ...any) {
	if e.more(kind) {
		e.lines = append(e.lines, kind+": "+fmt.Sprintf(format, args...))
	}
}

// more counts one violation of kind and says whether its evidence is still
// wanted (callers with costly evidence ask first).
func (e *evidence) more(kind string) bool {
	if e.counts == nil {
		e.counts = map[string]int{}
	}
	e.counts[kind]++
	return e.counts[kind] <= evidenceCap
}

func (e *evidence) finish() []string {
	var kinds []string
	for k, n := range e.counts {
		if n > evidenceCap {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		e.lines = append(e.lines, fmt.Sprintf("%s: ... and %d more", k, e.counts[k]-evidenceCap))
	}
	return e.lines
}

// activeAt names the faults applied at time t (since the run started), or
// the last one healed before it.
func activeAt(events []Event, t time.Duration) string {
	var on []string
	last := ""
	for _, ev := range events {
		if ev.Skipped != "" {
			continue
		}
		healed := ev.Healed
		if healed < 0 {
			healed = 1 << 62
		}
		if ev.Applied <= t && t <= healed {
			on = append(on, fmt.Sprintf("#%d %s", ev.Fault.Seq, ev.Fault.Describe()))
		} else if healed < t {
			last = fmt.Sprintf("#%d %s (healed at +%s)", ev.Fault.Seq, ev.Fault.Describe(), fmtDur(healed))
		}
	}
	if len(on) > 0 {
		return "during " + strings.Join(on, ", ")
	}
	if last != "" {
		return "after " + last
	}
	return "before any fault"
}

// parseValue splits a load value "<producer>-<partition>-<seq>".
func parseValue(v string) (prod string, part int32, seq int64, ok bool) {
	a := strings.Split(v, "-")
	if len(a) != 3 {
		return "", 0, 0, false
	}
	p, err1 := strconv.ParseInt(a[1], 10, 32)
	s, err2 := strconv.ParseInt(a[2], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, 0, false
	}
	return a[0], int32(p), s, true
}

// checkInput is what the checks look at.
type checkInput struct {
	rec       *Recorder
	events    []Event
	all, one  *FinalRead
	topicAll  string
	topicOne  string
	starts    map[int32]time.Duration // when producing to each acks=all partition began
	loadEnd   time.Duration
	probes    map[tp]probeResult
	limit     time.Duration
	unfinish  int64
	nodesDown []string
}

// check runs every check and fills the report's counts, availability and
// evidence.
func check(in checkInput, rep *Report) {
	var ev evidence
	rec := in.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()

	rep.AttemptedAll, rep.AckedAll = rec.attempted, int64(len(rec.acks))
	rep.FailedAll, rep.UnfinishedAll = int64(len(rec.failed)), in.unfinish
	rep.AttemptedOne, rep.AckedOne = rec.attempted1, int64(len(rec.acks1))
	rep.FailErrs = map[string]int{}
	for k, n := range rec.failErrs {
		rep.FailErrs["acks=all: "+k] += n
	}
	for k, n := range rec.failErrs1 {
		rep.FailErrs["acks=1: "+k] += n
	}
	rep.Probes = len(rec.probes)
	if rec.unsent > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d records to just-added partitions were refused by their client before sending (its metadata did not show the partition yet)", rec.unsent))
	}
	rep.FinalParts = in.all.Parts
	for _, d := range rec.deletes {
		rep.DeleteRequests++
		if d.OK {
			rep.DeleteOK++
		}
	}
	maxDel := func(p int32, t time.Duration, okOnly bool) int64 {
		m := int64(0)
		for _, d := range rec.deletes {
			if d.Partition == p && d.Time <= t && (d.OK || !okOnly) && d.Offset > m {
				m = d.Offset
			}
		}
		return m
	}
	const forever = time.Duration(1 << 62)

	for _, s := range in.nodesDown {
		rep.NodeDown++
		ev.add("node down", "%s", s)
	}
	for _, e := range in.events {
		if e.HealErr != nil && e.Violation {
			rep.NodeDown++
			ev.add("node down", "fault #%d (%s): %v", e.Fault.Seq, e.Fault.Describe(), e.HealErr)
		}
	}

	// The final read of each topic: where every value is.
	type pos struct {
		p   int32
		off int64
	}
	where := func(fr *FinalRead) map[string][]pos {
		m := map[string][]pos{}
		for p, rs := range fr.Recs {
			for _, r := range rs {
				m[r.Value] = append(m[r.Value], pos{p, r.Offset})
			}
		}
		return m
	}
	for _, fr := range []*FinalRead{in.all, in.one} {
		for _, s := range fr.Incomplete {
			rep.Incomplete++
			ev.add("final read incomplete", "%s", s)
		}
	}
	whereAll, whereOne := where(in.all), where(in.one)

	// Every acknowledged acks=all record (and probe) exactly once, where its
	// ack said.
	checkAcked := func(a Ack, w map[string][]pos, fr *FinalRead) {
		ps := w[a.Value]
		switch {
		case len(ps) == 0:
			if a.At.Offset < fr.LogStart[a.At.Partition] && a.At.Offset < maxDel(a.At.Partition, forever, false) {
				rep.Deleted++
				return
			}
			if fr.ReadTo != nil && a.At.Offset >= fr.ReadTo[a.At.Partition] {
				rep.Unverified++ // past where an incomplete final read stopped
				return
			}
			rep.Lost++
			if ev.counts["lost"] >= evidenceCap {
				ev.more("lost")
				return
			}
			ev.add("lost", "%q acked at %s/%d offset %d at +%s (%s); final log of the partition is [%d, %d)",
				a.Value, a.At.Topic, a.At.Partition, a.At.Offset, fmtDur(a.Time), activeAt(in.events, a.Time),
				fr.LogStart[a.At.Partition], fr.HWM[a.At.Partition])
		case len(ps) > 1:
			rep.Duplicated++
			ev.add("duplicated", "%q acked at %s/%d offset %d (+%s, %s) is stored %d times: %v",
				a.Value, a.At.Topic, a.At.Partition, a.At.Offset, fmtDur(a.Time), activeAt(in.events, a.Time), len(ps), ps)
		case ps[0].p != a.At.Partition || ps[0].off != a.At.Offset:
			rep.Misplaced++
			ev.add("misplaced", "%q acked at %s/%d offset %d (+%s, %s) is at partition %d offset %d",
				a.Value, a.At.Topic, a.At.Partition, a.At.Offset, fmtDur(a.Time), activeAt(in.events, a.Time), ps[0].p, ps[0].off)
		}
	}
	for _, a := range rec.acks {
		checkAcked(a, whereAll, in.all)
	}
	for _, a := range rec.probes {
		if a.At.Topic == in.topicAll {
			checkAcked(a, whereAll, in.all)
		} else {
			checkAcked(a, whereOne, in.one)
		}
	}
	for v, ps := range whereAll {
		if len(ps) > 1 {
			if _, acked := rec.acks[v]; !acked {
				if _, probe := rec.probes[v]; !probe {
					rep.DupUnacked++
				}
			}
		}
	}
	if rep.DupUnacked > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d never-acknowledged acks=all values are stored more than once", rep.DupUnacked))
	}

	// Produce order per producer and partition, and values in the right
	// partition.
	for p := range in.all.Parts {
		last := map[string]int64{}
		lastOff := map[string]int64{}
		for _, r := range in.all.Recs[p] {
			prod, part, seq, ok := parseValue(r.Value)
			if !ok {
				continue // a probe
			}
			if part != p {
				rep.Misplaced++
				ev.add("misplaced", "%q produced to partition %d is in partition %d at offset %d", r.Value, part, p, r.Offset)
				continue
			}
			if prev, ok := last[prod]; ok && seq < prev {
				rep.Reordered++
				ev.add("reordered", "partition %s/%d: %q at offset %d after %s-%d-%d at offset %d",
					in.topicAll, p, r.Value, r.Offset, prod, p, prev, lastOff[prod])
				continue
			}
			last[prod], lastOff[prod] = seq, r.Offset
		}
	}

	// DeleteRecords: nothing below a delete point that was answered OK.
	for p := range in.all.Parts {
		m := maxDel(p, forever, true)
		if in.all.LogStart[p] < m {
			rep.DeletedServed++
			ev.add("deleted records served", "%s/%d: log start %d after DeleteRecords to %d", in.topicAll, p, in.all.LogStart[p], m)
		}
		for _, r := range in.all.Recs[p] {
			if r.Offset < m {
				rep.DeletedServed++
				ev.add("deleted records served", "%s/%d offset %d (%q) read after DeleteRecords to %d", in.topicAll, p, r.Offset, r.Value, m)
			}
		}
		if ls := in.all.LogStart[p]; ls > maxDel(p, forever, false) {
			ev.add("log start too far", "%s/%d: log start %d, but DeleteRecords asked for at most %d", in.topicAll, p, ls, maxDel(p, forever, false))
		}
	}
	for p := range in.one.Parts {
		if ls := in.one.LogStart[p]; ls > 0 {
			ev.add("log start too far", "%s/%d: log start %d without any DeleteRecords", in.topicOne, p, ls)
		}
	}

	// acks=1: losses and duplicates are reported, not violations.
	for _, a := range rec.acks1 {
		switch n := len(whereOne[a.Value]); {
		case n == 0 && in.one.ReadTo != nil && a.At.Offset >= in.one.ReadTo[a.At.Partition]:
			rep.UnverifiedOne++
		case n == 0:
			rep.LostOne++
		case n > 1:
			rep.DupOne++
		}
	}

	// Offset conflicts between any two sightings.
	rep.Conflicts = len(rec.conflicts)
	for _, c := range rec.conflicts {
		ev.add("offset conflict", "%s/%d offset %d: %q (%s at +%s) then %q (%s at +%s), %s",
			c.At.Topic, c.At.Partition, c.At.Offset, c.First.Value, c.First.Who, fmtDur(c.First.At),
			c.Second.Value, c.Second.Who, fmtDur(c.Second.At), activeAt(in.events, c.Second.At))
	}

	// Skips: a direct reader's consecutive records in a partition leave no
	// gap except below a DeleteRecords point.
	rep.ReaderErrs = map[string]int{}
	for _, l := range rec.readers {
		l.mu.Lock()
		for k, n := range l.errs {
			rep.ReaderErrs[l.name+": "+k] += n
		}
		for _, s := range l.dataLoss {
			rep.DataLoss++
			ev.add("reader data loss", "%s: %s", l.name, s)
		}
		if !l.group {
			for k, rs := range l.parts {
				prev := int64(-1)
				for _, r := range rs {
					if r.Offset > prev+1 {
						var del int64
						if k.Topic == in.topicAll {
							del = maxDel(k.Partition, r.Time, false)
						}
						if r.Offset > del {
							rep.Skips++
							ev.add("skip", "%s read %s/%d offset %d then %d at +%s (highest DeleteRecords point then: %d), %s",
								l.name, k.Topic, k.Partition, prev, r.Offset, fmtDur(r.Time), del, activeAt(in.events, r.Time))
						}
					} else if r.Offset <= prev {
						rep.Rewinds++
					}
					prev = r.Offset
				}
			}
		}
		l.mu.Unlock()
	}
	if rep.Rewinds > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("direct readers went back %d times to offsets they had read (a reset; values compared as conflicts)", rep.Rewinds))
	}

	// Committed group offsets never go backwards.
	rep.CommitsSeen, rep.CommitPolls, rep.CommitErrors = rec.commitSeen, rec.commitPolls, rec.commitErrors
	rep.Regressions = len(rec.regressions)
	for _, g := range rec.regressions {
		ev.add("committed offset regression", "%s/%d: %d (node %d at +%s) → %d (node %d at +%s), %s", g.At.Topic, g.At.Partition,
			g.From, g.FromNode, fmtDur(g.FromTime), g.To, g.ToNode, fmtDur(g.Time), activeAt(in.events, g.Time))
	}

	// Availability of each acks=all partition.
	rep.Avail = availability(in, rec, &ev)
	rep.Violations = ev.finish()
}

// heal is one fault's heal time and the next fault's apply time.
type heal struct {
	seq        int
	at, before time.Duration
}

func availability(in checkInput, rec *Recorder, ev *evidence) []PartAvail {
	var heals []heal
	var applied []Event
	for _, e := range in.events {
		if e.Skipped == "" && e.Healed >= 0 {
			applied = append(applied, e)
		}
	}
	for i, e := range applied {
		h := heal{seq: e.Fault.Seq, at: e.Healed, before: in.loadEnd}
		if i+1 < len(applied) {
			h.before = applied[i+1].Applied
		}
		heals = append(heals, h)
	}
	var out []PartAvail
	for p := range in.all.Parts {
		start, ok := in.starts[p]
		if !ok {
			continue // added but never produced to: the final checks cover it
		}
		ts := rec.ackTimes[p]
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		a := PartAvail{Partition: p, Acks: len(ts)}
		prev := start
		for _, t := range append(append([]time.Duration(nil), ts...), in.loadEnd) {
			if t < prev {
				continue
			}
			if t-prev > a.LongestGap {
				a.LongestGap, a.GapFrom = t-prev, prev
			}
			prev = t
		}
		probeAt := time.Duration(-1)
		if pr, ok := in.probes[tp{in.topicAll, p}]; ok && pr.OK {
			probeAt = pr.At
		}
		// Fetches: when any direct reader received a record of p.
		var rs []time.Duration
		for _, l := range rec.readers {
			if l.group || strings.HasPrefix(l.name, "final") {
				continue
			}
			for _, r := range l.parts[tp{in.topicAll, p}] {
				rs = append(rs, r.Time)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
		a.Reads = len(rs)
		// firstAfter is how long after heal h the partition first served
		// (ts: acks or reads), and whether that can be judged: a wait cut
		// short by the next fault is judged only if it already exceeds the
		// limit.
		firstAfter := func(ts []time.Duration, h heal, last bool) (time.Duration, bool) {
			j := sort.Search(len(ts), func(i int) bool { return ts[i] >= h.at })
			switch {
			case j < len(ts) && ts[j] <= h.before:
				return ts[j] - h.at, true
			case last && probeAt >= 0:
				return probeAt - h.at, true // the last heal: the final probe
			case last:
				return rec.since() - h.at, true // never served again
			default:
				return h.before - h.at, h.before-h.at > in.limit
			}
		}
		for i, h := range heals {
			if h.at < start {
				continue
			}
			last := i == len(heals)-1
			prod, pj := firstAfter(ts, h, last)
			fetch, fj := firstAfter(rs, h, last)
			for _, x := range []struct {
				what   string
				d      time.Duration
				judged bool
			}{{"produce", prod, pj}, {"fetch", fetch, fj}} {
				if !x.judged {
					continue
				}
				if x.what == "produce" && x.d > a.WorstProduce {
					a.WorstProduce, a.ProduceAfter = x.d, h.seq
				}
				if x.what == "fetch" && x.d > a.WorstFetch {
					a.WorstFetch, a.FetchAfter = x.d, h.seq
				}
				if x.d > in.limit {
					a.Violation = true
					ev.add("unavailable", "%s/%d: no %s succeeded for %s after fault #%d healed at +%s (limit %s)",
						in.topicAll, p, x.what, x.d.Round(time.Millisecond), h.seq, fmtDur(h.at), in.limit)
				}
			}
		}
		if len(heals) == 0 {
			// No fault: the final probe must still succeed in time.
			if probeAt < 0 {
				a.Violation = true
				ev.add("unavailable", "%s/%d: the final probe never succeeded", in.topicAll, p)
			}
		}
		out = append(out, a)
	}
	for k, pr := range in.probes {
		if !pr.OK {
			ev.add("unavailable", "%s/%d: final produce+fetch probe failed: %s", k.Topic, k.Partition, pr.Error)
		}
	}
	return out
}
