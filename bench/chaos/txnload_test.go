package chaos

import (
	"testing"
	"time"
)

// TestEvalTxnsFindsEachViolation feeds the transactional check one clean
// transaction of each outcome and one of each violation, and expects
// exactly those violations to be counted.
func TestEvalTxnsFindsEachViolation(t *testing.T) {
	t0 := time.Unix(1000, 0)
	txns := map[string]*txnRecord{
		"p-0": {size: 2, outcome: txnCommitted, commitStart: t0},
		"p-1": {size: 1, outcome: txnAborted},
		"p-2": {size: 2, outcome: txnUnknown, commitStart: t0},
		"p-3": {size: 1, outcome: txnAborted},                                   // read: violation
		"p-4": {size: 3, outcome: txnCommitted, commitStart: t0},                // one missing
		"p-5": {size: 2, outcome: txnUnknown, commitStart: t0},                  // half read
		"p-6": {size: 1, outcome: txnCommitted, commitStart: t0.Add(time.Hour)}, // read before its commit
	}
	final := map[string]string{
		"p-0-0-of-2": "0/0", "p-0-1-of-2": "1/0",
		"p-2-0-of-2": "0/1", "p-2-1-of-2": "1/1",
		"p-3-0-of-1": "0/2",
		"p-4-0-of-3": "0/3", "p-4-1-of-3": "1/3",
		"p-5-0-of-2": "0/4",
		"p-6-0-of-1": "0/5",
	}
	seen := map[string]time.Time{"p-0-0-of-2": t0.Add(time.Second), "p-6-0-of-1": t0, "p-9-0-of-1": t0}
	at := map[string]string{"p-9-0-of-1": "3/9"}
	res := evalTxns(txns, seen, at, final, []string{"p-0-1-of-2 at 1/0 and 2/0"}, 0, evidence{})
	want := TxnResult{Committed: 3, Aborted: 2, Unknown: 2, UnknownVisible: 1, Records: len(final),
		AbortedRead: 1, CommittedMissing: 1, Partial: 1, Duplicates: 1, Early: 1, Vanished: 1}
	res.Evidence = nil
	if res.Committed != want.Committed || res.Aborted != want.Aborted || res.Unknown != want.Unknown ||
		res.UnknownVisible != want.UnknownVisible || res.Records != want.Records || res.AbortedRead != want.AbortedRead ||
		res.CommittedMissing != want.CommittedMissing || res.Partial != want.Partial || res.Duplicates != want.Duplicates ||
		res.Early != want.Early || res.Vanished != want.Vanished {
		t.Fatalf("got %+v\nwant %+v", res, want)
	}
	if res.Violations() != 6 {
		t.Fatalf("Violations() = %d, want 6", res.Violations())
	}
}
