package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Target is one of the performance targets and where this run stands on it.
type Target struct {
	Measure string  `json:"measure"`
	Broker  string  `json:"broker"`
	Want    string  `json:"want"`
	Got     string  `json:"got"`
	Value   float64 `json:"value"`
	Met     bool    `json:"met"`
}

func (r *SuiteResult) broker(name string) *BrokerResult {
	for _, b := range r.Brokers {
		if b.Broker == name {
			return b
		}
	}
	return nil
}

func (b *BrokerResult) scenario(name string) *ScenarioResult {
	for i := range b.Scenarios {
		if b.Scenarios[i].Scenario.Name == name {
			return &b.Scenarios[i]
		}
	}
	return nil
}

// targets evaluates the performance targets: throughput as ratios to kfake
// in the same run, the rest as absolutes.
func (r *SuiteResult) targets() []Target {
	var out []Target
	k := r.broker(BrokerKfake)
	ratio := func(measure, broker string, got, ref, want float64) {
		if ref <= 0 {
			return
		}
		v := got / ref
		out = append(out, Target{Measure: measure, Broker: broker, Want: fmt.Sprintf("≥ %.1f×", want),
			Got: fmt.Sprintf("%.2f×", v), Value: v, Met: v >= want})
	}
	for _, b := range r.Brokers {
		if b.Broker == BrokerKfake {
			continue
		}
		if k != nil {
			if s, ks := b.scenario("1KiB"), k.scenario("1KiB"); s != nil && ks != nil {
				ratio("produce, 1 KiB (MB/s vs kfake)", b.Broker, s.Produce.MBPerSec, ks.Produce.MBPerSec, 1.0)
				ratio("consume, hot tier (MB/s vs kfake)", b.Broker, s.Hot.MBPerSec, ks.Hot.MBPerSec, 2.0)
				if b.Cold != nil && b.Broker == BrokerMinIO {
					ratio("consume, cold, empty cache (MB/s vs kfake)", b.Broker, b.Cold.MBPerSec, ks.Hot.MBPerSec, 1.5)
				}
			}
			if s, ks := b.scenario("100B"), k.scenario("100B"); s != nil && ks != nil {
				ratio("produce, 100 B (records/s vs kfake)", b.Broker, s.Produce.RecordsPerSec, ks.Produce.RecordsPerSec, 0.8)
			}
		}
		if s6, s1000 := b.scenario("1KiB"), b.scenario("1KiB-1000p"); s6 != nil && s1000 != nil {
			ratio("1,000 partitions vs 6 (MB/s)", b.Broker, s1000.Produce.MBPerSec, s6.Produce.MBPerSec, 0.8)
		}
		if v, ok := connCost(b); ok {
			// CPU per byte with 1,000 producer connections against 4. The
			// clients' own cost is in it, so the bar is kfake's ratio
			// (same clients), or 1.0 without kfake.
			want := 1.0
			if k != nil {
				if kv, ok := connCost(k); ok {
					want = kv
				}
			}
			out = append(out, Target{Measure: "CPU per byte, 1,000 producer connections vs 4 (clients included)", Broker: b.Broker,
				Want: fmt.Sprintf("≤ %.2f× (kfake's)", want), Got: fmt.Sprintf("%.2f×", v), Value: v, Met: v <= want*1.1})
		}
		if b.Broker == BrokerMinIO && b.E2E.Records > 0 {
			limit := r.Config.FlushInterval + 30*time.Millisecond
			out = append(out, Target{Measure: fmt.Sprintf("end-to-end p99 at %.0f records/s", b.E2E.Rate), Broker: b.Broker,
				Want: "≤ " + limit.String(), Got: ms(b.E2E.P99), Value: float64(b.E2E.P99) / 1e6, Met: b.E2E.P99 <= limit})
		}
		if b.Cost.PutsPerGB > 0 {
			out = append(out, Target{Measure: "PUTs per GB ingested (1 KiB)", Broker: b.Broker, Want: "≤ 130",
				Got: fmt.Sprintf("%.0f", b.Cost.PutsPerGB), Value: b.Cost.PutsPerGB, Met: b.Cost.PutsPerGB <= 130})
		}
		if e := b.Export; e != nil {
			out = append(out,
				Target{Measure: "Arrow over HTTP, 100 B records (rows/s)", Broker: b.Broker, Want: "≥ 3M",
					Got: fmt.Sprintf("%.2fM", e.ArrowRowsPerSec/1e6), Value: e.ArrowRowsPerSec, Met: e.ArrowRowsPerSec >= 3e6},
				Target{Measure: "Parquet export, 100 B records (rows/s)", Broker: b.Broker, Want: "≥ 1M",
					Got: fmt.Sprintf("%.2fM", e.ParquetRowsPerSec/1e6), Value: e.ParquetRowsPerSec, Met: e.ParquetRowsPerSec >= 1e6})
		}
	}
	return out
}

// Markdown renders the suite: the machine's limits, then one table per kind
// of measure with a column per broker and its ratio to kfake, then the
// targets.
func (r *SuiteResult) Markdown() string {
	var b strings.Builder
	cpu := fmt.Sprintf("%d CPUs (GOMAXPROCS %d)", r.Env.CPUs, r.Env.GOMAXPROCS)
	if r.Env.CPUModel != "" {
		cpu += ", " + r.Env.CPUModel
	}
	fmt.Fprintf(&b, "%s; %s %s/%s. Clients and broker share the process and the CPUs. %d producers, linger %v, flush interval %v, %d MiB, %d flushes in flight; %d MB per produce run, median of %d runs per scenario.\n\n",
		cpu, r.Env.GoVersion, r.Env.OS, r.Env.Arch, r.Config.Producers, r.Config.Linger, r.Config.FlushInterval, r.Config.FlushBytes>>20, r.Config.FlushesInFlight, r.Config.RunBytes/1e6, r.Config.Repeat)
	if l := r.Limits; l != nil {
		b.WriteString("| machine limit | |\n|---|---:|\n")
		fmt.Fprintf(&b, "| sequential 1 MiB write + fdatasync | %.0f MB/s (p50 %s) |\n", l.FsyncWriteMBps, ms(l.FsyncP50))
		fmt.Fprintf(&b, "| loopback TCP, one connection | %.0f MB/s |\n", l.LoopbackMBps)
		fmt.Fprintf(&b, "| zstd, one core (ratio %.1f) | %.0f MB/s |\n\n", l.ZstdRatio, l.ZstdMBps)
	}
	k := r.broker(BrokerKfake)
	header := func(first string) {
		b.WriteString("| " + first + " |")
		for _, br := range r.Brokers {
			b.WriteString(" " + br.Broker + " |")
			if k != nil && br != k {
				b.WriteString(" ×kfake |")
			}
		}
		b.WriteString("\n|---|")
		for _, br := range r.Brokers {
			b.WriteString("---:|")
			if k != nil && br != k {
				b.WriteString("---:|")
			}
		}
		b.WriteString("\n")
	}
	// row prints one measure: cell renders a broker's value, val is the
	// number its ratio to kfake is taken of (nil: no ratio).
	row := func(name string, cell func(*BrokerResult) string, val func(*BrokerResult) float64) {
		b.WriteString("| " + name + " |")
		for _, br := range r.Brokers {
			b.WriteString(" " + cell(br) + " |")
			if k != nil && br != k {
				if val != nil && val(k) > 0 && val(br) > 0 {
					fmt.Fprintf(&b, " %.2f |", val(br)/val(k))
				} else {
					b.WriteString(" |")
				}
			}
		}
		b.WriteString("\n")
	}

	header("produce (MB/s, records/s)")
	for _, sc := range r.Config.Scenarios {
		name := sc.Name
		row(fmt.Sprintf("%s: %d B, %dp, acks=%s, %s, %d clients", name, sc.RecordSize, sc.Partitions, sc.Acks, sc.Compression, sc.producers(r.Config.Producers)),
			func(br *BrokerResult) string {
				if s := br.scenario(name); s != nil {
					return fmt.Sprintf("%.1f MB/s, %.0fk/s", s.Produce.MBPerSec, s.Produce.RecordsPerSec/1e3)
				}
				return "–"
			},
			func(br *BrokerResult) float64 {
				if s := br.scenario(name); s != nil {
					return s.Produce.MBPerSec
				}
				return 0
			})
	}
	row("new topic ready (every partition answers), "+lastName(r.Config.Scenarios), func(br *BrokerResult) string {
		if len(r.Config.Scenarios) == 0 {
			return "–"
		}
		if s := br.scenario(lastName(r.Config.Scenarios)); s != nil && len(s.ReadyRuns) > 0 {
			return ms(slices.Max(s.ReadyRuns))
		}
		return "–"
	}, nil)
	b.WriteString("\n")

	header("latency (acks=all)")
	row("produce at half saturation: rate", func(br *BrokerResult) string { return fmt.Sprintf("%.0f/s", br.PacedRate) }, nil)
	row("produce p50 / p99 / p999", func(br *BrokerResult) string {
		return fmt.Sprintf("%s / %s / %s", ms(br.Paced.P50), ms(br.Paced.P99), ms(br.Paced.P999))
	}, nil)
	if len(r.Brokers) > 0 {
		row(fmt.Sprintf("end to end at %.0f/s p50 / p99 / max", r.Brokers[0].E2E.Rate), func(br *BrokerResult) string {
			return fmt.Sprintf("%s / %s / %s", ms(br.E2E.P50), ms(br.E2E.P99), ms(br.E2E.Max))
		}, nil)
	}
	row("  its flushes (PUT + commit) p50 / p99, PUT p99 (≤ bucket bound)", func(br *BrokerResult) string {
		if br.E2E.FlushP99 == 0 {
			return "–"
		}
		return fmt.Sprintf("%s / %s, %s", ms(br.E2E.FlushP50), ms(br.E2E.FlushP99), ms(br.E2E.PutP99))
	}, nil)
	b.WriteString("\n")

	header("consume (MB/s)")
	for _, sc := range r.Config.Scenarios {
		name := sc.Name
		hot := func(br *BrokerResult) float64 {
			if s := br.scenario(name); s != nil {
				return s.Hot.MBPerSec
			}
			return 0
		}
		row("hot, "+name, func(br *BrokerResult) string { return fmt.Sprintf("%.0f", hot(br)) }, hot)
	}
	base := ""
	if len(r.Config.Scenarios) > 0 {
		base = r.Config.Scenarios[0].Name
	}
	cold := func(br *BrokerResult) float64 {
		if br.Cold != nil {
			return br.Cold.MBPerSec
		}
		return 0
	}
	b.WriteString("| cold (new node, empty disk and cache), " + base + " |")
	for _, br := range r.Brokers {
		if br.Cold == nil {
			b.WriteString(" – |")
		} else {
			fmt.Fprintf(&b, " %.0f |", cold(br))
		}
		if k != nil && br != k {
			if s := k.scenario(base); s != nil && br.Cold != nil && s.Hot.MBPerSec > 0 {
				fmt.Fprintf(&b, " %.2f |", br.Cold.MBPerSec/s.Hot.MBPerSec)
			} else {
				b.WriteString(" |")
			}
		}
	}
	b.WriteString("\n\n")

	header("topic as a table (100 B records)")
	row("Arrow IPC over HTTP, rows/s", func(br *BrokerResult) string {
		if br.Export == nil {
			return "–"
		}
		return fmt.Sprintf("%.2fM", br.Export.ArrowRowsPerSec/1e6)
	}, nil)
	row("Parquet over HTTP, rows/s", func(br *BrokerResult) string {
		if br.Export == nil {
			return "–"
		}
		return fmt.Sprintf("%.2fM", br.Export.ParquetRowsPerSec/1e6)
	}, nil)
	row("Parquet export: RSS rise (whole process)", func(br *BrokerResult) string {
		if br.Export == nil {
			return "–"
		}
		return fmt.Sprintf("%.0f MB for %d rows", float64(br.Export.ParquetPeakRSSDelta)/1e6, br.Export.Rows)
	}, nil)
	b.WriteString("\n")

	header("cost (" + base + " scenario)")
	num := func(f func(*BrokerResult) float64, format string) func(*BrokerResult) string {
		return func(br *BrokerResult) string {
			if v := f(br); v > 0 {
				return fmt.Sprintf(format, v)
			}
			return "–"
		}
	}
	row("PUTs per GB ingested", num(func(br *BrokerResult) float64 { return br.Cost.PutsPerGB }, "%.0f"), nil)
	row("GETs per GB read cold", num(func(br *BrokerResult) float64 { return br.Cost.ColdGetsPerGB }, "%.0f"), nil)
	row("etcd transactions per second", num(func(br *BrokerResult) float64 { return br.Cost.EtcdTxnPerSec }, "%.0f"), nil)
	row("etcd bytes written per GB", num(func(br *BrokerResult) float64 { return br.Cost.EtcdBytesPerGB / 1e3 }, "%.0f kB"), nil)
	cpuPerGB := func(br *BrokerResult) float64 { return br.Cost.CPUSecondsPerGB }
	row("CPU-seconds per GB produced (clients included)", num(cpuPerGB, "%.1f"), cpuPerGB)
	rssMB := func(br *BrokerResult) float64 { return float64(br.Cost.PeakRSS) / 1e6 }
	row("peak RSS (clients included)", num(rssMB, "%.0f MB"), rssMB)
	b.WriteString("\n")

	if len(r.Targets) > 0 {
		b.WriteString("| target | broker | want | got | |\n|---|---|---|---|---|\n")
		for _, t := range r.Targets {
			v := "missed"
			if t.Met {
				v = "met"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Measure, t.Broker, t.Want, t.Got, v)
		}
	}
	return b.String()
}

// lastName is the name of the scenario with the most partitions.
func lastName(ss []Scenario) string {
	best := Scenario{}
	for _, s := range ss {
		if s.Partitions > best.Partitions {
			best = s
		}
	}
	return best.Name
}

// connCost is a broker's CPU per byte produced with 1,000 connections
// divided by that with the base scenario's 4.
func connCost(b *BrokerResult) (float64, bool) {
	s4, sc := b.scenario("1KiB"), b.scenario("1KiB-1000conn")
	if s4 == nil || sc == nil || s4.CPUSeconds <= 0 || sc.CPUSeconds <= 0 {
		return 0, false
	}
	per := func(s *ScenarioResult) float64 {
		var n int64
		for _, r := range s.Runs {
			n += r.Bytes
		}
		return s.CPUSeconds / float64(n)
	}
	return per(sc) / per(s4), true
}
