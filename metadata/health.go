package metadata

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// healthInterval is how often a Store asks etcd for its database size and
// alarms.
const healthInterval = 10 * time.Second

// EtcdHealth is what a Store last learnt of its etcd cluster.
type EtcdHealth struct {
	// DBSize and DBSizeInUse are the database file's size and the part of
	// it holding live data (the rest is freed by compaction and given back
	// by defragmentation), as the first endpoint that answered reports.
	DBSize, DBSizeInUse int64
	// Alarms are the active alarms ("NOSPACE": etcd refuses every write
	// until space is freed and the alarm is disarmed; "CORRUPT").
	Alarms []string
	// Checked is when etcd last answered; zero if it never did.
	Checked time.Time
	// Err is the last check's error, if it failed.
	Err error
}

// health holds the last EtcdHealth and the gauges that export it.
type health struct {
	mu   sync.Mutex
	last EtcdHealth

	dbSize, dbInUse prometheus.Gauge
	alarm           *prometheus.GaugeVec
}

func newHealth(reg prometheus.Registerer) (*health, error) {
	h := &health{
		dbSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_etcd_db_size_bytes",
			Help: "Size of etcd's database file (its quota counts this; defragmentation shrinks it).",
		}),
		dbInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_etcd_db_size_in_use_bytes",
			Help: "Part of etcd's database file holding live data.",
		}),
		alarm: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_etcd_alarm",
			Help: "1 while etcd has the alarm raised (NOSPACE: writes are refused), else 0.",
		}, []string{"alarm"}),
	}
	h.alarm.WithLabelValues("NOSPACE").Set(0)
	if reg == nil {
		return h, nil
	}
	var err error
	if h.dbSize, err = register(reg, h.dbSize); err != nil {
		return nil, err
	}
	if h.dbInUse, err = register(reg, h.dbInUse); err != nil {
		return nil, err
	}
	if h.alarm, err = register(reg, h.alarm); err != nil {
		return nil, err
	}
	return h, nil
}

// EtcdHealth returns what the Store last learnt of etcd (every 10 s).
func (s *Store) EtcdHealth() EtcdHealth {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	h := s.health.last
	h.Alarms = append([]string(nil), h.Alarms...)
	return h
}

// CheckEtcdHealth asks etcd now and returns the answer (it is also what
// EtcdHealth returns until the next check).
func (s *Store) CheckEtcdHealth(ctx context.Context) EtcdHealth {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var h EtcdHealth
	s.health.mu.Lock()
	prev := s.health.last
	s.health.mu.Unlock()
	h.Checked = prev.Checked
	for _, ep := range s.cfg.Endpoints {
		st, err := s.cli.Status(ctx, ep)
		if err != nil {
			h.Err = err
			continue
		}
		h.DBSize, h.DBSizeInUse, h.Err = st.DbSize, st.DbSizeInUse, nil
		break
	}
	if h.Err == nil {
		al, err := s.cli.AlarmList(ctx)
		if err != nil {
			h.Err = err
		} else {
			h.Checked = time.Now()
			for _, a := range al.Alarms {
				if a.Alarm != etcdserverpb.AlarmType_NONE {
					h.Alarms = append(h.Alarms, a.Alarm.String())
				}
			}
		}
	}
	if h.Err != nil {
		// Keep the last known alarms: an etcd that stopped answering
		// did not clear them.
		h.DBSize, h.DBSizeInUse, h.Alarms = prev.DBSize, prev.DBSizeInUse, prev.Alarms
	}
	s.health.mu.Lock()
	s.health.last = h
	s.health.mu.Unlock()
	s.health.dbSize.Set(float64(h.DBSize))
	s.health.dbInUse.Set(float64(h.DBSizeInUse))
	nospace := 0.0
	for _, a := range h.Alarms {
		if a == etcdserverpb.AlarmType_NOSPACE.String() {
			nospace = 1
		}
	}
	s.health.alarm.WithLabelValues("NOSPACE").Set(nospace)
	return h
}

func (s *Store) healthLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		s.CheckEtcdHealth(ctx)
		if !sleepCtx(ctx, healthInterval) {
			return
		}
	}
}
