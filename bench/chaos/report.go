package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Markdown renders the report: the faults, the checks, the availability
// per partition, the evidence of every violation and the replay command.
func (r *Report) Markdown() string {
	var b strings.Builder
	verdict := "PASS"
	if r.Failed() {
		verdict = fmt.Sprintf("FAIL: %d violation line(s)", len(r.Violations))
	}
	fmt.Fprintf(&b, "## strata-chaos seed %d, %s of faults under load: %s\n\n", r.Seed, r.Duration, verdict)
	fmt.Fprintf(&b, "Replay: `%s`  \n", r.Replay)
	fmt.Fprintf(&b, "Strata: %s  \n", r.Strata)
	fmt.Fprintf(&b, "Wall time %s; lease TTL %s, recovery limit %s; logs under `%s`\n\n", r.Wall.Round(time.Second), r.LeaseTTL, r.Limit, r.Dir)

	counts := map[Kind]int{}
	notes := map[Kind][]string{}
	skipped := 0
	for _, e := range r.Events {
		if e.Skipped != "" {
			skipped++
			continue
		}
		counts[e.Fault.Kind]++
		if e.HealErr != nil {
			notes[e.Fault.Kind] = append(notes[e.Fault.Kind], fmt.Sprintf("#%d heal failed", e.Fault.Seq))
		}
	}
	b.WriteString("| fault | applied |\n|---|---:|\n")
	total := 0
	for _, k := range Kinds {
		n := counts[k]
		total += n
		extra := ""
		if len(notes[k]) > 0 {
			extra = " (" + strings.Join(notes[k], ", ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %d%s |\n", k, n, extra)
	}
	fmt.Fprintf(&b, "| **total** | **%d** |\n\n", total)

	ok := func(n int) string {
		if n == 0 {
			return "ok"
		}
		return "**VIOLATION**"
	}
	b.WriteString("| check | count | verdict |\n|---|---:|---|\n")
	fmt.Fprintf(&b, "| acks=all records acknowledged (of %d sent; %d failed, %d unanswered at the end) | %d | |\n",
		r.AttemptedAll, r.FailedAll, r.UnfinishedAll, r.AckedAll)
	fmt.Fprintf(&b, "| final probe records (one produce+fetch per partition) | %d | |\n", r.Probes)
	fmt.Fprintf(&b, "| acks=all lost | %d | %s |\n", r.Lost, ok(r.Lost))
	fmt.Fprintf(&b, "| acks=all duplicated | %d | %s |\n", r.Duplicated, ok(r.Duplicated))
	fmt.Fprintf(&b, "| acks=all reordered (per producer and partition) | %d | %s |\n", r.Reordered, ok(r.Reordered))
	fmt.Fprintf(&b, "| acks=all misplaced (not at the acknowledged partition/offset) | %d | %s |\n", r.Misplaced, ok(r.Misplaced))
	fmt.Fprintf(&b, "| offset conflicts (two values at one offset) | %d | %s |\n", r.Conflicts, ok(r.Conflicts))
	fmt.Fprintf(&b, "| skips (a reader jumped over live offsets) | %d | %s |\n", r.Skips, ok(r.Skips))
	fmt.Fprintf(&b, "| committed-offset regressions (of %d commits seen in %d polls) | %d | %s |\n", r.CommitsSeen, r.CommitPolls, r.Regressions, ok(r.Regressions))
	fmt.Fprintf(&b, "| records below a DeleteRecords point still served (%d requests, %d ok) | %d | %s |\n", r.DeleteRequests, r.DeleteOK, r.DeletedServed, ok(r.DeletedServed))
	fmt.Fprintf(&b, "| acked records below a DeleteRecords point (expected gone) | %d | |\n", r.Deleted)
	fmt.Fprintf(&b, "| reader data-loss reports (kgo.ErrDataLoss) | %d | %s |\n", r.DataLoss, ok(r.DataLoss))
	fmt.Fprintf(&b, "| partitions the final read could not finish in time | %d | %s |\n", r.Incomplete, ok(r.Incomplete))
	if r.Incomplete > 0 {
		fmt.Fprintf(&b, "| acked records past where that read stopped: not verified (acks=all, acks=1) | %d, %d | |\n", r.Unverified, r.UnverifiedOne)
	}
	fmt.Fprintf(&b, "| nodes that did not come back | %d | %s |\n", r.NodeDown, ok(r.NodeDown))
	fmt.Fprintf(&b, "| acks=1 records acknowledged (of %d sent) | %d | |\n", r.AttemptedOne, r.AckedOne)
	fmt.Fprintf(&b, "| acks=1 lost (allowed) | %d | |\n", r.LostOne)
	fmt.Fprintf(&b, "| acks=1 duplicated (allowed) | %d | |\n\n", r.DupOne)
	if c := r.Compact; c != nil {
		b.WriteString("| compacted topic (200 keys) | count | verdict |\n|---|---:|---|\n")
		fmt.Fprintf(&b, "| updates sent / failed | %d / %d | |\n", c.Sent, c.Failed)
		fmt.Fprintf(&b, "| records the final read got (compacted) | %d | |\n", c.Records)
		fmt.Fprintf(&b, "| keys whose last value read is older than their newest ack | %d | %s |\n", c.Stale, ok(c.Stale))
		fmt.Fprintf(&b, "| acknowledged keys never read | %d | %s |\n", c.Missing, ok(c.Missing))
		fmt.Fprintf(&b, "| offsets that did not increase | %d | %s |\n\n", c.Backwards, ok(c.Backwards))
	}
	if t := r.Txn; t != nil {
		b.WriteString("| transactions (read_committed) | count | verdict |\n|---|---:|---|\n")
		fmt.Fprintf(&b, "| committed (acknowledged) | %d | |\n", t.Committed)
		fmt.Fprintf(&b, "| aborted | %d | |\n", t.Aborted)
		fmt.Fprintf(&b, "| commit answer lost (visible whole / invisible) | %d / %d | |\n", t.UnknownVisible, t.Unknown-t.UnknownVisible)
		fmt.Fprintf(&b, "| records read by the final read_committed read | %d | |\n", t.Records)
		fmt.Fprintf(&b, "| aborted transactions read | %d | %s |\n", t.AbortedRead, ok(t.AbortedRead))
		fmt.Fprintf(&b, "| committed transactions not read whole | %d | %s |\n", t.CommittedMissing, ok(t.CommittedMissing))
		fmt.Fprintf(&b, "| transactions partly visible | %d | %s |\n", t.Partial, ok(t.Partial))
		fmt.Fprintf(&b, "| records read twice (two offsets) | %d | %s |\n", t.Duplicates, ok(t.Duplicates))
		fmt.Fprintf(&b, "| records read before their commit began (past the LSO) | %d | %s |\n", t.Early, ok(t.Early))
		fmt.Fprintf(&b, "| records read live, gone from the final read | %d | %s |\n\n", t.Vanished, ok(t.Vanished))
	}

	if s := r.Share; s != nil {
		b.WriteString("| share group (KIP-932) | count | verdict |\n|---|---:|---|\n")
		fmt.Fprintf(&b, "| records produced (acknowledged) | %d | |\n", s.Produced)
		fmt.Fprintf(&b, "| accepted / rejected (confirmed) | %d / %d | |\n", s.Accepted, s.Rejected)
		fmt.Fprintf(&b, "| accepted or rejected, confirmation cut off by a fault, stored as done | %d | |\n", s.Unconfirmed)
		fmt.Fprintf(&b, "| deliveries / records delivered more than once (allowed) | %d / %d | |\n", s.Deliveries, s.Redelivered)
		fmt.Fprintf(&b, "| delivered after a confirmed accept or reject | %d | %s |\n", s.AfterDone, ok(s.AfterDone))
		fmt.Fprintf(&b, "| acceptance confirmed twice | %d | %s |\n", s.AcceptedTwice, ok(s.AcceptedTwice))
		fmt.Fprintf(&b, "| produced, never accepted or rejected (lost) | %d | %s |\n\n", s.Lost, ok(s.Lost))
	}
	fmt.Fprintf(&b, "| partition | acks | reads | longest gap between acks (faults included) | worst produce recovery after a heal | worst fetch recovery after a heal | verdict |\n|---:|---:|---:|---|---|---|---|\n")
	after := func(d time.Duration, seq int) string {
		if seq == 0 {
			return "-"
		}
		return fmt.Sprintf("%s (after #%d)", d.Round(time.Millisecond), seq)
	}
	for _, a := range r.Avail {
		v := "ok"
		if a.Violation {
			v = "**VIOLATION**"
		}
		fmt.Fprintf(&b, "| %d | %d | %d | %s (from +%s) | %s | %s | %s |\n", a.Partition, a.Acks, a.Reads,
			a.LongestGap.Round(time.Millisecond), fmtDur(a.GapFrom), after(a.WorstProduce, a.ProduceAfter), after(a.WorstFetch, a.FetchAfter), v)
	}
	b.WriteString("\n")

	b.WriteString("Faults:\n\n")
	for _, e := range r.Events {
		switch {
		case e.Skipped != "":
			fmt.Fprintf(&b, "- #%d skipped (%s): %s\n", e.Fault.Seq, e.Skipped, e.Fault.Describe())
		case e.Healed < 0:
			fmt.Fprintf(&b, "- #%d +%s %s; not healed: %v\n", e.Fault.Seq, fmtDur(e.Applied), e.Fault.Describe(), e.HealErr)
		default:
			res := e.Note
			if e.HealErr != nil {
				res = "heal failed: " + e.HealErr.Error()
			}
			fmt.Fprintf(&b, "- #%d +%s → +%s %s: %s\n", e.Fault.Seq, fmtDur(e.Applied), fmtDur(e.Healed), e.Fault.Describe(), res)
		}
	}
	b.WriteString("\n")
	if len(r.Violations) > 0 {
		b.WriteString("Violations:\n\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "- %s\n", v)
		}
		b.WriteString("\nLogs:\n\n")
		for _, l := range r.Logs {
			fmt.Fprintf(&b, "- `%s`\n", l)
		}
		b.WriteString("\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("Notes:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	if len(r.FailErrs) > 0 || len(r.ReaderErrs) > 0 {
		b.WriteString("Client errors (not violations by themselves):\n\n")
		for _, m := range []map[string]int{r.FailErrs, r.ReaderErrs} {
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
			if len(keys) > 10 {
				keys = keys[:10]
			}
			for _, k := range keys {
				fmt.Fprintf(&b, "- %d× %s\n", m[k], k)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
