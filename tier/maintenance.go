package tier

import (
	"context"
	"errors"
	"time"

	"github.com/strata-io/strata/metadata/topiccfg"
	"github.com/strata-io/strata/tier/objstore"
)

// runMaintenance rolls, applies retention to every open partition every
// MaintenanceInterval, and sweeps unreferenced objects every SweepInterval.
func (t *Tier) runMaintenance() {
	defer t.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.closing
		cancel()
	}()
	tick := time.NewTicker(t.cfg.MaintenanceInterval)
	defer tick.Stop()
	// Partitions assigned elsewhere (a node joined) are handed off soon
	// after the node set changes, whether or not a client asks here.
	moves := time.NewTicker(100 * time.Millisecond)
	defer moves.Stop()
	nodesSeen := t.meta.NodesVersion()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-moves.C:
			if v := t.meta.NodesVersion(); v != nodesSeen {
				nodesSeen = v
				t.handOffMoved()
			}
			continue
		case <-tick.C:
		}
		t.handOffMoved()
		t.maintainPartitions(ctx)
		if time.Since(lastSweep) >= t.cfg.SweepInterval {
			lastSweep = time.Now()
			if n, err := t.Sweep(ctx); err != nil && ctx.Err() == nil {
				t.logger.Warn("sweep failed", "err", err)
			} else if n > 0 {
				t.logger.Info("swept unreferenced objects", "deleted", n)
			}
		}
	}
}

func (t *Tier) maintainPartitions(ctx context.Context) {
	for _, p := range t.snapshot() {
		if ctx.Err() != nil {
			return
		}
		topic, ok := t.meta.Topic(p.tp.Topic)
		if !ok || topic.ID != p.topicID {
			// Deleted (maybe through another node, so DropTopic never ran
			// here): let go of it and its local files.
			p.close(ErrNotLeader, true)
			continue
		}
		tc := topiccfg.Parse(topic.Configs)
		now := time.Now()
		// Several rolls in a row when a backlog built up, but bounded.
		for i := 0; i < 4; i++ {
			rolled, err := p.roll(ctx, tc, now)
			if err != nil {
				if !errors.Is(err, ErrNotLeader) && ctx.Err() == nil {
					t.logger.Warn("roll failed", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
				}
				break
			}
			if !rolled {
				break
			}
		}
		// Compaction works on rolled segment objects, after the roll.
		if _, err := p.compact(ctx, tc, now); err != nil && !errors.Is(err, ErrNotLeader) && ctx.Err() == nil {
			t.logger.Warn("compaction failed", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
		}
		// Retention after rolling: it deletes whole index entries, and rolled
		// entries are about segment.bytes, as Kafka's segments are. A
		// compact-only topic has none.
		if !tc.Delete {
			continue
		}
		if err := p.applyRetention(ctx, tc, now); err != nil && !errors.Is(err, ErrNotLeader) && ctx.Err() == nil {
			t.logger.Warn("retention failed", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
		}
	}
}

// errNoLease stops a sweep on a node whose etcd lease is not certainly
// alive.
var errNoLease = errors.New("tier: sweep skipped: this node does not hold its etcd lease")

// Sweep deletes flush and segment objects that no index entry references
// and that are older than SweepGrace, and returns how many it deleted. Those
// are objects whose data was rolled into a segment, deleted by retention, or
// never committed (a node died between the PUT and the etcd commit). The
// grace period covers the time between a flush's PUT and its commit, readers
// still reading an entry that was just replaced, and the metadata cache's lag.
func (t *Tier) Sweep(ctx context.Context) (int, error) {
	cutoff := time.Now().Add(-t.cfg.SweepGrace)
	var candidates []string
	for _, prefix := range []string{"flush/", "segments/"} {
		err := t.bucket.List(ctx, prefix, func(a objstore.Attrs) error {
			if a.ModTime.Before(cutoff) {
				candidates = append(candidates, a.Key)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if len(candidates) == 0 {
		return 0, nil
	}
	// Read the references after listing, from etcd itself (one revision,
	// not this node's watch-fed cache, which may lag): an object listed as
	// old and unreferenced now cannot gain a reference later (commits
	// reference only objects their own node just wrote, within the grace
	// period).
	if !t.meta.HoldsLease() {
		return 0, errNoLease
	}
	refs, err := t.meta.ReferencedObjects(ctx)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, key := range candidates {
		if _, ok := refs[key]; ok {
			continue
		}
		// A node that lost its lease may be cut off from etcd: its view is
		// no proof of anything, so it stops deleting.
		if !t.meta.HoldsLease() {
			return deleted, errNoLease
		}
		if err := t.bucket.Delete(ctx, key); err != nil {
			return deleted, err
		}
		deleted++
		t.metrics.sweptObjects.Inc()
	}
	return deleted, nil
}
