package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/bench/chaos"
)

// TestShareGroupSurvivesKillNine: eight franz-go share consumers of one
// group share the only partition of a topic on a three-node cluster while a
// producer writes numbered records; the consumers accept, release (once)
// or reject them (bench/chaos's share workload). Midway the partition's
// leader is killed with kill -9. At the end every produced record was
// accepted or rejected, no record whose acceptance or rejection the broker
// confirmed was ever delivered again, no acceptance was confirmed twice,
// and released records came back.
func TestShareGroupSurvivesKillNine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	procs, seeds := startProcCluster(t, ctx, 3)
	admin := newClient(t, seeds[0], kgo.SeedBrokers(seeds...))
	load, err := chaos.StartShareLoad(ctx, seeds, io.Discard, admin, "queue", "workers", 1, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer load.StopProducing()
	waitAccepted := func(n int) {
		t.Helper()
		for ctx.Err() == nil {
			if _, acc := load.Progress(); acc >= n {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		p, a := load.Progress()
		t.Fatalf("share consumers accepted %d of %d produced records, want %d", a, p, n)
	}
	waitAccepted(150)
	leader := waitLeaders(t, ctx, admin, "queue", 1)[0]
	procs[leader].kill(t)
	t.Logf("killed node %d, the leader of queue/0, with kill -9", leader)
	_, before := load.Progress()
	waitAccepted(before + 150)
	load.StopProducing()
	res := load.Check(ctx, 30*time.Second, 2*time.Minute)
	t.Logf("produced %d, accepted %d, rejected %d, deliveries %d, records delivered more than once %d",
		res.Produced, res.Accepted, res.Rejected, res.Deliveries, res.Redelivered)
	for _, e := range res.Evidence {
		t.Error(e)
	}
	if res.Violations() > 0 {
		t.Fatalf("%d violations: delivered after a confirmed accept or reject %d, accepted twice %d, lost %d",
			res.Violations(), res.AfterDone, res.AcceptedTwice, res.Lost)
	}
	if res.Accepted+res.Rejected != res.Produced || res.Rejected == 0 {
		t.Fatalf("accepted %d + rejected %d, produced %d", res.Accepted, res.Rejected, res.Produced)
	}
	if res.Deliveries <= res.Produced {
		t.Fatalf("%d deliveries of %d records: released records were not delivered again", res.Deliveries, res.Produced)
	}
}
