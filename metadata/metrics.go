package metadata

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts and times every etcd transaction a Store makes.
type metrics struct {
	txns     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	written  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_etcd_txn_total",
			Help: "etcd transactions by operation and result (ok, conflict: a compare failed, error: etcd failed or timed out).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_etcd_txn_duration_seconds",
			Help:    "Latency of etcd transactions by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. 4s
		}, []string{"op"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_etcd_written_bytes_total",
			Help: "Bytes of keys and values this node put into etcd in successful transactions.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.txns, err = register(reg, m.txns); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.written, err = register(reg, m.written); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or reuses the collector already registered under
// the same name, so a node can reopen its Store on the same registry.
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
	return zero, fmt.Errorf("metadata: register metrics: %w", err)
}

func (m *metrics) observe(op, result string, d time.Duration) {
	m.txns.WithLabelValues(op, result).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}
