package objstore_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-io/strata/tier/objstore"
	"github.com/strata-io/strata/tier/objstore/objstoretest"
)

// The decorator must not change behaviour: it passes the same suite.
func TestInstrumentAcceptance(t *testing.T) {
	objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket {
		return objstore.Instrument(newFileBucket(t), prometheus.NewRegistry(), "fs")
	})
}

func TestInstrumentCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := objstore.Instrument(newFileBucket(t), reg, "primary")
	ctx := t.Context()

	if err := b.Put(ctx, "k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetRange(ctx, "k", 1, 3); err != nil {
		t.Fatal(err)
	}
	if a, err := b.Stat(ctx, "k"); err != nil || a.Size != 5 {
		t.Fatalf("Stat = %+v, %v", a, err)
	}
	if _, err := b.Get(ctx, "missing"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := b.GetRange(ctx, "k", 4, 10); err == nil {
		t.Fatal("GetRange past end succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Put(cancelled, "k2", []byte("x")); err == nil {
		t.Fatal("Put with cancelled ctx succeeded")
	}
	if err := b.List(ctx, "", func(objstore.Attrs) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"strata_objstore_requests_total", map[string]string{"op": "delete", "result": "ok"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "get", "result": "not_found"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "get", "result": "ok"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "get_range", "result": "error"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "get_range", "result": "ok"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "list", "result": "ok"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "put", "result": "canceled"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "put", "result": "ok"}, 1},
		{"strata_objstore_requests_total", map[string]string{"op": "stat", "result": "ok"}, 1},
		{"strata_objstore_requests_total", map[string]string{"result": "ok"}, 6},
		{"strata_objstore_requests_total", nil, 9},
		{"strata_objstore_bytes_total", map[string]string{"op": "get"}, 5},
		{"strata_objstore_bytes_total", map[string]string{"op": "get_range"}, 3},
		{"strata_objstore_bytes_total", map[string]string{"op": "put"}, 5},
		{"strata_objstore_request_duration_seconds", map[string]string{"op": "get"}, 2},
		{"strata_objstore_request_duration_seconds", nil, 9},
	} {
		labels := map[string]string{"store": "primary"}
		maps.Copy(labels, c.labels)
		if got := metricSum(t, reg, c.metric, labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metric, labels, got, c.want)
		}
	}
	if n := seriesCount(t, reg, "strata_objstore_request_duration_seconds"); n != 6 {
		t.Fatalf("duration histogram has %d series, want 6 (one per op)", n)
	}

	// A second store on the same registry gets its own series; instrumenting
	// the same name twice reuses the collectors instead of panicking.
	b2 := objstore.Instrument(newFileBucket(t), reg, "secondary")
	b3 := objstore.Instrument(newFileBucket(t), reg, "secondary")
	if err := b2.Put(ctx, "x", []byte("12")); err != nil {
		t.Fatal(err)
	}
	if err := b3.Put(ctx, "x", []byte("345")); err != nil {
		t.Fatal(err)
	}
	if got := metricSum(t, reg, "strata_objstore_bytes_total", map[string]string{"store": "secondary", "op": "put"}); got != 5 {
		t.Fatalf("secondary put bytes = %v, want 5", got)
	}
	if got := metricSum(t, reg, "strata_objstore_bytes_total", map[string]string{"store": "primary", "op": "put"}); got != 5 {
		t.Fatalf("primary put bytes = %v after secondary puts, want 5", got)
	}

	// A nil registry counts without registering anywhere.
	if err := objstore.Instrument(newFileBucket(t), nil, "unregistered").Put(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
}

// metricSum adds up the counter values (or histogram sample counts) of every
// series of name whose labels include all of labels.
func metricSum(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, m := range series(t, reg, name) {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	return len(series(t, reg, name))
}

func series(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
