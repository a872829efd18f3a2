package tier

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	appendedBytes    prometheus.Counter
	appendedRecords  prometheus.Counter
	flushes          *prometheus.CounterVec
	flushSeconds     prometheus.Histogram
	flushObjectBytes prometheus.Histogram
	flushRecords     prometheus.Counter
	putBytes         prometheus.Counter
	readBytes        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_tier_appended_bytes_total", Help: "Record batch bytes appended to the hot tier.",
		}),
		appendedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_tier_appended_records_total", Help: "Records appended to the hot tier.",
		}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_flush_total", Help: "Flushes by result (ok, put_failed, commit_failed).",
		}, []string{"result"}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_flush_duration_seconds", Help: "Time from taking pending blocks to their commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		flushObjectBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_flush_object_bytes", Help: "Size of flush objects written.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		flushRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_flush_records_total", Help: "Records made durable by flushes.",
		}),
		putBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_flush_put_bytes_total", Help: "Bytes written to the object store by flushes.",
		}),
		readBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_tier_read_bytes_total", Help: "Decompressed batch bytes read, by source (local, object).",
		}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.appendedBytes, m.appendedRecords, m.flushes, m.flushSeconds,
			m.flushObjectBytes, m.flushRecords, m.putBytes, m.readBytes)
	}
	return m
}
