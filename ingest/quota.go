package ingest

import (
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// Quota enforcement, as Kafka's ClientQuotaManager: the bytes a client
// produces (request bytes) and fetches (record bytes returned) are metered
// over a window of 11 one-second samples; once the rate is over the quota
// of the most specific matching entity, the response carries
// throttle_time_ms = (rate - quota) / quota * window, and the connection
// reads nothing more from the client for that long (KIP-219), which bounds
// the bytes it moves per window.
//
// The matching entity, most specific first: user and client id, user and
// default client id, user, default user and client id, default user and
// default client id, default user, client id, default client id. A quota
// set for a default entity applies to each user (or client) separately.

const (
	quotaSamples     = 11
	quotaSampleWidth = time.Second
	maxThrottle      = 10 * time.Second
)

type meter struct {
	mu      sync.Mutex
	start   [quotaSamples]time.Time
	bytes   [quotaSamples]float64
	current int
}

// record adds n bytes at now and returns the rate over the window.
func (m *meter) record(now time.Time, n float64) (rate float64, window time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.start[m.current].IsZero() || now.Sub(m.start[m.current]) >= quotaSampleWidth {
		m.current = (m.current + 1) % quotaSamples
		m.start[m.current], m.bytes[m.current] = now, 0
	}
	m.bytes[m.current] += n
	oldest := now
	var total float64
	for i := range m.start {
		if !m.start[i].IsZero() && now.Sub(m.start[i]) < quotaSamples*quotaSampleWidth {
			total += m.bytes[i]
			if m.start[i].Before(oldest) {
				oldest = m.start[i]
			}
		}
	}
	// As Kafka's Rate: the window is at least all but one sample long,
	// so a first burst is not measured over a few milliseconds.
	window = max(now.Sub(oldest), (quotaSamples-1)*quotaSampleWidth)
	return total / window.Seconds(), window
}

type quotaManager struct {
	s      *Server
	mu     sync.Mutex
	meters map[string]*meter
	// version and table are the quotas as of the cache's quota version.
	version int64
	table   map[string]map[string]float64
}

// current returns the quota table, read again when it changed.
func (q *quotaManager) current() map[string]map[string]float64 {
	v := q.s.meta.QuotaVersion()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.table == nil || v != q.version {
		q.version, q.table = q.s.meta.Quotas()
	}
	return q.table
}

func newQuotaManager(s *Server) *quotaManager {
	return &quotaManager{s: s, meters: map[string]*meter{}}
}

// limit finds the quota for user and client id; meterKey names whose bytes
// count against it.
func (q *quotaManager) limit(all map[string]map[string]float64, user, client, key string) (rate float64, meterKey string, ok bool) {
	type level struct{ entity, meter string }
	// Entity keys as metadata writes them ("" is the default entity).
	entity := func(u, c *string) string { return metadata.QuotaEntity{User: u, ClientID: c}.Key() }
	dflt := ""
	uc, u, c := entity(&user, &client), entity(&user, nil), entity(nil, &client)
	levels := []level{
		{uc, uc},
		{entity(&user, &dflt), uc},
		{u, u},
		{entity(&dflt, &client), uc},
		{entity(&dflt, &dflt), uc},
		{entity(&dflt, nil), u},
		{c, c},
		{entity(nil, &dflt), c},
	}
	for _, l := range levels {
		if v, found := all[l.entity][key]; found {
			return v, key + "|" + l.meter, true
		}
	}
	return 0, "", false
}

// record meters n bytes of kind key for the caller and returns how long to
// throttle it (0: within its quota, or no quota).
func (q *quotaManager) record(principal, clientID, key string, n int) time.Duration {
	all := q.current()
	if len(all) == 0 || n <= 0 {
		return 0
	}
	user := strings.TrimPrefix(principal, "User:")
	quota, mk, ok := q.limit(all, user, clientID, key)
	if !ok {
		return 0
	}
	q.mu.Lock()
	m := q.meters[mk]
	if m == nil {
		m = &meter{}
		q.meters[mk] = m
	}
	q.mu.Unlock()
	rate, window := m.record(time.Now(), float64(n))
	if rate <= quota {
		return 0
	}
	throttle := time.Duration((rate - quota) / quota * float64(window))
	q.s.m.throttled(key)
	return min(throttle, maxThrottle)
}

// throttle meters a response the caller is owed and, over its quota, sets
// the response's throttle time; it returns how long the connection should
// read nothing more.
func (c *conn) throttle(req *request, resp kmsg.Response) time.Duration {
	var key string
	var n int
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		key, n = quotaProduce, req.size
	case *kmsg.FetchResponse:
		key = quotaFetch
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				n += len(p.RecordBatches)
			}
		}
	default:
		return 0
	}
	d := c.s.quotas.record(c.auth.principal, clientID(req), key, n)
	if d > 0 {
		if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
			tr.SetThrottle(int32(d.Milliseconds()))
		}
	}
	return d
}
