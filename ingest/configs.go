package ingest

// The topic configs Strata honours, shared by CreateTopics, DescribeConfigs,
// AlterConfigs and IncrementalAlterConfigs so that every path accepts and
// reports the same names, defaults and values.
//
// * retention.ms, retention.bytes: the tier's retention (whole index
//   entries past either limit are deleted).
// * segment.bytes, segment.ms: when the tier rolls flush objects into a
//   segment object. segment.ms defaults to 10 minutes, not Kafka's 7 days:
//   it bounds how many small flush objects a partition's index points at.
//   segment.bytes defaults to Strata's 64 MiB.
// * max.message.bytes: enforced by Produce.
// * cleanup.policy: only "delete"; "compact" is INVALID_CONFIG (no log
//   compaction yet).
// * message.timestamp.type: only CreateTime; LogAppendTime is INVALID_CONFIG
//   (Produce keeps the producer's timestamps).
// * compression.type: every Kafka value is accepted and reported, but
//   batches are always stored as the producer compressed them (Kafka's
//   "producer"): Strata never recompresses.
//
// Any other name is INVALID_CONFIG: a config Strata would silently ignore is
// worse than a refusal.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// configSpec describes one topic config.
type configSpec struct {
	name string
	// def is the value that applies when the topic does not set it.
	def string
	typ kmsg.ConfigType
	// synonym is the broker config Kafka derives the default from; it is
	// reported as the DEFAULT_CONFIG synonym.
	synonym string
	doc     string
	check   func(string) error
}

// topicConfigSpecs is the table of topic configs, sorted by name as Kafka
// lists them.
var topicConfigSpecs = []configSpec{
	{
		name: "cleanup.policy", def: "delete", typ: kmsg.ConfigTypeList, synonym: "log.cleanup.policy",
		doc:   "How old data is removed: delete (by retention). compact is not supported yet.",
		check: checkCleanupPolicy,
	},
	{
		name: "compression.type", def: "producer", typ: kmsg.ConfigTypeString, synonym: "compression.type",
		doc:   "Accepted for compatibility; batches are always stored as the producer compressed them.",
		check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
	},
	{
		name: "max.message.bytes", def: strconv.Itoa(defaultMaxMessageBytes), typ: kmsg.ConfigTypeInt, synonym: "message.max.bytes",
		doc:   "The largest record batch Produce accepts, in bytes.",
		check: int32AtLeast(0),
	},
	{
		name: "message.timestamp.type", def: "CreateTime", typ: kmsg.ConfigTypeString, synonym: "log.message.timestamp.type",
		doc:   "Record timestamps are the producer's (CreateTime). LogAppendTime is not supported yet.",
		check: checkTimestampType,
	},
	{
		name: "retention.bytes", def: "-1", typ: kmsg.ConfigTypeLong, synonym: "log.retention.bytes",
		doc:   "The most bytes a partition keeps before its oldest data is deleted; -1 is no limit.",
		check: intAtLeast(-1),
	},
	{
		name: "retention.ms", def: "604800000", typ: kmsg.ConfigTypeLong, synonym: "log.retention.ms",
		doc:   "How long data is kept before it is deleted, in milliseconds; -1 is forever.",
		check: intAtLeast(-1),
	},
	{
		name: "segment.bytes", def: strconv.Itoa(64 << 20), typ: kmsg.ConfigTypeInt, synonym: "log.segment.bytes",
		doc:   "Flushed data is rolled into a segment object once this many bytes are pending.",
		check: int32AtLeast(minSegmentBytes),
	},
	{
		name: "segment.ms", def: "600000", typ: kmsg.ConfigTypeLong, synonym: "log.roll.ms",
		doc:   "Flushed data is rolled into a segment object once its oldest part is this old, in milliseconds.",
		check: intAtLeast(1),
	},
}

// minSegmentBytes keeps segment objects from being absurdly small: each
// roll is an object store PUT and an etcd transaction.
const minSegmentBytes = 1024

// topicConfigSpec returns the spec of the topic config name.
func topicConfigSpec(name string) (configSpec, bool) {
	i := slices.IndexFunc(topicConfigSpecs, func(c configSpec) bool { return c.name == name })
	if i < 0 {
		return configSpec{}, false
	}
	return topicConfigSpecs[i], true
}

// checkTopicConfig reports why value is not acceptable for the topic config
// name (an unknown name included), or nil. Callers answer INVALID_CONFIG with
// the error's text.
func checkTopicConfig(name, value string) error {
	spec, ok := topicConfigSpec(name)
	if !ok {
		return fmt.Errorf("unknown or unsupported topic config %q", name)
	}
	if err := spec.check(value); err != nil {
		return fmt.Errorf("invalid value %q for topic config %s: %w", value, name, err)
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

func int32AtLeast(least int32) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < int64(least) {
			return fmt.Errorf("must be a 32-bit integer >= %d", least)
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
	items := splitConfigList(v)
	if len(items) == 0 {
		return fmt.Errorf("must be %q", "delete")
	}
	for _, it := range items {
		switch it {
		case "delete":
		case "compact":
			return fmt.Errorf("%q is not supported yet: Strata has no log compaction; use %q", "compact", "delete")
		default:
			return fmt.Errorf("unknown policy %q: must be %q", it, "delete")
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

// splitConfigList parses a list config as Kafka does: comma-separated,
// items trimmed, empty items dropped.
func splitConfigList(v string) []string {
	var out []string
	for _, it := range strings.Split(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// describeTopicConfigs lists topic t's configs for DescribeConfigs: every
// config in topicConfigSpecs (only those in names, when names is not
// empty), each with its value and where it comes from (the topic, or
// Kafka's default), its synonyms when asked for (the topic's value, then
// the default under its broker name) and its documentation when asked for.
func describeTopicConfigs(t metadata.Topic, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, spec := range topicConfigSpecs {
		if len(names) > 0 && !slices.Contains(names, spec.name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = spec.name
		rc.ConfigType = spec.typ
		def := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		def.Name = spec.synonym
		def.Value = kmsg.StringPtr(spec.def)
		def.Source = kmsg.ConfigSourceDefaultConfig
		if v, ok := t.Configs[spec.name]; ok {
			rc.Value = kmsg.StringPtr(v)
			rc.Source = kmsg.ConfigSourceDynamicTopicConfig
			if synonyms {
				own := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				own.Name = spec.name
				own.Value = kmsg.StringPtr(v)
				own.Source = kmsg.ConfigSourceDynamicTopicConfig
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, own)
			}
		} else {
			rc.Value = kmsg.StringPtr(spec.def)
			rc.Source = kmsg.ConfigSourceDefaultConfig
			rc.IsDefault = true
		}
		if synonyms {
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, def)
		}
		if docs {
			rc.Documentation = kmsg.StringPtr(spec.doc)
		}
		out = append(out, rc)
	}
	return out
}

// brokerConfig is one read-only broker config reported by DescribeConfigs.
type brokerConfig struct {
	name, value string
	typ         kmsg.ConfigType
	// static: set by this node's flags (STATIC_BROKER_CONFIG); otherwise
	// Strata's fixed default (DEFAULT_CONFIG).
	static bool
	doc    string
}

// brokerConfigs returns the broker configs this node reports. None can be
// altered: they are the node's flags and Strata's fixed defaults.
func (s *Server) brokerConfigs() []brokerConfig {
	var out []brokerConfig
	add := func(name, value string, typ kmsg.ConfigType, static bool, doc string) {
		out = append(out, brokerConfig{name: name, value: value, typ: typ, static: static, doc: doc})
	}
	add("auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), kmsg.ConfigTypeBoolean, true,
		"Whether Metadata creates unknown topics clients ask for.")
	add("broker.id", strconv.Itoa(int(s.cfg.NodeID)), kmsg.ConfigTypeInt, true, "This node's id.")
	// The topic defaults, under their broker names.
	for _, spec := range topicConfigSpecs {
		add(spec.synonym, spec.def, spec.typ, false, "Default of topic config "+spec.name+": "+spec.doc)
	}
	add("num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions)), kmsg.ConfigTypeInt, true,
		"The partition count of topics created without one.")
	slices.SortFunc(out, func(a, b brokerConfig) int { return strings.Compare(a.name, b.name) })
	return out
}

// describeBrokerConfigs lists this node's broker configs for
// DescribeConfigs, filtered by names when not empty.
func (s *Server) describeBrokerConfigs(names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, c := range s.brokerConfigs() {
		if len(names) > 0 && !slices.Contains(names, c.name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = c.name
		rc.Value = kmsg.StringPtr(c.value)
		rc.ReadOnly = true
		rc.ConfigType = c.typ
		rc.Source = kmsg.ConfigSourceDefaultConfig
		rc.IsDefault = !c.static
		if c.static {
			rc.Source = kmsg.ConfigSourceStaticBrokerConfig
		}
		if synonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name = c.name
			syn.Value = rc.Value
			syn.Source = rc.Source
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
		}
		if docs {
			rc.Documentation = kmsg.StringPtr(c.doc)
		}
		out = append(out, rc)
	}
	return out
}
