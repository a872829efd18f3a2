package topiccfg

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Spec describes one topic config.
type Spec struct {
	Name string
	// Default is the value that applies when the topic does not set it.
	Default string
	Type    kmsg.ConfigType
	// Synonym is the broker config Kafka derives the default from; it is
	// reported as the DEFAULT_CONFIG synonym.
	Synonym string
	Doc     string
	// Effect is false for configs Strata accepts and reports but does not
	// act on (replication, local file layout); Doc says why.
	Effect bool
	check  func(string) error
}

const maxLong = "9223372036854775807"

// noEffect is the documentation suffix of configs Strata ignores.
const noEffect = " Accepted and reported for compatibility; no effect in Strata"

// Specs is the table, sorted by name as Kafka lists them.
var Specs = []Spec{
	{Name: "cleanup.policy", Default: "delete", Type: kmsg.ConfigTypeList, Synonym: "log.cleanup.policy", Effect: true,
		Doc: "How old data goes: delete (by retention.ms and retention.bytes), compact (keep the latest record per key), or both (compact,delete).", check: checkCleanupPolicy},
	{Name: "compression.gzip.level", Default: "-1", Type: kmsg.ConfigTypeInt, Synonym: "compression.gzip.level",
		Doc: "gzip level when the broker compresses." + noEffect + ": batches are stored as the producer compressed them.", check: intBetween(-1, 9)},
	{Name: "compression.lz4.level", Default: "9", Type: kmsg.ConfigTypeInt, Synonym: "compression.lz4.level",
		Doc: "lz4 level when the broker compresses." + noEffect + ": batches are stored as the producer compressed them.", check: intBetween(1, 17)},
	{Name: "compression.type", Default: "producer", Type: kmsg.ConfigTypeString, Synonym: "compression.type",
		Doc:   "Accepted for compatibility; batches are always stored as the producer compressed them.",
		check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
	{Name: "compression.zstd.level", Default: "3", Type: kmsg.ConfigTypeInt, Synonym: "compression.zstd.level",
		Doc: "zstd level when the broker compresses." + noEffect + ": batches are stored as the producer compressed them.", check: intBetween(-131072, 22)},
	{Name: "delete.retention.ms", Default: "86400000", Type: kmsg.ConfigTypeLong, Synonym: "log.cleaner.delete.retention.ms", Effect: true,
		Doc: "On a compacted topic, how long a tombstone (a record with a null value) stays after compaction reached it, in milliseconds.", check: intAtLeast(0)},
	{Name: "file.delete.delay.ms", Default: "60000", Type: kmsg.ConfigTypeLong, Synonym: "log.segment.delete.delay.ms",
		Doc: "Delay before a deleted segment file is removed." + noEffect + ": the sweeper deletes unreferenced objects after its own grace period.", check: intAtLeast(0)},
	{Name: "flush.messages", Default: maxLong, Type: kmsg.ConfigTypeLong, Synonym: "log.flush.interval.messages",
		Doc: "fsync every this many messages." + noEffect + ": acks=all records are durable in the object store before the answer.", check: intAtLeast(1)},
	{Name: "flush.ms", Default: maxLong, Type: kmsg.ConfigTypeLong, Synonym: "log.flush.interval.ms",
		Doc: "fsync at least this often." + noEffect + ": the node's --flush-interval decides.", check: intAtLeast(0)},
	{Name: "follower.replication.throttled.replicas", Default: "", Type: kmsg.ConfigTypeList, Synonym: "follower.replication.throttled.replicas",
		Doc: "Replicas to throttle." + noEffect + ": the object store replicates.", check: anyValue},
	{Name: "index.interval.bytes", Default: "4096", Type: kmsg.ConfigTypeInt, Synonym: "log.index.interval.bytes",
		Doc: "Offset index density." + noEffect + ".", check: intAtLeast(0)},
	{Name: "leader.replication.throttled.replicas", Default: "", Type: kmsg.ConfigTypeList, Synonym: "leader.replication.throttled.replicas",
		Doc: "Replicas to throttle." + noEffect + ": the object store replicates.", check: anyValue},
	{Name: "local.retention.bytes", Default: "-2", Type: kmsg.ConfigTypeLong, Synonym: "log.local.retention.bytes",
		Doc: "Tiered storage's local retention." + noEffect + ": the hot tier is bounded by the node's --hot-tier-bytes.", check: intAtLeast(-2)},
	{Name: "local.retention.ms", Default: "-2", Type: kmsg.ConfigTypeLong, Synonym: "log.local.retention.ms",
		Doc: "Tiered storage's local retention." + noEffect + ": the hot tier is bounded by the node's --hot-tier-bytes.", check: intAtLeast(-2)},
	{Name: "max.compaction.lag.ms", Default: maxLong, Type: kmsg.ConfigTypeLong, Synonym: "log.cleaner.max.compaction.lag.ms", Effect: true,
		Doc: "On a compacted topic, the longest a record may wait before compaction considers it, whatever min.cleanable.dirty.ratio says, in milliseconds.", check: intAtLeast(1)},
	{Name: "max.message.bytes", Default: "1048588", Type: kmsg.ConfigTypeInt, Synonym: "message.max.bytes", Effect: true,
		Doc: "The largest record batch Produce accepts, in bytes.", check: int32AtLeast(0)},
	{Name: "message.downconversion.enable", Default: "true", Type: kmsg.ConfigTypeBoolean, Synonym: "log.message.downconversion.enable",
		Doc: "Down-conversion for old consumers." + noEffect + ": Fetch below v4 is not served.", check: boolean},
	{Name: "message.format.version", Default: "3.0-IV1", Type: kmsg.ConfigTypeString, Synonym: "log.message.format.version",
		Doc: "The on-disk message format." + noEffect + ": batches are always RecordBatch v2.", check: anyValue},
	{Name: "message.timestamp.after.max.ms", Default: maxLong, Type: kmsg.ConfigTypeLong, Synonym: "log.message.timestamp.after.max.ms",
		Doc: "How far in the future a record timestamp may be." + noEffect + " yet: timestamps are not checked.", check: intAtLeast(0)},
	{Name: "message.timestamp.before.max.ms", Default: maxLong, Type: kmsg.ConfigTypeLong, Synonym: "log.message.timestamp.before.max.ms",
		Doc: "How far in the past a record timestamp may be." + noEffect + " yet: timestamps are not checked.", check: intAtLeast(0)},
	{Name: "message.timestamp.difference.max.ms", Default: maxLong, Type: kmsg.ConfigTypeLong, Synonym: "log.message.timestamp.difference.max.ms",
		Doc: "Deprecated by Kafka." + noEffect + " yet: timestamps are not checked.", check: intAtLeast(0)},
	{Name: "message.timestamp.type", Default: "CreateTime", Type: kmsg.ConfigTypeString, Synonym: "log.message.timestamp.type", Effect: true,
		Doc: "Record timestamps are the producer's (CreateTime). LogAppendTime is not supported yet.", check: checkTimestampType},
	{Name: "min.cleanable.dirty.ratio", Default: "0.5", Type: kmsg.ConfigTypeDouble, Synonym: "log.cleaner.min.cleanable.ratio", Effect: true,
		Doc: "On a compacted topic, the share of the log not yet compacted at which compaction runs.", check: floatBetween(0, 1)},
	{Name: "min.compaction.lag.ms", Default: "0", Type: kmsg.ConfigTypeLong, Synonym: "log.cleaner.min.compaction.lag.ms", Effect: true,
		Doc: "On a compacted topic, the least time a record stays uncompacted, in milliseconds.", check: intAtLeast(0)},
	{Name: "min.insync.replicas", Default: "1", Type: kmsg.ConfigTypeInt, Synonym: "min.insync.replicas",
		Doc: "Replicas that must acknowledge acks=all." + noEffect + ": acks=all waits for the object store and etcd.", check: int32AtLeast(1)},
	{Name: "preallocate", Default: "false", Type: kmsg.ConfigTypeBoolean, Synonym: "log.preallocate",
		Doc: "Preallocate segment files." + noEffect + ".", check: boolean},
	{Name: "remote.log.copy.disable", Default: "false", Type: kmsg.ConfigTypeBoolean, Synonym: "remote.log.copy.disable",
		Doc: "Tiered storage control." + noEffect + ": all data is in the object store.", check: boolean},
	{Name: "remote.log.delete.on.disable", Default: "false", Type: kmsg.ConfigTypeBoolean, Synonym: "remote.log.delete.on.disable",
		Doc: "Tiered storage control." + noEffect + ": all data is in the object store.", check: boolean},
	{Name: "remote.storage.enable", Default: "false", Type: kmsg.ConfigTypeBoolean, Synonym: "remote.log.storage.system.enable",
		Doc: "Tiered storage switch." + noEffect + ": all data is in the object store.", check: boolean},
	{Name: "retention.bytes", Default: "-1", Type: kmsg.ConfigTypeLong, Synonym: "log.retention.bytes", Effect: true,
		Doc: "The most bytes a partition keeps before its oldest data is deleted; -1 is no limit.", check: intAtLeast(-1)},
	{Name: "retention.ms", Default: "604800000", Type: kmsg.ConfigTypeLong, Synonym: "log.retention.ms", Effect: true,
		Doc: "How long data is kept before it is deleted, in milliseconds; -1 is forever.", check: intAtLeast(-1)},
	{Name: "segment.bytes", Default: strconv.Itoa(DefaultSegmentBytes), Type: kmsg.ConfigTypeInt, Synonym: "log.segment.bytes", Effect: true,
		Doc: "Flushed data is rolled into a segment object once this many bytes are pending (Strata's default, 64 MiB).", check: int32AtLeast(MinSegmentBytes)},
	{Name: "segment.index.bytes", Default: "10485760", Type: kmsg.ConfigTypeInt, Synonym: "log.index.size.max.bytes",
		Doc: "Offset index file size." + noEffect + ".", check: int32AtLeast(4)},
	{Name: "segment.jitter.ms", Default: "0", Type: kmsg.ConfigTypeLong, Synonym: "log.roll.jitter.ms",
		Doc: "Random jitter on segment.ms." + noEffect + ".", check: intAtLeast(0)},
	{Name: "segment.ms", Default: strconv.FormatInt(DefaultSegmentMs.Milliseconds(), 10), Type: kmsg.ConfigTypeLong, Synonym: "log.roll.ms", Effect: true,
		Doc: "Flushed data is rolled into a segment object once its oldest part is this old, in milliseconds (Strata's default, 10 minutes: it bounds how many small flush objects a partition's index points at).", check: intAtLeast(1)},
	{Name: "unclean.leader.election.enable", Default: "false", Type: kmsg.ConfigTypeBoolean, Synonym: "unclean.leader.election.enable",
		Doc: "Let an out-of-sync replica lead." + noEffect + ": every leader reads the same durable log.", check: boolean},
}

// Strata's own defaults and bounds.
const (
	DefaultSegmentBytes = 64 << 20
	DefaultSegmentMs    = 10 * time.Minute
	// MinSegmentBytes keeps segment objects from being absurdly small: each
	// roll is an object store PUT and an etcd transaction.
	MinSegmentBytes = 1024
)

// Lookup returns the spec of the topic config name.
func Lookup(name string) (Spec, bool) {
	i := slices.IndexFunc(Specs, func(c Spec) bool { return c.Name == name })
	if i < 0 {
		return Spec{}, false
	}
	return Specs[i], true
}

// Check reports why value is not acceptable for the topic config name (an
// unknown name included), or nil. Callers answer INVALID_CONFIG with the
// error's text.
func Check(name, value string) error {
	spec, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	if err := spec.check(value); err != nil {
		return fmt.Errorf("invalid value %q for topic config %s: %w", value, name, err)
	}
	return nil
}

// Config is the typed view of a topic's configs that the tier acts on.
type Config struct {
	SegmentBytes   int64
	SegmentMs      time.Duration
	RetentionMs    time.Duration // <0: keep forever
	RetentionBytes int64         // <0: no size limit
	// Delete and Compact are cleanup.policy's two parts.
	Delete, Compact        bool
	MinCleanableDirtyRatio float64
	MinCompactionLag       time.Duration
	MaxCompactionLag       time.Duration // math.MaxInt64: none
	DeleteRetention        time.Duration
	MaxMessageBytes        int
}

// Parse returns the typed configs of a topic: each value it sets, else the
// default. A value that does not parse (Check refuses those) gives the
// default.
func Parse(c map[string]string) Config {
	get := func(name string) string {
		if v, ok := c[name]; ok {
			return v
		}
		s, _ := Lookup(name)
		return s.Default
	}
	num := func(name string) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(get(name)), 10, 64)
		if err != nil {
			s, _ := Lookup(name)
			n, _ = strconv.ParseInt(s.Default, 10, 64)
		}
		return n
	}
	ms := func(name string) time.Duration {
		n := num(name)
		if n < 0 {
			return -1
		}
		if n > math.MaxInt64/int64(time.Millisecond) {
			return math.MaxInt64
		}
		return time.Duration(n) * time.Millisecond
	}
	cfg := Config{
		SegmentBytes:     num("segment.bytes"),
		SegmentMs:        ms("segment.ms"),
		RetentionMs:      ms("retention.ms"),
		RetentionBytes:   num("retention.bytes"),
		MinCompactionLag: ms("min.compaction.lag.ms"),
		MaxCompactionLag: ms("max.compaction.lag.ms"),
		DeleteRetention:  ms("delete.retention.ms"),
		MaxMessageBytes:  int(num("max.message.bytes")),
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.SegmentMs <= 0 {
		cfg.SegmentMs = DefaultSegmentMs
	}
	for _, p := range SplitList(get("cleanup.policy")) {
		switch p {
		case "delete":
			cfg.Delete = true
		case "compact":
			cfg.Compact = true
		}
	}
	if !cfg.Delete && !cfg.Compact {
		cfg.Delete = true
	}
	if f, err := strconv.ParseFloat(strings.TrimSpace(get("min.cleanable.dirty.ratio")), 64); err == nil && f >= 0 && f <= 1 {
		cfg.MinCleanableDirtyRatio = f
	} else {
		cfg.MinCleanableDirtyRatio = 0.5
	}
	return cfg
}

// SplitList parses a list config as Kafka does: comma-separated, items
// trimmed, empty items dropped.
func SplitList(v string) []string {
	var out []string
	for _, it := range strings.Split(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func anyValue(string) error { return nil }

func boolean(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("must be true or false")
	}
	return nil
}

func intAtLeast(least int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < least {
			return fmt.Errorf("must be an integer >= %d", least)
		}
		return nil
	}
}

func intBetween(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer in [%d, %d]", lo, hi)
		}
		return nil
	}
}

func int32AtLeast(least int32) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < int64(least) {
			return fmt.Errorf("must be a 32-bit integer >= %d", least)
		}
		return nil
	}
}

func floatBetween(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < lo || f > hi {
			return fmt.Errorf("must be a number in [%g, %g]", lo, hi)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(values, v) {
			return nil
		}
		return fmt.Errorf("must be one of %q", values)
	}
}

func checkCleanupPolicy(v string) error {
	items := SplitList(v)
	if len(items) == 0 {
		return fmt.Errorf("must be delete, compact or compact,delete")
	}
	for _, it := range items {
		if it != "delete" && it != "compact" {
			return fmt.Errorf("unknown policy %q: must be delete, compact or both", it)
		}
	}
	return nil
}

func checkTimestampType(v string) error {
	switch v {
	case "CreateTime":
		return nil
	case "LogAppendTime":
		return fmt.Errorf("%q is not supported yet: Strata keeps the producer's timestamps (%q)", v, "CreateTime")
	}
	return fmt.Errorf("must be %q", "CreateTime")
}
