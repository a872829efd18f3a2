package ingest

// Group configs (KIP-848, KIP-932): IncrementalAlterConfigs and
// DescribeConfigs on GROUP resources (type 32). They are stored per group in
// etcd (metadata.PutGroupConfig) and read by the group coordinator and by
// share-partition leaders through a short cache (groupConfigTTL), so a change
// applies within seconds on every node.
//
// * Known configs, checked as Kafka checks them: share.auto.offset.reset
//   (latest, earliest), share.record.lock.duration.ms (1000 to 3600000),
//   share.delivery.count.limit (2 to 10), share.isolation.level
//   (read_uncommitted only: read_committed is refused with INVALID_CONFIG),
//   share.session.timeout.ms, share.heartbeat.interval.ms,
//   consumer.session.timeout.ms, consumer.heartbeat.interval.ms (1000 to
//   3600000). Another name is INVALID_CONFIG; SET and DELETE are the
//   operations (APPEND/SUBTRACT: INVALID_CONFIG, none is a list).
// * AlterConfigs (the non-incremental API) keeps refusing GROUP resources,
//   as Kafka does.

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/share"
)

// groupConfigTTL is how long a node trusts its cached copy of a group's
// configs.
const groupConfigTTL = 2 * time.Second

type groupConfigSpec struct {
	def   string
	check func(string) bool
	doc   string
}

func intBetween(lo, hi int64) func(string) bool {
	return func(v string) bool {
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && n >= lo && n <= hi
	}
}

func oneOf(vals ...string) func(string) bool {
	return func(v string) bool {
		for _, x := range vals {
			if v == x {
				return true
			}
		}
		return false
	}
}

var groupConfigSpecs = map[string]groupConfigSpec{
	"share.auto.offset.reset":        {"latest", oneOf("latest", "earliest"), "Where a share group starts on a partition it never consumed: latest or earliest."},
	"share.record.lock.duration.ms":  {"30000", intBetween(1000, 3600000), "How long a share consumer holds acquired records before they are delivered again."},
	"share.delivery.count.limit":     {"5", intBetween(2, 10), "How often a record is delivered before it is archived."},
	"share.isolation.level":          {"read_uncommitted", oneOf("read_uncommitted"), "Share groups read uncommitted records (read_committed is not served)."},
	"share.session.timeout.ms":       {"45000", intBetween(1000, 3600000), "A share member's session timeout."},
	"share.heartbeat.interval.ms":    {"5000", intBetween(1000, 3600000), "A share member's heartbeat interval."},
	"consumer.session.timeout.ms":    {"45000", intBetween(1000, 3600000), "A consumer-protocol member's session timeout."},
	"consumer.heartbeat.interval.ms": {"5000", intBetween(1000, 3600000), "A consumer-protocol member's heartbeat interval."},
}

// groupConfigs caches group configs read from etcd.
type groupConfigs struct {
	mu sync.Mutex
	m  map[string]cachedGroupConfig
}

type cachedGroupConfig struct {
	cfg map[string]string
	at  time.Time
}

// groupConfig returns group's configs (cached up to groupConfigTTL); on an
// etcd error it returns the last copy, or none.
func (s *Server) groupConfig(ctx context.Context, group string) map[string]string {
	s.gcfg.mu.Lock()
	c, ok := s.gcfg.m[group]
	s.gcfg.mu.Unlock()
	if ok && time.Since(c.at) < groupConfigTTL {
		return c.cfg
	}
	cfg, err := s.meta.GroupConfig(ctx, group)
	if err != nil {
		return c.cfg
	}
	s.gcfg.mu.Lock()
	if s.gcfg.m == nil {
		s.gcfg.m = map[string]cachedGroupConfig{}
	}
	s.gcfg.m[group] = cachedGroupConfig{cfg: cfg, at: time.Now()}
	s.gcfg.mu.Unlock()
	return cfg
}

// groupConfigValue is one config of the group, or its default.
func groupConfigValue(cfg map[string]string, name string) string {
	if v, ok := cfg[name]; ok {
		return v
	}
	return groupConfigSpecs[name].def
}

func groupConfigMs(cfg map[string]string, name string) time.Duration {
	n, _ := strconv.ParseInt(groupConfigValue(cfg, name), 10, 64)
	return time.Duration(n) * time.Millisecond
}

// shareConfig is a share group's delivery settings.
func shareConfig(cfg map[string]string) share.Config {
	limit, _ := strconv.ParseInt(groupConfigValue(cfg, "share.delivery.count.limit"), 10, 16)
	return share.Config{
		LockDuration:  groupConfigMs(cfg, "share.record.lock.duration.ms"),
		DeliveryLimit: int16(limit),
	}
}

// alterGroupConfig applies IncrementalAlterConfigs to a GROUP resource.
func (s *Server) alterGroupConfig(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, dup, validateOnly bool) *topicError {
	if rr.ResourceName == "" {
		return topicErr(kerr.InvalidRequest.Code, "empty group id")
	}
	if dup {
		return topicErr(kerr.InvalidRequest.Code, "group %q appears more than once", rr.ResourceName)
	}
	cur, err := s.meta.GroupConfig(ctx, rr.ResourceName)
	if err != nil {
		return topicErr(kerr.RequestTimedOut.Code, "reading the configs of group %q: %v", rr.ResourceName, err)
	}
	seen := map[string]bool{}
	for _, c := range rr.Configs {
		if seen[c.Name] {
			return topicErr(kerr.InvalidRequest.Code, "config %q appears more than once", c.Name)
		}
		seen[c.Name] = true
		spec, ok := groupConfigSpecs[c.Name]
		if !ok {
			return topicErr(kerr.InvalidConfig.Code, "unknown or unsupported group config %q", c.Name)
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return topicErr(kerr.InvalidRequest.Code, "null value for group config %q", c.Name)
			}
			if !spec.check(*c.Value) {
				return topicErr(kerr.InvalidConfig.Code, "invalid value %q for group config %q", *c.Value, c.Name)
			}
			cur[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cur, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return topicErr(kerr.InvalidConfig.Code, "operation %v is only for list configs; %s is not one", c.Op, c.Name)
		default:
			return topicErr(kerr.InvalidRequest.Code, "unknown operation %d for group config %q", int8(c.Op), c.Name)
		}
	}
	if validateOnly {
		return nil
	}
	if err := s.meta.PutGroupConfig(ctx, rr.ResourceName, cur); err != nil {
		return topicErr(kerr.RequestTimedOut.Code, "storing the configs of group %q: %v", rr.ResourceName, err)
	}
	s.gcfg.mu.Lock()
	delete(s.gcfg.m, rr.ResourceName)
	s.gcfg.mu.Unlock()
	return nil
}

// describeGroupConfigs answers DescribeConfigs for a GROUP resource.
func (s *Server) describeGroupConfigs(ctx context.Context, group string, names []string) ([]kmsg.DescribeConfigsResponseResourceConfig, *topicError) {
	if group == "" {
		return nil, topicErr(kerr.InvalidRequest.Code, "empty group id")
	}
	cur, err := s.meta.GroupConfig(ctx, group)
	if err != nil {
		return nil, topicErr(kerr.RequestTimedOut.Code, "reading the configs of group %q: %v", group, err)
	}
	want := func(n string) bool {
		if len(names) == 0 {
			return true
		}
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	all := make([]string, 0, len(groupConfigSpecs))
	for name := range groupConfigSpecs {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, name := range all {
		if !want(name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = name
		v, set := cur[name]
		if !set {
			v = groupConfigSpecs[name].def
		}
		c.Value = kmsg.StringPtr(v)
		c.Source = kmsg.ConfigSourceDefaultConfig
		if set {
			c.Source = kmsg.ConfigSourceGroupConfig
		}
		c.IsDefault = !set
		c.Documentation = kmsg.StringPtr(groupConfigSpecs[name].doc)
		out = append(out, c)
	}
	return out, nil
}
