package ingest

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-io/strata/ingest/share"
	"github.com/strata-io/strata/metadata"
)

// shareCollector exports the backlog of every share partition this node
// leads (and has loaded), computed at scrape time from memory: records in
// flight (delivered or deliverable, not yet acknowledged or archived),
// records under an acquisition lock, the start offset (the oldest record
// not yet acknowledged) and that record's age, from the index entry that
// holds it (as strata_consumer_group_lag_seconds is computed).
type shareCollector struct {
	s                                  *Server
	inFlight, acquired, start, ageSecs *prometheus.Desc
}

func newShareCollector(s *Server) *shareCollector {
	labels := []string{"group", "topic", "partition"}
	return &shareCollector{
		s:        s,
		inFlight: prometheus.NewDesc("strata_share_records_in_flight", "Records of a share partition delivered or deliverable and not yet acknowledged or archived (on the partition's leader).", labels, nil),
		acquired: prometheus.NewDesc("strata_share_records_acquired", "Records of a share partition under an acquisition lock now.", labels, nil),
		start:    prometheus.NewDesc("strata_share_start_offset", "A share partition's start offset: the oldest record not yet acknowledged or archived.", labels, nil),
		ageSecs:  prometheus.NewDesc("strata_share_oldest_unacked_seconds", "Age of the oldest record of a share partition not yet acknowledged (0 when none waits).", labels, nil),
	}
}

// leadsShare reports whether this node still leads the partition under
// the leadership p was loaded with (a partition that moved away keeps its
// stale state in memory until it is used again).
func (s *Server) leadsShare(topic string, partition int32, p *share.Partition) bool {
	l, ok := s.meta.Leader(metadata.TP{Topic: topic, Partition: partition})
	return ok && l.Revision == p.Leadership().Revision
}

func (c *shareCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.acquired
	ch <- c.start
	ch <- c.ageSecs
}

func (c *shareCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for k, p := range c.s.shares.Loaded() {
		t, ok := c.s.meta.TopicByID(k.Topic)
		if !ok || !c.s.leadsShare(t.Name, k.Partition, p) {
			continue
		}
		st := p.Stats()
		lv := []string{k.Group, t.Name, strconv.Itoa(int(k.Partition))}
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(st.InFlight), lv...)
		ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(st.Acquired), lv...)
		ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(st.Start), lv...)
		age := 0.0
		if st.InFlight > 0 {
			if e, ok := c.s.meta.CachedEntryAt(metadata.TP{Topic: t.Name, Partition: k.Partition}, st.Start); ok && e.MaxTimestamp > 0 {
				age = max(float64(now.UnixMilli()-e.MaxTimestamp)/1000, 0)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.ageSecs, prometheus.GaugeValue, age, lv...)
	}
}
