package bench

import (
	"strings"
	"testing"
	"time"
)

// TestSuiteSmall runs the side-by-side suite on a tiny workload against
// kfake and Strata on the fs store: every produce is checked by a consume
// pass, the cold read by a node with an empty disk, the export by its row
// counts, so a run that returns no error saw every record exactly once.
func TestSuiteSmall(t *testing.T) {
	all := DefaultScenarios()
	res, err := RunSuite(testCtx(t), SuiteConfig{
		Brokers:   []string{BrokerKfake, BrokerFS},
		Scenarios: []Scenario{all[0], all[1], all[4]}, // 1 KiB, 100 B, 1,000 partitions
		RunBytes:  400_000, Repeat: 1,
		PacedSeconds: 0.5, E2ERate: 400, E2ESeconds: 1, ExportRecords: 3000,
		PhaseTimeout: time.Minute, Dir: t.TempDir(), NoWarmup: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Limits == nil || res.Limits.FsyncWriteMBps <= 0 || res.Limits.LoopbackMBps <= 0 || res.Limits.ZstdMBps <= 0 {
		t.Fatalf("machine limits not measured: %+v", res.Limits)
	}
	if len(res.Brokers) != 2 {
		t.Fatalf("%d brokers measured, want 2", len(res.Brokers))
	}
	for _, b := range res.Brokers {
		if len(b.Scenarios) != 3 {
			t.Fatalf("%s: %d scenarios, want 3", b.Broker, len(b.Scenarios))
		}
		for _, s := range b.Scenarios {
			want := int64(max(400_000/s.Scenario.RecordSize, 1000))
			if s.Produce.Records != want || s.Hot.Records != want || s.CPUSeconds <= 0 {
				t.Fatalf("%s %s: produced %d, read %d, want %d each", b.Broker, s.Scenario.Name, s.Produce.Records, s.Hot.Records, want)
			}
		}
		if b.E2E.Records != 400 || b.E2E.P50 <= 0 || b.Paced.Records == 0 {
			t.Fatalf("%s: end-to-end %+v, paced %d records", b.Broker, b.E2E, b.Paced.Records)
		}
	}
	fs := res.broker(BrokerFS)
	if fs.Cold == nil || fs.Cold.Records != 1000 || fs.Export == nil || fs.Export.Rows != 3000 {
		t.Fatalf("strata-fs: cold %+v, export %+v", fs.Cold, fs.Export)
	}
	if fs.Cost.PutsPerGB <= 0 || fs.Cost.EtcdBytesPerGB <= 0 || fs.Cost.PeakRSS <= 0 {
		t.Fatalf("strata-fs cost not measured: %+v", fs.Cost)
	}
	if res.broker(BrokerKfake).Cold != nil {
		t.Fatal("kfake has no cold tier, but a cold result")
	}
	md := res.Markdown()
	for _, want := range []string{"| produce (MB/s, records/s) | kfake | strata-fs | ×kfake |", "fdatasync", "| target |", "produce, 1 KiB (MB/s vs kfake)"} {
		if !strings.Contains(md, want) {
			t.Fatalf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestTargetsAreRatiosToKfake checks the verdicts on made-up numbers.
func TestTargetsAreRatiosToKfake(t *testing.T) {
	sc := func(name string, mbps, hot float64) ScenarioResult {
		return ScenarioResult{Scenario: Scenario{Name: name}, Produce: ProduceResult{MBPerSec: mbps, RecordsPerSec: mbps * 1000}, Hot: ConsumeResult{MBPerSec: hot}}
	}
	r := &SuiteResult{Config: SuiteSetup{FlushInterval: 25 * time.Millisecond}, Brokers: []*BrokerResult{
		{Broker: BrokerKfake, Scenarios: []ScenarioResult{sc("1KiB", 80, 200), sc("100B", 70, 0)}},
		{Broker: BrokerMinIO, Scenarios: []ScenarioResult{sc("1KiB", 88, 300), sc("100B", 50, 0), sc("1KiB-1000p", 80, 0)},
			Cold: &ConsumeResult{MBPerSec: 320}, E2E: E2EResult{Rate: 5000, Records: 1, P99: 60 * time.Millisecond},
			Cost: SuiteCost{PutsPerGB: 120}},
	}}
	got := map[string]Target{}
	for _, tg := range r.targets() {
		got[tg.Measure] = tg
	}
	check := func(measure string, met bool, value float64) {
		t.Helper()
		tg, ok := got[measure]
		if !ok || tg.Met != met || (value != 0 && (tg.Value < value-0.001 || tg.Value > value+0.001)) {
			t.Fatalf("%s: %+v, want met %v value %v", measure, tg, met, value)
		}
	}
	check("produce, 1 KiB (MB/s vs kfake)", true, 1.1)
	check("consume, hot tier (MB/s vs kfake)", false, 1.5)
	check("consume, cold, empty cache (MB/s vs kfake)", true, 1.6)
	check("produce, 100 B (records/s vs kfake)", false, 50.0/70)
	check("1,000 partitions vs 6 (MB/s)", true, 80.0/88)
	check("end-to-end p99 at 5000 records/s", false, 60)
	check("PUTs per GB ingested (1 KiB)", true, 120)
}

// TestHistQuantile reads quantiles of what a histogram observed between two
// scrapes from its cumulative buckets.
func TestHistQuantile(t *testing.T) {
	parse := func(text string) *Metrics {
		m, err := ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := parse(`h_bucket{op="put",le="0.01"} 5
h_bucket{op="put",le="0.1"} 5
h_bucket{op="put",le="+Inf"} 5
`)
	after := parse(`h_bucket{op="put",le="0.01"} 95
h_bucket{op="put",le="0.1"} 104
h_bucket{op="put",le="+Inf"} 105
h_bucket{op="get",le="0.01"} 1000
h_bucket{op="get",le="0.1"} 1000
h_bucket{op="get",le="+Inf"} 1000
`)
	// 100 new PUTs: 90 under 10ms, 9 more under 100ms, 1 above.
	for _, c := range []struct{ q, want float64 }{{0.5, 0.01}, {0.9, 0.01}, {0.95, 0.1}, {0.99, 0.1}, {1, 0.1}} {
		if got := HistQuantile(before, after, "h", c.q, "op", "put"); got != c.want {
			t.Fatalf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if got := HistQuantile(after, after, "h", 0.5, "op", "put"); got != 0 {
		t.Fatalf("no observations: %v, want 0", got)
	}
}
