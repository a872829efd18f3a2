package bench

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the result as one Markdown table: the configuration
// first, then every measured number.
func (r *Result) Markdown() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	b.WriteString("| | |\n|---|---|\n")
	cpu := fmt.Sprintf("%d (GOMAXPROCS %d)", r.Env.CPUs, r.Env.GOMAXPROCS)
	if r.Env.CPUModel != "" {
		cpu += ", " + r.Env.CPUModel
	}
	row("CPUs", cpu)
	row("Go", fmt.Sprintf("%s %s/%s", r.Env.GoVersion, r.Env.OS, r.Env.Arch))
	row("object store", r.Setup.Store)
	row("flush interval / bytes", fmt.Sprintf("%v / %d MiB", r.Setup.FlushInterval, r.Setup.FlushBytes>>20))
	row("workload", fmt.Sprintf("%d records x %d B, %d partitions, %d producers, acks=all, franz-go default linger/batching",
		r.Setup.Records, r.Setup.RecordSize, r.Setup.Partitions, r.Setup.Producers))
	row("**produce** records/s", fmt.Sprintf("%.0f", r.Produce.RecordsPerSec))
	row("produce MB/s", fmt.Sprintf("%.1f", r.Produce.MBPerSec))
	row("produce acks=all latency at saturation p50 / p99 / p999 / max", fmt.Sprintf("%s / %s / %s / %s",
		ms(r.Produce.P50), ms(r.Produce.P99), ms(r.Produce.P999), ms(r.Produce.Max)))
	row("produced (acked) records", fmt.Sprintf("%d in %s%s", r.Produce.Records, secs(r.Produce.Elapsed), timedOut(r.Produce.TimedOut)))
	if r.Paced.Records > 0 {
		row(fmt.Sprintf("paced produce (%.0f records/s, after %v warm-up) acks=all latency p50 / p99 / p999 / max", r.Setup.PacedRate, r.Setup.PacedWarmup),
			fmt.Sprintf("%s / %s / %s / %s (%d records)", ms(r.Paced.P50), ms(r.Paced.P99), ms(r.Paced.P999), ms(r.Paced.Max), r.Paced.Records))
	}
	row("**hot consume** records/s", fmt.Sprintf("%.0f", r.Hot.RecordsPerSec))
	row("hot consume MB/s", fmt.Sprintf("%.1f", r.Hot.MBPerSec))
	row("hot consume read from local / object", fmt.Sprintf("%.1f MB / %.1f MB", r.Hot.LocalReadBytes/1e6, r.Hot.ObjectReadBytes/1e6))
	row("**cold consume** (new node, empty disk) records/s", fmt.Sprintf("%.0f", r.Cold.RecordsPerSec))
	row("cold consume MB/s", fmt.Sprintf("%.1f", r.Cold.MBPerSec))
	row("cold GETs (object store) / per GB read", fmt.Sprintf("%.0f / %.1f", r.Cold.StoreGets, r.Cold.GetsPerGB))
	row("cold ranged GETs for reads / avg size", fmt.Sprintf("%.0f / %.2f MB", r.Cold.ColdGets, r.Cold.AvgGetBytes/1e6))
	row("flush PUTs / per GB ingested", fmt.Sprintf("%.0f / %.1f (avg object %.2f MB)", r.Cost.Flushes, r.Cost.FlushPutsPerGB, safeDiv(r.Cost.FlushPutBytes, r.Cost.Flushes)/1e6))
	row("all PUTs incl. rolls (both nodes) / per GB ingested", fmt.Sprintf("%.0f / %.1f (%.0f rolls)", r.Cost.StorePuts, r.Cost.StorePutsPerGB, r.Cost.Rolls))
	row("etcd index keys after produce / at end", fmt.Sprintf("%d / %d", r.Cost.KeysAfterProduce.Index, r.Cost.KeysAtEnd.Index))
	row("etcd index keys per GB retained (end)", fmt.Sprintf("%.1f (%d keys in all, index values %.1f KB)",
		r.Cost.IndexKeysPerGB, r.Cost.KeysAtEnd.Total, float64(r.Cost.KeysAtEnd.IndexValueBytes)/1e3))
	row("etcd bytes written by the producing node / per GB ingested", fmt.Sprintf("%.1f MB / %.1f MB", r.Cost.EtcdWrittenBytes/1e6, r.Cost.EtcdBytesPerGB/1e6))
	row("etcd database size / in use (end)", fmt.Sprintf("%.1f MB / %.1f MB", float64(r.Cost.KeysAtEnd.DBSize)/1e6, float64(r.Cost.KeysAtEnd.DBSizeInUse)/1e6))
	verified := "yes: every pass saw every acked record exactly once (count, id bitmap, CRC-32C sum, partition/offset, high watermarks)"
	if !r.Verified {
		verified = "**NO**"
	}
	row("verified", verified)
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func timedOut(t bool) string {
	if t {
		return " (time limit reached)"
	}
	return ""
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
