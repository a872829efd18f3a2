package ingest

// Topic and broker configs for CreateTopics, DescribeConfigs, AlterConfigs
// and IncrementalAlterConfigs. The topic configs' names, defaults, types
// and validation are metadata/topiccfg's one table, which the tier reads
// too: every standard Kafka topic config is accepted (those without effect
// in Strata say so in their documentation); only invalid values are
// INVALID_CONFIG.

import (
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
)

// topicConfigSpec returns the spec of the topic config name.
func topicConfigSpec(name string) (topiccfg.Spec, bool) { return topiccfg.Lookup(name) }

// checkTopicConfig reports why value is not acceptable for the topic config
// name (an unknown name included), or nil.
func checkTopicConfig(name, value string) error { return topiccfg.Check(name, value) }

// splitConfigList parses a list config as Kafka does.
func splitConfigList(v string) []string { return topiccfg.SplitList(v) }

// describeTopicConfigs lists topic t's configs for DescribeConfigs: every
// config in topicConfigSpecs (only those in names, when names is not
// empty), each with its value and where it comes from (the topic, or
// Kafka's default), its synonyms when asked for (the topic's value, then
// the default under its broker name) and its documentation when asked for.
func describeTopicConfigs(t metadata.Topic, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, spec := range topiccfg.Specs {
		if len(names) > 0 && !slices.Contains(names, spec.Name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = spec.Name
		rc.ConfigType = spec.Type
		def := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		def.Name = spec.Synonym
		def.Value = kmsg.StringPtr(spec.Default)
		def.Source = kmsg.ConfigSourceDefaultConfig
		if v, ok := t.Configs[spec.Name]; ok {
			rc.Value = kmsg.StringPtr(v)
			rc.Source = kmsg.ConfigSourceDynamicTopicConfig
			if synonyms {
				own := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				own.Name = spec.Name
				own.Value = kmsg.StringPtr(v)
				own.Source = kmsg.ConfigSourceDynamicTopicConfig
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, own)
			}
		} else {
			rc.Value = kmsg.StringPtr(spec.Default)
			rc.Source = kmsg.ConfigSourceDefaultConfig
			rc.IsDefault = true
		}
		if synonyms {
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, def)
		}
		if docs {
			rc.Documentation = kmsg.StringPtr(spec.Doc)
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
	seen := map[string]bool{"auto.create.topics.enable": true, "broker.id": true, "num.partitions": true}
	for _, spec := range topiccfg.Specs {
		if seen[spec.Synonym] {
			continue
		}
		seen[spec.Synonym] = true
		add(spec.Synonym, spec.Default, spec.Type, false, "Default of topic config "+spec.Name+": "+spec.Doc)
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
