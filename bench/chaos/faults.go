package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The fault kinds, in the order the report lists them.
const (
	KillNode      Kind = "kill-9 node, restart"
	KillNodeEmpty Kind = "kill-9 node, restart on empty disk"
	PauseNode     Kind = "SIGSTOP node past lease TTL"
	CutEtcd       Kind = "cut node from etcd"
	SlowEtcd      Kind = "slow node-etcd link"
	CutMinIO      Kind = "cut node from MinIO"
	RestartEtcd   Kind = "restart etcd"
	PauseMinIO    Kind = "SIGSTOP MinIO"
	FailPuts      Kind = "slow and failing PUTs"
	AddPartitions Kind = "add partitions (CreatePartitions)"
	DeleteRecords Kind = "DeleteRecords"
)

// Kinds lists every fault kind.
var Kinds = []Kind{KillNode, KillNodeEmpty, PauseNode, CutEtcd, SlowEtcd, CutMinIO, RestartEtcd, PauseMinIO, FailPuts, AddPartitions, DeleteRecords}

// Fault is one planned fault.
type Fault struct {
	Seq   int
	Kind  Kind
	Start time.Duration // planned, since the load started
	Dur   time.Duration // how long it stays applied (0: instantaneous)

	Node     int            // the node it hits (node faults)
	Mode     Mode           // Cut or Blackhole (cut faults)
	Delay    time.Duration  // Delay link latency; PUT delay ceiling
	FailRate float64        // PUT failure probability
	Signal   syscall.Signal // how etcd is stopped
	Add      int32          // partitions to add
	PickPart uint32         // DeleteRecords partition (modulo the count)
	Frac     float64        // DeleteRecords point between log start and high watermark
}

// Expected is how long the fault is expected to take from apply to heal:
// its duration, plus, for a node restart, the lease TTL (a node restarted
// after kill -9 waits until its old registration's lease expires).
func (f Fault) Expected(leaseTTL time.Duration) time.Duration {
	if f.Kind == KillNode || f.Kind == KillNodeEmpty {
		return f.Dur + leaseTTL
	}
	return f.Dur
}

// Describe says what the fault does.
func (f Fault) Describe() string {
	switch f.Kind {
	case KillNode:
		return fmt.Sprintf("kill -9 node %d, restart after %s", f.Node, f.Dur.Round(time.Millisecond))
	case KillNodeEmpty:
		return fmt.Sprintf("kill -9 node %d, restart on an empty data folder after %s", f.Node, f.Dur.Round(time.Millisecond))
	case PauseNode:
		return fmt.Sprintf("SIGSTOP node %d for %s", f.Node, f.Dur.Round(time.Millisecond))
	case CutEtcd:
		return fmt.Sprintf("%s node %d's etcd link for %s", f.Mode, f.Node, f.Dur.Round(time.Millisecond))
	case SlowEtcd:
		return fmt.Sprintf("delay node %d's etcd link by %s for %s", f.Node, f.Delay, f.Dur.Round(time.Millisecond))
	case CutMinIO:
		return fmt.Sprintf("%s node %d's MinIO link for %s", f.Mode, f.Node, f.Dur.Round(time.Millisecond))
	case RestartEtcd:
		return fmt.Sprintf("stop etcd (%v), start it again after %s", f.Signal, f.Dur.Round(time.Millisecond))
	case PauseMinIO:
		return fmt.Sprintf("SIGSTOP MinIO for %s", f.Dur.Round(time.Millisecond))
	case FailPuts:
		return fmt.Sprintf("PUTs delayed up to %s, %.0f%% answered 503, for %s", f.Delay, 100*f.FailRate, f.Dur.Round(time.Millisecond))
	case AddPartitions:
		return fmt.Sprintf("add %d partition(s) to the acks=all topic", f.Add)
	case DeleteRecords:
		return fmt.Sprintf("DeleteRecords on an acks=all partition at %.0f%% of its live range", 100*f.Frac)
	}
	return string(f.Kind)
}

// PlanConfig shapes a schedule.
type PlanConfig struct {
	Seed     uint64
	Length   time.Duration // the load's length
	Warmup   time.Duration // no fault before this
	Tail     time.Duration // no fault (applied) in the last Tail
	LeaseTTL time.Duration
	Nodes    int
	Kinds    []Kind // empty: all
}

// Plan draws a schedule from the seed: fault kinds in shuffled rounds (each
// round has every kind once), each with random parameters, separated by
// quiet periods of 2-5s, all applied and healed between Warmup and
// Length-Tail. The same PlanConfig gives the same plan.
func Plan(cfg PlanConfig) []Fault {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5ca1ab1e))
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = Kinds
	}
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	draw := func(k Kind) Fault {
		f := Fault{Kind: k, Node: rng.IntN(cfg.Nodes)}
		f.Mode = Cut
		if rng.IntN(2) == 1 {
			f.Mode = Blackhole
		}
		switch k {
		case KillNode, KillNodeEmpty:
			f.Dur = between(500*time.Millisecond, 5*time.Second)
		case PauseNode:
			f.Dur = cfg.LeaseTTL + between(time.Second, 4*time.Second)
		case CutEtcd:
			f.Dur = between(2*time.Second, cfg.LeaseTTL+3*time.Second)
		case SlowEtcd:
			f.Dur = between(2*time.Second, 8*time.Second)
			f.Delay = between(50*time.Millisecond, 600*time.Millisecond).Round(time.Millisecond)
		case CutMinIO:
			f.Dur = between(2*time.Second, 8*time.Second)
		case RestartEtcd:
			f.Dur = between(500*time.Millisecond, 4*time.Second)
			f.Signal = syscall.SIGKILL
			if rng.IntN(2) == 1 {
				f.Signal = syscall.SIGTERM
			}
		case PauseMinIO:
			f.Dur = between(2*time.Second, 8*time.Second)
		case FailPuts:
			f.Dur = between(3*time.Second, 10*time.Second)
			f.Delay = between(100*time.Millisecond, 2*time.Second).Round(time.Millisecond)
			f.FailRate = 0.2 + 0.4*rng.Float64()
		case AddPartitions:
			f.Add = 1 + int32(rng.IntN(2))
		case DeleteRecords:
			f.PickPart = rng.Uint32()
			f.Frac = 0.2 + 0.7*rng.Float64()
		}
		return f
	}
	var bag []Kind
	next := func() Kind {
		if len(bag) == 0 {
			bag = append([]Kind(nil), kinds...)
			rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		k := bag[0]
		bag = bag[1:]
		return k
	}
	var plan []Fault
	t := cfg.Warmup
	end := cfg.Length - cfg.Tail
	for misses := 0; misses < 2*len(kinds); {
		f := draw(next())
		if t+f.Expected(cfg.LeaseTTL) > end {
			misses++
			continue
		}
		misses = 0
		f.Seq = len(plan) + 1
		f.Start = t
		plan = append(plan, f)
		t += f.Expected(cfg.LeaseTTL) + between(2*time.Second, 5*time.Second)
	}
	return plan
}

// minQuiet is the least time between one fault's heal and the next
// fault, whatever the plan says.
const minQuiet = 2 * time.Second

// Event is one fault as it happened (times since the run started).
type Event struct {
	Fault   Fault
	Applied time.Duration
	Healed  time.Duration // -1: never healed (the run was stopped)
	Note    string        // what happened, e.g. "restarted, ready in 1.2s"
	Skipped string        // why it was not applied
	// HealErr is a heal that failed: Violation if Strata did not come back
	// (a node restart never got ready), else a harness failure.
	HealErr   error
	Violation bool
}

// Injector applies a plan to a cluster under load.
type Injector struct {
	C    *Cluster
	Load *Load
	Rec  *Recorder
	Out  io.Writer // one line per applied and healed fault
	Max  int32     // partition ceiling for AddPartitions
	// LeaseTTL is the nodes' lease TTL (a restarted node may wait it out).
	LeaseTTL time.Duration

	mu     sync.Mutex
	events []Event
}

func (in *Injector) logf(format string, args ...any) {
	fmt.Fprintf(in.Out, "[+%8.3fs] %s\n", in.Rec.since().Seconds(), fmt.Sprintf(format, args...))
}

// Events returns what happened so far.
func (in *Injector) Events() []Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Event(nil), in.events...)
}

// Run applies plan relative to start, each fault at its planned time (or
// minQuiet after the previous one healed, if that is later), skipping those that would not heal
// before deadline (since the run started). It returns when the plan is
// done or ctx ends; every fault it applied is healed.
func (in *Injector) Run(ctx context.Context, plan []Fault, start time.Time, deadline time.Duration) {
	var lastHeal time.Time
	for _, f := range plan {
		at := start.Add(f.Start)
		if q := lastHeal.Add(minQuiet); at.Before(q) {
			at = q // the previous fault took longer to heal than planned
		}
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		ev := Event{Fault: f, Healed: -1}
		if in.Rec.since()+f.Expected(in.LeaseTTL) > deadline {
			ev.Skipped = "no time left"
			in.logf("skip  #%d %s: %s", f.Seq, f.Describe(), ev.Skipped)
			in.add(ev)
			continue
		}
		in.apply(ctx, &ev)
		in.add(ev)
		lastHeal = time.Now()
		if ctx.Err() != nil {
			return
		}
	}
}

func (in *Injector) add(ev Event) {
	in.mu.Lock()
	in.events = append(in.events, ev)
	in.mu.Unlock()
}

// hold waits d or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func (in *Injector) apply(ctx context.Context, ev *Event) {
	f := ev.Fault
	c := in.C
	ev.Applied = in.Rec.since()
	in.logf("apply #%d %s", f.Seq, f.Describe())
	var heal func() (string, error)
	switch f.Kind {
	case KillNode, KillNodeEmpty:
		n := c.Nodes[f.Node]
		if err := n.Kill(); err != nil {
			ev.HealErr = err
			return
		}
		if f.Kind == KillNodeEmpty {
			n.NewDataDir()
		}
		heal = func() (string, error) {
			t := time.Now()
			if err := n.Start(ctx); err != nil {
				// A port another process took is the harness's problem;
				// anything else keeping the node down is Strata's.
				ev.Violation = ctx.Err() == nil && !strings.Contains(n.logTail(8<<10), "address already in use")
				return "", fmt.Errorf("node %d did not come back: %w", f.Node, err)
			}
			return fmt.Sprintf("node %d restarted on %s, ready in %s", f.Node, n.DataDir(), time.Since(t).Round(time.Millisecond)), nil
		}
	case PauseNode:
		n := c.Nodes[f.Node]
		if err := n.Pause(); err != nil {
			ev.HealErr = err
			return
		}
		heal = func() (string, error) { return "SIGCONT", n.Resume() }
	case CutEtcd, SlowEtcd, CutMinIO:
		px := c.EtcdPx[f.Node]
		if f.Kind == CutMinIO {
			px = c.S3Px[f.Node]
		}
		mode := f.Mode
		if f.Kind == SlowEtcd {
			mode = Delay
		}
		px.SetMode(mode, f.Delay)
		heal = func() (string, error) { px.SetMode(Pass, 0); return px.Name() + " passes again", nil }
	case RestartEtcd:
		if err := c.Etcd.Stop(f.Signal); err != nil {
			ev.HealErr = err
			return
		}
		heal = func() (string, error) {
			t := time.Now()
			if err := c.Etcd.Start(ctx); err != nil {
				return "", err
			}
			return fmt.Sprintf("etcd healthy again in %s", time.Since(t).Round(time.Millisecond)), nil
		}
	case PauseMinIO:
		if err := c.PauseMinIO(true); err != nil {
			ev.HealErr = err
			return
		}
		heal = func() (string, error) { return "SIGCONT", c.PauseMinIO(false) }
	case FailPuts:
		d0, f0 := c.Puts.Delayed.Load(), c.Puts.Failed.Load()
		c.Puts.Set(f.Delay, f.FailRate)
		heal = func() (string, error) {
			c.Puts.Set(0, 0)
			return fmt.Sprintf("%d PUTs delayed, %d answered 503", c.Puts.Delayed.Load()-d0, c.Puts.Failed.Load()-f0), nil
		}
	case AddPartitions:
		heal = func() (string, error) { return in.addPartitions(ctx, f) }
	case DeleteRecords:
		heal = func() (string, error) { return in.deleteRecords(ctx, f) }
	}
	if f.Dur > 0 {
		hold(ctx, f.Dur)
	}
	note, err := heal()
	ev.Healed = in.Rec.since()
	ev.Note = note
	if err != nil {
		ev.HealErr = err
		in.logf("heal  #%d %s: FAILED: %v", f.Seq, f.Kind, err)
		return
	}
	in.logf("heal  #%d %s: %s", f.Seq, f.Kind, note)
}

func (in *Injector) addPartitions(ctx context.Context, f Fault) (string, error) {
	var now int32
	err := retry(ctx, 10*time.Second, func(ctx context.Context) error {
		var err error
		now, err = partitionCount(ctx, in.Load.admin, in.Load.cfg.TopicAll)
		return err
	})
	if err != nil {
		return "not applied: partition count unknown: " + err.Error(), nil
	}
	if now+f.Add > in.Max {
		return fmt.Sprintf("not applied: %d partitions already (ceiling %d)", now, in.Max), nil
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = createPartitions(rctx, in.Load.admin, in.Load.cfg.TopicAll, now+f.Add)
	cancel()
	if err != nil {
		// Not a violation by itself: the request may fail under a fault. A
		// partition it did add anyway is read by the final check all the same.
		return fmt.Sprintf("CreatePartitions to %d failed: %v", now+f.Add, err), nil
	}
	if err := in.Load.GrowTo(ctx, now+f.Add); err != nil {
		return fmt.Sprintf("%d → %d partitions; producers not started on them: %v", now, now+f.Add, err), nil
	}
	return fmt.Sprintf("%d → %d partitions, producing to them", now, now+f.Add), nil
}

func (in *Injector) deleteRecords(ctx context.Context, f Fault) (string, error) {
	parts := in.Load.PartitionsAll()
	p := int32(f.PickPart % uint32(parts))
	topic := in.Load.cfg.TopicAll
	var start, end map[int32]int64
	err := retry(ctx, 10*time.Second, func(ctx context.Context) error {
		var err error
		if start, err = listOffsets(ctx, in.Load.admin, topic, parts, -2); err != nil {
			return err
		}
		end, err = listOffsets(ctx, in.Load.admin, topic, parts, -1)
		return err
	})
	if err != nil {
		return "not applied: offsets unknown: " + err.Error(), nil
	}
	off := start[p] + int64(f.Frac*float64(end[p]-start[p]))
	i := in.Rec.deleteSent(p, off)
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	low, err := deleteRecords(rctx, in.Load.admin, topic, p, off)
	cancel()
	in.Rec.deleteDone(i, low, err == nil)
	if err != nil {
		return fmt.Sprintf("partition %d to offset %d (log %d-%d): failed: %v", p, off, start[p], end[p], err), nil
	}
	return fmt.Sprintf("partition %d to offset %d (log %d-%d): low watermark %d", p, off, start[p], end[p], low), nil
}
