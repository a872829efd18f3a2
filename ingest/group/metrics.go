package group

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the coordinator.
type metrics struct {
	groups     prometheus.Gauge
	members    prometheus.Gauge
	rebalances prometheus.Counter
	commits    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_groups",
			Help: "Consumer groups the coordinator holds in memory (with members or cached offsets).",
		}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_group_members",
			Help: "Members of all consumer groups.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_group_rebalances_total",
			Help: "Completed join phases (new generations) of all consumer groups.",
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_group_offset_commits_total",
			Help: "Partitions of OffsetCommit requests by result (ok; rejected: a group or partition error; failed: the store failed).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.groups, err = register(reg, m.groups); err != nil {
		return nil, err
	}
	if m.members, err = register(reg, m.members); err != nil {
		return nil, err
	}
	if m.rebalances, err = register(reg, m.rebalances); err != nil {
		return nil, err
	}
	if m.commits, err = register(reg, m.commits); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or reuses the collector already registered under
// the same name, so a node restarted in one process can reuse its registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("group: register metrics: %w", err)
}
