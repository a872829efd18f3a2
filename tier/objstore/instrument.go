package objstore

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation labels used by Instrument's metrics.
const (
	opGet      = "get"
	opGetRange = "get_range"
	opStat     = "stat"
	opList     = "list"
	opPut      = "put"
	opDelete   = "delete"
)

// Result labels used by Instrument's metrics. A missing object and a
// cancelled call are told apart from failures because neither means the store
// is unhealthy.
const (
	resultOK       = "ok"
	resultNotFound = "not_found"
	resultCanceled = "canceled"
	resultError    = "error"
)

type metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// instrumented decorates a Bucket with metrics, so no implementation carries
// metrics code of its own.
type instrumented struct {
	b Bucket
	m *metrics
}

// Instrument returns b with every call counted and timed:
//
//	strata_objstore_requests_total{store,op,result}
//	strata_objstore_bytes_total{store,op}          (payload bytes put and got)
//	strata_objstore_request_duration_seconds{store,op}
//
// name becomes the constant "store" label, so a node can instrument more than
// one store on one registry. A nil reg counts without registering. If the same
// name was already instrumented on reg, the existing collectors are reused.
func Instrument(b Bucket, reg prometheus.Registerer, name string) Bucket {
	labels := prometheus.Labels{"store": name}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "strata_objstore_requests_total",
			Help:        "Object store calls, by operation and result (ok, not_found, canceled, error).",
			ConstLabels: labels,
		}, []string{"op", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "strata_objstore_bytes_total",
			Help:        "Object payload bytes written (put) and read (get, get_range).",
			ConstLabels: labels,
		}, []string{"op"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "strata_objstore_request_duration_seconds",
			Help:        "Latency of object store calls, including retries, by operation.",
			ConstLabels: labels,
			// 1ms (local disk) to ~65s (a store riding out an outage).
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}, []string{"op"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.bytes = register(reg, m.bytes)
		m.duration = register(reg, m.duration)
	}
	return &instrumented{b: b, m: m}
}

// register registers c, or returns the collector already registered under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A clash with a different metric of the same name is a programming
		// error elsewhere; keep counting unregistered rather than failing
		// the store.
	}
	return c
}

func (i *instrumented) observe(op string, start time.Time, err error) {
	i.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	i.m.requests.WithLabelValues(op, resultOf(err)).Inc()
}

func resultOf(err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, ErrNotFound):
		return resultNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return resultCanceled
	default:
		return resultError
	}
}

func (i *instrumented) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	data, err := i.b.Get(ctx, key)
	i.observe(opGet, start, err)
	i.m.bytes.WithLabelValues(opGet).Add(float64(len(data)))
	return data, err
}

func (i *instrumented) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	data, err := i.b.GetRange(ctx, key, off, length)
	i.observe(opGetRange, start, err)
	i.m.bytes.WithLabelValues(opGetRange).Add(float64(len(data)))
	return data, err
}

func (i *instrumented) Stat(ctx context.Context, key string) (Attrs, error) {
	start := time.Now()
	a, err := i.b.Stat(ctx, key)
	i.observe(opStat, start, err)
	return a, err
}

func (i *instrumented) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	start := time.Now()
	err := i.b.List(ctx, prefix, fn)
	i.observe(opList, start, err)
	return err
}

func (i *instrumented) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := i.b.Put(ctx, key, data)
	i.observe(opPut, start, err)
	if err == nil {
		i.m.bytes.WithLabelValues(opPut).Add(float64(len(data)))
	}
	return err
}

func (i *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := i.b.Delete(ctx, key)
	i.observe(opDelete, start, err)
	return err
}

func (i *instrumented) Close() error { return i.b.Close() }
