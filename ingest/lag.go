package ingest

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-io/strata/metadata"
)

// The lag monitor: every LagInterval, the node that coordinates a consumer
// group works out the group's lag per partition from its committed offsets
// (etcd) and the partitions' high watermarks (the metadata cache's index),
// exports it as strata_consumer_group_lag and _lag_seconds, and keeps the
// last hour of totals for the web console. Only the coordinator exports a
// group, so a sum over the cluster's nodes counts each group once.

const (
	defaultLagInterval = 10 * time.Second
	// lagHistory is how many samples a group's history keeps (an hour at
	// the default interval).
	lagHistory = 360
)

// PartitionLag is one partition's lag for a group.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	// HighWatermark is the partition's high watermark as of the sample.
	HighWatermark int64 `json:"high_watermark"`
	// Lag is HighWatermark - Committed, never negative.
	Lag int64 `json:"lag"`
	// LagSeconds is how long ago the record at Committed was produced
	// (its index entry's newest timestamp: at most one flush younger
	// than the record), 0 with no lag.
	LagSeconds float64 `json:"lag_seconds"`
}

// LagSample is a group's lag at one time.
type LagSample struct {
	Time       time.Time      `json:"time"`
	Lag        int64          `json:"lag"`         // summed over partitions
	LagSeconds float64        `json:"lag_seconds"` // the largest of its partitions
	Partitions []PartitionLag `json:"partitions,omitempty"`
}

type lagMonitor struct {
	s        *Server
	interval time.Duration
	lag      *prometheus.GaugeVec
	seconds  *prometheus.GaugeVec

	mu      sync.Mutex
	history map[string][]LagSample // the groups this node coordinates
	series  map[[3]string]struct{} // label sets exported by the last pass
}

func newLagMonitor(s *Server, interval time.Duration, reg prometheus.Registerer) *lagMonitor {
	if interval == 0 {
		interval = defaultLagInterval
	}
	labels := []string{"group", "topic", "partition"}
	m := &lagMonitor{
		s:        s,
		interval: interval,
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_consumer_group_lag",
			Help: "Records between a consumer group's committed offset and the partition's high watermark (exported by the group's coordinator).",
		}, labels),
		seconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_consumer_group_lag_seconds",
			Help: "Age of the first record a consumer group has not consumed (its committed offset's record), 0 with no lag.",
		}, labels),
		history: make(map[string][]LagSample),
		series:  make(map[[3]string]struct{}),
	}
	if reg != nil {
		reg.MustRegister(m.lag, m.seconds)
	}
	return m
}

func (m *lagMonitor) run() {
	if m.interval < 0 {
		return
	}
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(m.s.ctx, m.interval)
		if err := m.pass(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.s.log.Debug("lag monitor", "err", err)
		}
		cancel()
		select {
		case <-t.C:
		case <-m.s.draining:
			return
		}
	}
}

// pass samples every group this node coordinates.
func (m *lagMonitor) pass(ctx context.Context, now time.Time) error {
	if !m.s.meta.HoldsLease() {
		return nil
	}
	names, err := m.s.meta.ListOffsetGroups(ctx)
	if err != nil {
		return err
	}
	samples := make(map[string]LagSample)
	for _, g := range names {
		// As the coordinator decides: with no live node known, this
		// node takes the group.
		if n, ok := m.s.meta.AssignedNodeFor(groupOwnerKey(g)); ok && n.ID != m.s.cfg.NodeID {
			continue
		}
		smp, err := m.sample(ctx, g, now)
		if err != nil {
			return err
		}
		samples[g] = smp
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[[3]string]struct{})
	for g, smp := range samples {
		h := append(m.history[g], smp)
		if len(h) > lagHistory {
			h = append(h[:0:0], h[len(h)-lagHistory:]...)
		}
		// Only the newest sample keeps its partitions.
		if n := len(h); n > 1 {
			h[n-2].Partitions = nil
		}
		m.history[g] = h
		for _, p := range smp.Partitions {
			k := [3]string{g, p.Topic, strconv.Itoa(int(p.Partition))}
			seen[k] = struct{}{}
			m.lag.WithLabelValues(k[:]...).Set(float64(p.Lag))
			m.seconds.WithLabelValues(k[:]...).Set(p.LagSeconds)
		}
	}
	for g := range m.history {
		if _, ok := samples[g]; !ok {
			delete(m.history, g) // deleted, or now coordinated elsewhere
		}
	}
	for k := range m.series {
		if _, ok := seen[k]; !ok {
			m.lag.DeleteLabelValues(k[:]...)
			m.seconds.DeleteLabelValues(k[:]...)
		}
	}
	m.series = seen
	return nil
}

func (m *lagMonitor) sample(ctx context.Context, group string, now time.Time) (LagSample, error) {
	offsets, err := m.s.meta.FetchOffsets(ctx, group)
	if err != nil {
		return LagSample{}, err
	}
	smp := LagSample{Time: now}
	for tp, c := range offsets {
		if _, ok := m.s.meta.Topic(tp.Topic); !ok {
			continue
		}
		hw, err := m.highWatermark(ctx, tp)
		if err != nil {
			return LagSample{}, err
		}
		pl := PartitionLag{Topic: tp.Topic, Partition: tp.Partition, Committed: c.Offset, HighWatermark: hw, Lag: max(hw-c.Offset, 0)}
		if pl.Lag > 0 {
			if e, ok := m.s.meta.CachedEntryAt(tp, c.Offset); ok && e.MaxTimestamp > 0 {
				pl.LagSeconds = max(float64(now.UnixMilli()-e.MaxTimestamp)/1000, 0)
			}
		}
		smp.Lag += pl.Lag
		smp.LagSeconds = max(smp.LagSeconds, pl.LagSeconds)
		smp.Partitions = append(smp.Partitions, pl)
	}
	sort.Slice(smp.Partitions, func(i, j int) bool {
		a, b := smp.Partitions[i], smp.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return smp, nil
}

// highWatermark is tp's high watermark from the cached index, or from etcd
// when the index is empty.
func (m *lagMonitor) highWatermark(ctx context.Context, tp metadata.TP) (int64, error) {
	if sum, ok := m.s.meta.IndexSummary(tp); ok {
		return sum.End, nil
	}
	st, err := m.s.meta.PartitionState(ctx, tp)
	if err != nil {
		return 0, err
	}
	return st.DurableOffset, nil
}

// GroupLag returns the lag history of a group this node coordinates, oldest
// first, the newest sample with its partitions; ok is false when this node
// has no samples of it (another node coordinates it, or it has no commits).
func (s *Server) GroupLag(group string) (history []LagSample, ok bool) {
	s.lag.mu.Lock()
	defer s.lag.mu.Unlock()
	h, ok := s.lag.history[group]
	return append([]LagSample(nil), h...), ok
}

// SampleLag runs one pass of the lag monitor now (tests, and the console's
// refresh), instead of waiting for the next interval.
func (s *Server) SampleLag(ctx context.Context) error { return s.lag.pass(ctx, time.Now()) }

// groupOwnerKey is the key whose rendezvous hash places a group's
// coordinator (newCoordinator's Owner).
func groupOwnerKey(group string) string { return "group/" + group }
