package ingest

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata/topiccfg"
	"github.com/strata-io/strata/segment/kbatch"
)

func TestCheckTopicConfig(t *testing.T) {
	tests := []struct {
		name, value string
		wantErr     string // "" for valid
	}{
		{"retention.ms", "604800000", ""},
		{"retention.ms", "-1", ""},
		{"retention.ms", " 1000 ", ""},
		{"retention.ms", "-2", "integer >= -1"},
		{"retention.ms", "soon", "integer >= -1"},
		{"retention.ms", "", "integer >= -1"},
		{"retention.bytes", "1024", ""},
		{"retention.bytes", "-1", ""},
		{"retention.bytes", "1.5", "integer >= -1"},
		{"segment.bytes", "1024", ""},
		{"segment.bytes", "1023", ">= 1024"},
		{"segment.bytes", "4294967296", "32-bit"},
		{"segment.ms", "1", ""},
		{"segment.ms", "0", ">= 1"},
		{"max.message.bytes", "0", ""},
		{"max.message.bytes", "2000000", ""},
		{"max.message.bytes", "-5", ">= 0"},
		{"cleanup.policy", "delete", ""},
		{"cleanup.policy", " delete , delete", ""},
		{"cleanup.policy", "compact", ""},
		{"cleanup.policy", "delete,compact", ""},
		{"cleanup.policy", "", "must be"},
		{"cleanup.policy", "shred", "unknown policy"},
		{"message.timestamp.type", "CreateTime", ""},
		{"message.timestamp.type", "LogAppendTime", "not supported yet"},
		{"message.timestamp.type", "createtime", "must be"},
		{"compression.type", "producer", ""},
		{"compression.type", "zstd", ""},
		{"compression.type", "brotli", "must be one of"},
		{"flush.ms", "5", ""},
		{"flush.ms", "-1", "integer >= 0"},
		{"min.insync.replicas", "2", ""},
		{"min.insync.replicas", "0", ">= 1"},
		{"unclean.leader.election.enable", "true", ""},
		{"unclean.leader.election.enable", "yes", "true or false"},
		{"message.downconversion.enable", "false", ""},
		{"min.cleanable.dirty.ratio", "0.1", ""},
		{"min.cleanable.dirty.ratio", "1.5", "number in"},
		{"no.such.config", "5", "unknown topic config"},
		{"", "5", "unknown topic config"},
	}
	for _, tt := range tests {
		err := checkTopicConfig(tt.name, tt.value)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s=%q: %v, want valid", tt.name, tt.value, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s=%q: error %v, want one containing %q", tt.name, tt.value, err, tt.wantErr)
		}
	}
	// Every default must pass its own check, or Describe would report a
	// value Alter refuses.
	for _, spec := range topiccfg.Specs {
		if err := checkTopicConfig(spec.Name, spec.Default); err != nil {
			t.Errorf("default %s=%q fails its check: %v", spec.Name, spec.Default, err)
		}
	}
}

func incOp(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name = name
	c.Op = op
	c.Value = value
	return c
}

func TestIncrementalChanges(t *testing.T) {
	s := kmsg.StringPtr
	const (
		set      = kmsg.IncrementalAlterConfigOpSet
		del      = kmsg.IncrementalAlterConfigOpDelete
		appendOp = kmsg.IncrementalAlterConfigOpAppend
		subtract = kmsg.IncrementalAlterConfigOpSubtract
	)
	tests := []struct {
		name string
		cur  map[string]string
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want map[string]*string // nil entries: back to the default
		code int16
	}{
		{"set", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("5"))},
			map[string]*string{"retention.ms": s("5")}, 0},
		{"delete ignores the value", map[string]string{"retention.ms": "5"}, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", del, s("x"))},
			map[string]*string{"retention.ms": nil}, 0},
		{"append to the default", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", appendOp, s("compact"))},
			map[string]*string{"cleanup.policy": s("delete,compact")}, 0},
		{"append what is there", map[string]string{"cleanup.policy": "delete"}, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", appendOp, s("delete"))},
			map[string]*string{"cleanup.policy": s("delete")}, 0},
		{"subtract", map[string]string{"cleanup.policy": "delete,compact"}, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", subtract, s("compact"))},
			map[string]*string{"cleanup.policy": s("delete")}, 0},
		{"subtract everything", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", subtract, s("delete"))},
			map[string]*string{"cleanup.policy": s("")}, 0},
		{"append to a non-list", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", appendOp, s("5"))}, nil, kerr.InvalidConfig.Code},
		{"unknown name", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("no.such.config", set, s("5"))}, nil, kerr.InvalidConfig.Code},
		{"null set", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, nil)}, nil, kerr.InvalidRequest.Code},
		{"unknown op", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", 9, s("5"))}, nil, kerr.InvalidRequest.Code},
		{"twice", nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("5")), incOp("retention.ms", del, nil)}, nil, kerr.InvalidRequest.Code},
	}
	for _, tt := range tests {
		got, err := incrementalChanges(tt.cur, tt.ops)
		if tt.code != 0 {
			if err == nil || err.code != tt.code {
				t.Errorf("%s: error %v, want %v", tt.name, err, kerr.ErrorForCode(tt.code))
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !maps.EqualFunc(got, tt.want, func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }) {
			t.Errorf("%s: changes %v, want %v", tt.name, derefAll(got), derefAll(tt.want))
		}
	}
}

func derefAll(m map[string]*string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = "<nil>"
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func describeReq(v int16, typ kmsg.ConfigResourceType, name string, names ...string) *kmsg.DescribeConfigsRequest {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = v
	req.IncludeSynonyms = true
	req.IncludeDocumentation = true
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType = typ
	r.ResourceName = name
	r.ConfigNames = names
	req.Resources = append(req.Resources, r)
	return req
}

// configsOf turns a described resource into name -> config.
func configsOf(r kmsg.DescribeConfigsResponseResource) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	out := make(map[string]kmsg.DescribeConfigsResponseResourceConfig, len(r.Configs))
	for _, c := range r.Configs {
		out[c.Name] = c
	}
	return out
}

func TestDescribeConfigs(t *testing.T) {
	n := startNode(t, func(c *Config) { c.DefaultPartitions = 3 })
	if _, err := n.meta.CreateTopic(context.Background(), "described", 1, map[string]string{"retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := n.meta.Topic("described"); return ok })
	c := n.dial()

	for v := int16(0); v <= 4; v++ {
		r := roundTrip[*kmsg.DescribeConfigsResponse](c, describeReq(v, kmsg.ConfigResourceTypeTopic, "described")).Resources[0]
		if r.ErrorCode != 0 || r.ResourceName != "described" || len(r.Configs) != len(topiccfg.Specs) {
			t.Fatalf("v%d: error %v, %d configs, want %d", v, kerr.ErrorForCode(r.ErrorCode), len(r.Configs), len(topiccfg.Specs))
		}
		cfgs := configsOf(r)
		set, def := cfgs["retention.ms"], cfgs["segment.bytes"]
		// IsDefault is on the wire in v0 only; Source replaces it from v1.
		if *set.Value != "60000" || set.ReadOnly || *def.Value != "67108864" || (v == 0 && (set.IsDefault || !def.IsDefault)) {
			t.Errorf("v%d: retention.ms %+v, segment.bytes %+v", v, set, def)
		}
		if *cfgs["max.message.bytes"].Value != "1048588" || *cfgs["cleanup.policy"].Value != "delete" {
			t.Errorf("v%d: defaults %+v", v, cfgs)
		}
		if v >= 1 {
			if set.Source != kmsg.ConfigSourceDynamicTopicConfig || def.Source != kmsg.ConfigSourceDefaultConfig {
				t.Errorf("v%d: sources %v, %v", v, set.Source, def.Source)
			}
			if len(set.ConfigSynonyms) != 2 || set.ConfigSynonyms[1].Name != "log.retention.ms" || *set.ConfigSynonyms[1].Value != "604800000" ||
				len(def.ConfigSynonyms) != 1 || def.ConfigSynonyms[0].Name != "log.segment.bytes" {
				t.Errorf("v%d: synonyms %+v, %+v", v, set.ConfigSynonyms, def.ConfigSynonyms)
			}
		}
		if v >= 3 && (set.Documentation == nil || set.ConfigType != kmsg.ConfigTypeLong || def.ConfigType != kmsg.ConfigTypeInt) {
			t.Errorf("v%d: documentation %v, types %v, %v", v, set.Documentation, set.ConfigType, def.ConfigType)
		}
	}

	// Filtering by name, unknown names left out.
	r := roundTrip[*kmsg.DescribeConfigsResponse](c, describeReq(4, kmsg.ConfigResourceTypeTopic, "described", "segment.ms", "no.such.config")).Resources[0]
	if r.ErrorCode != 0 || len(r.Configs) != 1 || r.Configs[0].Name != "segment.ms" || *r.Configs[0].Value != "600000" {
		t.Errorf("filtered: %+v", r)
	}

	// Brokers: this node, by id or by the empty name.
	for _, name := range []string{"", "1"} {
		r := roundTrip[*kmsg.DescribeConfigsResponse](c, describeReq(2, kmsg.ConfigResourceTypeBroker, name)).Resources[0]
		cfgs := configsOf(r)
		np, auto := cfgs["num.partitions"], cfgs["auto.create.topics.enable"]
		if r.ErrorCode != 0 || *np.Value != "3" || np.Source != kmsg.ConfigSourceStaticBrokerConfig || !np.ReadOnly ||
			*auto.Value != "true" || *cfgs["log.retention.ms"].Value != "604800000" || cfgs["log.retention.ms"].Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("broker %q: error %v, configs %+v", name, kerr.ErrorForCode(r.ErrorCode), cfgs)
		}
	}

	errs := []struct {
		name string
		typ  kmsg.ConfigResourceType
		res  string
		want int16
	}{
		{"unknown topic", kmsg.ConfigResourceTypeTopic, "nope", kerr.UnknownTopicOrPartition.Code},
		{"bad topic name", kmsg.ConfigResourceTypeTopic, "bad/name", kerr.InvalidTopicException.Code},
		{"another broker", kmsg.ConfigResourceTypeBroker, "2", kerr.InvalidRequest.Code},
		{"not a broker id", kmsg.ConfigResourceTypeBroker, "one", kerr.InvalidRequest.Code},
		{"broker logger", kmsg.ConfigResourceTypeBrokerLogger, "1", kerr.InvalidRequest.Code},
		{"client metrics", kmsg.ConfigResourceTypeClientMetrics, "m", kerr.InvalidRequest.Code},
	}
	for _, tt := range errs {
		r := roundTrip[*kmsg.DescribeConfigsResponse](c, describeReq(4, tt.typ, tt.res)).Resources[0]
		if r.ErrorCode != tt.want || r.ErrorMessage == nil || len(r.Configs) != 0 {
			t.Errorf("%s: error %v (%v), %d configs; want %v", tt.name, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, len(r.Configs), kerr.ErrorForCode(tt.want))
		}
	}
}

func alterReq(v int16, validateOnly bool, resources ...kmsg.AlterConfigsRequestResource) *kmsg.AlterConfigsRequest {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version = v
	req.ValidateOnly = validateOnly
	req.Resources = resources
	return req
}

func alterResource(typ kmsg.ConfigResourceType, name string, kvs ...string) kmsg.AlterConfigsRequestResource {
	r := kmsg.NewAlterConfigsRequestResource()
	r.ResourceType = typ
	r.ResourceName = name
	for i := 0; i+1 < len(kvs); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name = kvs[i]
		c.Value = kmsg.StringPtr(kvs[i+1])
		r.Configs = append(r.Configs, c)
	}
	return r
}

func TestAlterConfigs(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("altered", 1)
	c := n.dial()
	topic := kmsg.ConfigResourceTypeTopic
	configs := func() map[string]string { tp, _ := n.meta.Topic("altered"); return tp.Configs }

	for v := int16(0); v <= 2; v++ {
		resp := roundTrip[*kmsg.AlterConfigsResponse](c, alterReq(v, false, alterResource(topic, "altered", "retention.ms", "1000", "segment.bytes", "2048")))
		if r := resp.Resources[0]; r.ErrorCode != 0 {
			t.Fatalf("v%d: %v %v", v, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		if got := configs(); !maps.Equal(got, map[string]string{"retention.ms": "1000", "segment.bytes": "2048"}) {
			t.Fatalf("v%d: configs %v", v, got)
		}
		// Legacy semantics: the set given replaces the whole set.
		roundTrip[*kmsg.AlterConfigsResponse](c, alterReq(v, false, alterResource(topic, "altered", "retention.bytes", "4096")))
		if got := configs(); !maps.Equal(got, map[string]string{"retention.bytes": "4096"}) {
			t.Fatalf("v%d: configs after replace %v", v, got)
		}
		roundTrip[*kmsg.AlterConfigsResponse](c, alterReq(v, false, alterResource(topic, "altered")))
		if got := configs(); len(got) != 0 {
			t.Fatalf("v%d: configs after an empty set %v", v, got)
		}
	}

	// Refusals change nothing.
	roundTrip[*kmsg.AlterConfigsResponse](c, alterReq(1, false, alterResource(topic, "altered", "retention.ms", "1000")))
	nullValue := alterResource(topic, "altered", "retention.ms", "5")
	nullValue.Configs[0].Value = nil
	tests := []struct {
		name         string
		validateOnly bool
		res          []kmsg.AlterConfigsRequestResource
		want         int16
	}{
		{"validate only", true, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "retention.ms", "7")}, 0},
		{"bad value", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "retention.ms", "7", "segment.bytes", "10")}, kerr.InvalidConfig.Code},
		{"compaction", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "cleanup.policy", "shred")}, kerr.InvalidConfig.Code},
		{"log append time", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "message.timestamp.type", "LogAppendTime")}, kerr.InvalidConfig.Code},
		{"unknown name", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "no.such.config", "7")}, kerr.InvalidConfig.Code},
		{"null value", false, []kmsg.AlterConfigsRequestResource{nullValue}, kerr.InvalidRequest.Code},
		{"named twice", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "retention.ms", "7", "retention.ms", "8")}, kerr.InvalidRequest.Code},
		{"resource twice", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "altered", "retention.ms", "7"), alterResource(topic, "altered", "retention.ms", "8")}, kerr.InvalidRequest.Code},
		{"unknown topic", false, []kmsg.AlterConfigsRequestResource{alterResource(topic, "nope", "retention.ms", "7")}, kerr.UnknownTopicOrPartition.Code},
		{"broker", false, []kmsg.AlterConfigsRequestResource{alterResource(kmsg.ConfigResourceTypeBroker, "1", "num.partitions", "7")}, kerr.InvalidRequest.Code},
		{"broker logger", false, []kmsg.AlterConfigsRequestResource{alterResource(kmsg.ConfigResourceTypeBrokerLogger, "1", "kafka", "DEBUG")}, kerr.InvalidRequest.Code},
	}
	for _, tt := range tests {
		resp := roundTrip[*kmsg.AlterConfigsResponse](c, alterReq(2, tt.validateOnly, tt.res...))
		for _, r := range resp.Resources {
			if r.ErrorCode != tt.want || (tt.want != 0) != (r.ErrorMessage != nil) {
				t.Errorf("%s: error %v (%v), want %v", tt.name, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, kerr.ErrorForCode(tt.want))
			}
		}
		if got := configs(); !maps.Equal(got, map[string]string{"retention.ms": "1000"}) {
			t.Fatalf("%s: configs changed to %v", tt.name, got)
		}
	}
	// A broker resource with nothing to change is fine.
	if r := roundTrip[*kmsg.AlterConfigsResponse](c, alterReq(2, false, alterResource(kmsg.ConfigResourceTypeBroker, ""))).Resources[0]; r.ErrorCode != 0 {
		t.Errorf("empty broker alter: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func incReq(v int16, validateOnly bool, typ kmsg.ConfigResourceType, name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) *kmsg.IncrementalAlterConfigsRequest {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = v
	req.ValidateOnly = validateOnly
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType = typ
	r.ResourceName = name
	r.Configs = ops
	req.Resources = append(req.Resources, r)
	return req
}

func TestIncrementalAlterConfigs(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("inc", 1)
	c := n.dial()
	s := kmsg.StringPtr
	topic := kmsg.ConfigResourceTypeTopic
	configs := func() map[string]string { tp, _ := n.meta.Topic("inc"); return tp.Configs }
	set, del := kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete

	steps := []struct {
		name         string
		v            int16
		validateOnly bool
		typ          kmsg.ConfigResourceType
		res          string
		ops          []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want         int16
		after        map[string]string
	}{
		{"set two", 0, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("1000")), incOp("retention.bytes", set, s("4096"))},
			0, map[string]string{"retention.ms": "1000", "retention.bytes": "4096"}},
		{"set one keeps the other", 1, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("2000"))},
			0, map[string]string{"retention.ms": "2000", "retention.bytes": "4096"}},
		{"delete", 1, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.bytes", del, nil)},
			0, map[string]string{"retention.ms": "2000"}},
		{"append delete", 1, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, s("delete"))},
			0, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
		{"validate only", 1, true, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("5"))},
			0, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
		{"append an unknown policy", 1, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, s("shred"))},
			kerr.InvalidConfig.Code, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
		{"subtract delete", 1, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, s("delete"))},
			kerr.InvalidConfig.Code, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
		{"one bad value spoils the set", 1, false, topic, "inc", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("3000")), incOp("segment.ms", set, s("0"))},
			kerr.InvalidConfig.Code, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
		{"unknown topic", 1, false, topic, "nope", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("retention.ms", set, s("3000"))},
			kerr.UnknownTopicOrPartition.Code, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
		{"broker", 1, false, kmsg.ConfigResourceTypeBroker, "1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{incOp("log.retention.ms", set, s("3000"))},
			kerr.InvalidRequest.Code, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete"}},
	}
	for _, st := range steps {
		r := roundTrip[*kmsg.IncrementalAlterConfigsResponse](c, incReq(st.v, st.validateOnly, st.typ, st.res, st.ops...)).Resources[0]
		if r.ErrorCode != st.want || (st.want != 0) != (r.ErrorMessage != nil) {
			t.Fatalf("%s: error %v (%v), want %v", st.name, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, kerr.ErrorForCode(st.want))
		}
		if got := configs(); !maps.Equal(got, st.after) {
			t.Fatalf("%s: configs %v, want %v", st.name, got, st.after)
		}
	}

	// What was altered is what Describe reports.
	cfgs := configsOf(roundTrip[*kmsg.DescribeConfigsResponse](c, describeReq(4, topic, "inc")).Resources[0])
	if rm := cfgs["retention.ms"]; *rm.Value != "2000" || rm.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("described retention.ms %+v", rm)
	}
	if rb := cfgs["retention.bytes"]; *rb.Value != "-1" || rb.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("described retention.bytes %+v", rb)
	}
}

func TestCreateTopicsConfigValues(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial()
	tests := []struct {
		topic kmsg.CreateTopicsRequestTopic
		want  int16
	}{
		{newTopic("ok", 1, 1, "segment.bytes", "1048576", "message.timestamp.type", "CreateTime"), 0},
		{newTopic("log-append", 1, 1, "message.timestamp.type", "LogAppendTime"), kerr.InvalidConfig.Code},
		{newTopic("tiny-segments", 1, 1, "segment.bytes", "14"), kerr.InvalidConfig.Code},
		{newTopic("compact-delete", 1, 1, "cleanup.policy", "compact,delete"), 0},
		{newTopic("bad-ratio", 1, 1, "cleanup.policy", "compact", "min.cleanable.dirty.ratio", "2"), kerr.InvalidConfig.Code},
	}
	for _, tt := range tests {
		st := roundTrip[*kmsg.CreateTopicsResponse](c, createReq(7, false, tt.topic)).Topics[0]
		if st.ErrorCode != tt.want {
			t.Errorf("%s: error %v (%v), want %v", tt.topic.Topic, kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage, kerr.ErrorForCode(tt.want))
		}
	}
}

// TestEveryKafkaTopicConfigIsAccepted: the names admin UIs, Terraform
// providers and operators set, including ones that have no effect in
// Strata, are taken at creation and by AlterConfigs and described back as
// the topic's own, with Kafka's defaults for the rest.
func TestEveryKafkaTopicConfigIsAccepted(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	req.TimeoutMillis = 10000
	req.Topics = []kmsg.CreateTopicsRequestTopic{newTopic("operated", 1, 3,
		"min.insync.replicas", "2", "unclean.leader.election.enable", "false", "message.downconversion.enable", "true",
		"flush.ms", "1000", "preallocate", "true", "segment.jitter.ms", "5")}
	if r := roundTrip[*kmsg.CreateTopicsResponse](c, req); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics with operator configs: %v %v", kerr.ErrorForCode(r.Topics[0].ErrorCode), r.Topics[0].ErrorMessage)
	}
	waitFor(t, func() bool { _, ok := n.meta.Topic("operated"); return ok })
	r := roundTrip[*kmsg.DescribeConfigsResponse](c, describeReq(4, kmsg.ConfigResourceTypeTopic, "operated")).Resources[0]
	cfgs := configsOf(r)
	for name, want := range map[string]string{"min.insync.replicas": "2", "unclean.leader.election.enable": "false", "preallocate": "true", "flush.ms": "1000"} {
		if c := cfgs[name]; c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s: %+v, want %s set on the topic", name, c, want)
		}
	}
	for name, want := range map[string]string{"delete.retention.ms": "86400000", "min.cleanable.dirty.ratio": "0.5", "index.interval.bytes": "4096"} {
		if c := cfgs[name]; c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("%s: %+v, want Kafka's default %s", name, c, want)
		}
	}
	// A bad value of an accepted name is still refused.
	req.Topics = []kmsg.CreateTopicsRequestTopic{newTopic("badly-operated", 1, 3, "min.insync.replicas", "zero")}
	if r := roundTrip[*kmsg.CreateTopicsResponse](c, req); r.Topics[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("min.insync.replicas=zero: %v, want INVALID_CONFIG", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
}

// TestCompactedTopicRefusesRecordsWithoutKey: as Kafka, a produce of a
// record with a null key to a compacted topic is INVALID_RECORD and stores
// nothing; keyed records are taken.
func TestCompactedTopicRefusesRecordsWithoutKey(t *testing.T) {
	n := startNode(t, nil)
	if _, err := n.meta.CreateTopic(context.Background(), "table", 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := n.meta.Topic("table"); return ok })
	c := n.dial()
	build := func(keys ...[]byte) []byte {
		recs := make([]kbatch.Record, len(keys))
		for i, k := range keys {
			recs[i] = kbatch.Record{Key: k, Value: []byte("v"), Timestamp: 1}
		}
		b, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.Zstd})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "table", 0, build([]byte("a"), nil)))
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRecord.Code {
		t.Fatalf("record without a key: %v, want INVALID_RECORD", kerr.ErrorForCode(code))
	}
	r = roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "table", 0, build([]byte("a"), []byte("b"))))
	if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("keyed records: %v at %d, want stored at 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
}
