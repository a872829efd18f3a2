package ingest

import (
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// traffic counts the bytes and records each partition took in (Produce) and
// gave out (Fetch) on this node: per topic as Prometheus counters, per
// partition in memory for the web console's rates. The partition leader
// serves both, so the node leading a partition holds its counts.
type traffic struct {
	bytesIn, recordsIn, bytesOut, recordsOut *prometheus.CounterVec

	mu    sync.RWMutex
	parts map[metadata.TP]*PartitionTraffic
}

// PartitionTraffic is one partition's counts on this node since it started.
type PartitionTraffic struct {
	BytesIn, RecordsIn, BytesOut, RecordsOut atomic.Int64
}

func newTraffic(reg prometheus.Registerer) *traffic {
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"topic"})
	}
	t := &traffic{
		bytesIn:    vec("strata_topic_bytes_in_total", "Record batch bytes appended by Produce requests, by topic."),
		recordsIn:  vec("strata_topic_records_in_total", "Records appended by Produce requests, by topic."),
		bytesOut:   vec("strata_topic_bytes_out_total", "Record batch bytes returned by Fetch requests, by topic."),
		recordsOut: vec("strata_topic_records_out_total", "Records returned by Fetch requests (control records included), by topic."),
		parts:      make(map[metadata.TP]*PartitionTraffic),
	}
	if reg != nil {
		reg.MustRegister(t.bytesIn, t.recordsIn, t.bytesOut, t.recordsOut)
	}
	return t
}

func (t *traffic) part(tp metadata.TP) *PartitionTraffic {
	t.mu.RLock()
	c := t.parts[tp]
	t.mu.RUnlock()
	if c != nil {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c = t.parts[tp]; c == nil {
		c = new(PartitionTraffic)
		t.parts[tp] = c
	}
	return c
}

func (t *traffic) produced(tp metadata.TP, bytes, records int64) {
	c := t.part(tp)
	c.BytesIn.Add(bytes)
	c.RecordsIn.Add(records)
	t.bytesIn.WithLabelValues(tp.Topic).Add(float64(bytes))
	t.recordsIn.WithLabelValues(tp.Topic).Add(float64(records))
}

// fetched counts what a Fetch response carries, once, when it is answered.
func (t *traffic) fetched(resp *kmsg.FetchResponse) {
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		var bytes, records int64
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			if len(rp.RecordBatches) == 0 {
				continue
			}
			b, r := int64(len(rp.RecordBatches)), countRecords(rp.RecordBatches)
			c := t.part(metadata.TP{Topic: rt.Topic, Partition: rp.Partition})
			c.BytesOut.Add(b)
			c.RecordsOut.Add(r)
			bytes += b
			records += r
		}
		if bytes > 0 {
			t.bytesOut.WithLabelValues(rt.Topic).Add(float64(bytes))
			t.recordsOut.WithLabelValues(rt.Topic).Add(float64(records))
		}
	}
}

// shared counts what a ShareFetch hands out of one partition: the batches
// and the records acquired.
func (t *traffic) shared(topic string, partition int32, bytes, records int) {
	c := t.part(metadata.TP{Topic: topic, Partition: partition})
	c.BytesOut.Add(int64(bytes))
	c.RecordsOut.Add(int64(records))
	t.bytesOut.WithLabelValues(topic).Add(float64(bytes))
	t.recordsOut.WithLabelValues(topic).Add(float64(records))
}

// forgetTopic drops a deleted topic's counts and series.
func (t *traffic) forgetTopic(topic string) {
	t.mu.Lock()
	for tp := range t.parts {
		if tp.Topic == topic {
			delete(t.parts, tp)
		}
	}
	t.mu.Unlock()
	for _, v := range []*prometheus.CounterVec{t.bytesIn, t.recordsIn, t.bytesOut, t.recordsOut} {
		v.DeleteLabelValues(topic)
	}
}

// PartitionCounts is a snapshot of one partition's PartitionTraffic.
type PartitionCounts struct {
	TP                                       metadata.TP
	BytesIn, RecordsIn, BytesOut, RecordsOut int64
}

func (t *traffic) snapshot() []PartitionCounts {
	t.mu.RLock()
	out := make([]PartitionCounts, 0, len(t.parts))
	for tp, c := range t.parts {
		out = append(out, PartitionCounts{TP: tp, BytesIn: c.BytesIn.Load(), RecordsIn: c.RecordsIn.Load(),
			BytesOut: c.BytesOut.Load(), RecordsOut: c.RecordsOut.Load()})
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].TP.Topic != out[j].TP.Topic {
			return out[i].TP.Topic < out[j].TP.Topic
		}
		return out[i].TP.Partition < out[j].TP.Partition
	})
	return out
}

// Traffic returns the bytes and records each partition took in and gave out
// through this node since it started.
func (s *Server) Traffic() []PartitionCounts { return s.traffic.snapshot() }

// countRecords sums the record counts of the v2 batches in b (a Fetch
// partition's RecordBatches, which end at a batch boundary or with a partial
// batch that is not counted). Older message formats, which Strata never
// stores, count as none.
func countRecords(b []byte) int64 {
	var n int64
	for len(b) >= 61 {
		length := int64(binary.BigEndian.Uint32(b[8:12]))
		size := 12 + length
		if length < 49 || size > int64(len(b)) || b[16] != 2 {
			break
		}
		n += int64(binary.BigEndian.Uint32(b[57:61]))
		b = b[size:]
	}
	return n
}
