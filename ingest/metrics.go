package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the server's Prometheus metrics. Per-API series exist only
// for the keys in served, so a client sending junk keys cannot grow the
// label set.
type metrics struct {
	requests    map[int16]prometheus.Counter
	durations   map[int16]prometheus.Observer
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	connections prometheus.Gauge
	records     prometheus.Counter
	fetchBytes  prometheus.Counter
	refusedConn *prometheus.CounterVec
	throttles   *prometheus.CounterVec
}

// throttled counts a response throttled for a quota.
func (m *metrics) throttled(quota string) { m.throttles.WithLabelValues(quota).Inc() }

// refused counts a connection closed at accept for a limit.
func (m *metrics) refused(reason string) { m.refusedConn.WithLabelValues(reason).Inc() }

func newMetrics(reg prometheus.Registerer) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_kafka_requests_total",
		Help: "Kafka requests received, by API.",
	}, []string{"api"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strata_kafka_request_duration_seconds",
		Help:    "Time from reading a Kafka request to writing its response, by API.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. ~16s
	}, []string{"api"})
	m := &metrics{
		requests:  make(map[int16]prometheus.Counter, len(served)),
		durations: make(map[int16]prometheus.Observer, len(served)),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_kafka_bytes_in_total",
			Help: "Bytes of Kafka requests read, framing included.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_kafka_bytes_out_total",
			Help: "Bytes of Kafka responses written, framing included.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_kafka_connections",
			Help: "Open Kafka client connections.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_produce_records_total",
			Help: "Records appended by Produce requests.",
		}),
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_fetch_bytes_total",
			Help: "Record batch bytes returned by Fetch requests.",
		}),
		refusedConn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_kafka_connections_refused_total",
			Help: "Connections closed at accept because a limit was reached, by limit.",
		}, []string{"reason"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_quota_throttled_total",
			Help: "Responses throttled because a client went over a quota, by quota.",
		}, []string{"quota"}),
	}
	for key := range served {
		name := kmsg.NameForKey(key)
		m.requests[key] = requests.WithLabelValues(name)
		m.durations[key] = durations.WithLabelValues(name)
	}
	if reg != nil {
		reg.MustRegister(requests, durations, m.bytesIn, m.bytesOut, m.connections, m.records, m.fetchBytes, m.refusedConn, m.throttles)
	}
	return m
}

// requested counts a request of a served key.
func (m *metrics) requested(key int16) {
	if c, ok := m.requests[key]; ok {
		c.Inc()
	}
}

// answered records how long a request took, from arrival to its response
// being written (or, for acks=0, to its work being done).
func (m *metrics) answered(key int16, arrived time.Time) {
	if o, ok := m.durations[key]; ok {
		o.Observe(time.Since(arrived).Seconds())
	}
}
