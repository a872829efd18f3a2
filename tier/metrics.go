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
	cacheRequests    *prometheus.CounterVec
	cacheBytes       prometheus.Gauge
	objectGets       prometheus.Counter
	objectGetBytes   prometheus.Counter
	rolls            prometheus.Counter
	rolledBytes      prometheus.Counter
	// Compaction (cleanup.policy=compact).
	compactions       prometheus.Counter
	compactedBytesIn  prometheus.Counter
	compactedBytesOut prometheus.Counter
	dirtyRatio        *prometheus.GaugeVec
	lastCompaction    *prometheus.GaugeVec
	sweptObjects      prometheus.Counter
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
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cold_cache_requests_total", Help: "Cold-read cache lookups by result (hit, miss, shared).",
		}, []string{"result"}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_cold_cache_bytes", Help: "Bytes held by the cold-read cache on local disk.",
		}),
		objectGets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_cold_gets_total", Help: "Ranged GETs issued for reads.",
		}),
		objectGetBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_cold_get_bytes_total", Help: "Bytes fetched by ranged GETs for reads.",
		}),
		rolls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_rolls_total", Help: "Segment objects written by the roller.",
		}),
		rolledBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_rolled_bytes_total", Help: "Bytes of segment objects written by the roller.",
		}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_compactions_total", Help: "Compaction passes run on compacted topics' partitions.",
		}),
		compactedBytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_compaction_read_bytes_total", Help: "Bytes of segment runs read by compaction passes.",
		}),
		compactedBytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_compaction_written_bytes_total", Help: "Bytes of segment objects written by compaction passes.",
		}),
		dirtyRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_compaction_dirty_ratio", Help: "Share of a compacted partition's rolled bytes not yet compacted, as of its last check.",
		}, []string{"topic", "partition"}),
		lastCompaction: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_compaction_last_pass_timestamp_seconds", Help: "When a compacted partition's last compaction pass ran, unix seconds.",
		}, []string{"topic", "partition"}),
		sweptObjects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_swept_objects_total", Help: "Unreferenced objects deleted by the sweeper.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.appendedBytes, m.appendedRecords, m.flushes, m.flushSeconds,
			m.flushObjectBytes, m.flushRecords, m.putBytes, m.readBytes, m.cacheRequests,
			m.cacheBytes, m.objectGets, m.objectGetBytes, m.rolls, m.rolledBytes, m.sweptObjects,
			m.compactions, m.compactedBytesIn, m.compactedBytesOut, m.dirtyRatio, m.lastCompaction)
	}
	return m
}
