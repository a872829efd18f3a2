package ingest

// IncrementalAlterConfigs: v0-v1 served
// * TOPIC resources: each config's operation applies to the topic's current
//   configs; configs not named keep their values.
//   - SET sets the value; DELETE sets the config back to its default.
//   - APPEND and SUBTRACT add or remove items of a list config (of the
//     current value, or of the default when unset), as Kafka does; on a
//     config that is not a list they are INVALID_CONFIG. The only list
//     config is cleanup.policy, whose only accepted value is "delete", so
//     appending "compact" is INVALID_CONFIG (no compaction yet).
//   Each name and resulting value is checked (configs.go): an unknown name
//   or a bad value is INVALID_CONFIG with a message, a null value for SET,
//   APPEND or SUBTRACT is INVALID_REQUEST, an unknown operation
//   INVALID_REQUEST, a config named twice INVALID_REQUEST (all as Kafka);
//   nothing of that resource changes then.
// * GROUP resources: groupconfig.go.
// * BROKER resources, other resource types, resources named twice,
//   ValidateOnly and timeouts: as AlterConfigs.
// * APPEND and SUBTRACT start from the configs in this node's metadata cache;
//   the update itself is one compare-and-swap in etcd.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()

	count := make(map[configResource]int, len(req.Resources))
	for _, rr := range req.Resources {
		count[configResource{rr.ResourceType, rr.ResourceName}]++
	}
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, 0, len(req.Resources))
	for _, rr := range req.Resources {
		r := kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType = rr.ResourceType
		r.ResourceName = rr.ResourceName
		err := s.incrementalAlterResource(ctx, rr, count[configResource{rr.ResourceType, rr.ResourceName}] > 1, req.ValidateOnly)
		if err != nil {
			r.ErrorCode = err.code
			r.ErrorMessage = kmsg.StringPtr(err.msg)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp
}

// incrementalAlterResource handles one resource of an
// IncrementalAlterConfigs.
func (s *Server) incrementalAlterResource(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, dup, validateOnly bool) *topicError {
	if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
		return s.alterGroupConfig(ctx, rr, dup, validateOnly)
	}
	if done, err := s.checkAlterResource(rr.ResourceType, rr.ResourceName, dup, len(rr.Configs)); done || err != nil {
		return err
	}
	t, err := s.configTopic(rr.ResourceName)
	if err != nil {
		return err
	}
	changes, err := incrementalChanges(t.Configs, rr.Configs)
	if err != nil {
		return err
	}
	return s.alterTopicConfigs(ctx, rr.ResourceName, changes, false, validateOnly)
}

// incrementalChanges turns IncrementalAlterConfigs operations on a topic
// whose configs are cur into the changes to apply (nil: back to the
// default). Values are checked later, by alterTopicConfigs.
func incrementalChanges(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]*string, *topicError) {
	changes := make(map[string]*string, len(ops))
	for _, c := range ops {
		if _, ok := changes[c.Name]; ok {
			return nil, topicErr(kerr.InvalidRequest.Code, "config %q appears more than once", c.Name)
		}
		spec, ok := topicConfigSpec(c.Name)
		if !ok {
			return nil, topicErr(kerr.InvalidConfig.Code, "unknown or unsupported topic config %q", c.Name)
		}
		if c.Op != kmsg.IncrementalAlterConfigOpDelete && c.Value == nil {
			return nil, topicErr(kerr.InvalidRequest.Code, "null value for topic config %q (operation %v)", c.Name, c.Op)
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			changes[c.Name] = c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			changes[c.Name] = nil
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if spec.Type != kmsg.ConfigTypeList {
				return nil, topicErr(kerr.InvalidConfig.Code, "operation %v is only for list configs; %s is not one", c.Op, c.Name)
			}
			base, ok := cur[c.Name]
			if !ok {
				base = spec.Default
			}
			items := splitConfigList(base)
			for _, it := range splitConfigList(*c.Value) {
				if c.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(items, it) {
						items = append(items, it)
					}
				} else {
					items = slices.DeleteFunc(items, func(x string) bool { return x == it })
				}
			}
			v := strings.Join(items, ",")
			changes[c.Name] = &v
		default:
			return nil, topicErr(kerr.InvalidRequest.Code, "unknown operation %d for topic config %q", int8(c.Op), c.Name)
		}
	}
	return changes, nil
}
