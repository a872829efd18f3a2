package tier

import (
	"context"
	"time"

	"github.com/strata-io/strata/metadata"
)

// handoffWait bounds how long a node taking over a partition waits for the
// live node that still leads it to flush and let go (see handOff).
const handoffWait = 5 * time.Second

// startHandOff starts handing p off (handOff) unless that is under way or
// the tier is closing.
//
// handOff lets go of p, which this node leads but is no longer assigned (a
// node joined, or the assignment moved for another reason): first every
// block accepted so far (acks=1 records included) is made durable, then the
// partition closes and its leader key is deleted, so the new leader starts
// from a durable offset that includes them. The new leader waits for that
// (awaitHandoff) rather than fencing this flush.
func (t *Tier) startHandOff(p *Partition) {
	t.mu.Lock()
	if t.handoffs[p] || t.closed {
		t.mu.Unlock()
		return
	}
	t.handoffs[p] = true
	t.handoffWG.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.handoffWG.Done()
		t.handOff(p)
		t.mu.Lock()
		delete(t.handoffs, p)
		t.mu.Unlock()
	}()
}

func (t *Tier) handOff(p *Partition) {
	ctx, cancel := context.WithTimeout(context.Background(), handoffWait)
	defer cancel()
	// Everything accepted so far is durable once the high watermark
	// reaches the next offset to assign; appends that slip in meanwhile
	// (through a Partition fetched before the move) raise the target.
	flushed := false
	for ctx.Err() == nil {
		p.mu.Lock()
		target, hw, changed, closed := p.next, p.hw, p.changed, p.err != nil
		p.mu.Unlock()
		if closed {
			break
		}
		if hw >= target {
			flushed = true
			break
		}
		t.wakeFlusher()
		select {
		case <-changed:
		case <-ctx.Done():
		case <-t.closing:
			return
		}
	}
	p.close(ErrNotLeader, false)
	if err := t.meta.ReleaseLeadership(ctx, p.lead); err != nil {
		t.logger.Warn("hand-off: release leadership", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
	}
	t.logger.Info("partition handed off", "topic", p.tp.Topic, "partition", p.tp.Partition,
		"epoch", p.lead.Epoch, "all_flushed", flushed)
}

// handOffMoved starts a hand-off of every open partition this node is no
// longer assigned.
func (t *Tier) handOffMoved() {
	for _, p := range t.snapshot() {
		if !p.isClosed() && !t.assignedHere(p.tp) {
			t.startHandOff(p)
		}
	}
}

// awaitHandoff waits (up to handoffWait) while another live node still
// holds tp's leader key: it was assigned tp until just now and is flushing
// what it accepted before it lets go. Taking over at once would fence that
// flush and lose its acks=1 records. A dead node's key goes with its lease.
func (t *Tier) awaitHandoff(ctx context.Context, tp metadata.TP) {
	deadline := time.Now().Add(handoffWait)
	for time.Now().Before(deadline) {
		l, ok := t.meta.Leader(tp)
		if !ok || l.NodeID == t.cfg.NodeID || !t.meta.NodeLive(l.NodeID) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
