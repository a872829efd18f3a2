package ingest

// DescribeConfigs: v0-v4 served
// * TOPIC resources: every topic config Strata honours (configs.go), each
//   with its value: the topic's own (Source DYNAMIC_TOPIC_CONFIG) or
//   Kafka's default (Source DEFAULT_CONFIG, IsDefault). None is read-only.
//   An unknown topic is UNKNOWN_TOPIC_OR_PARTITION, a name Kafka would
//   refuse INVALID_TOPIC_EXCEPTION.
// * BROKER resources: a small read-only set, this node's flags
//   (auto.create.topics.enable, broker.id, num.partitions: Source
//   STATIC_BROKER_CONFIG) and the topic defaults under their broker names
//   (log.retention.ms and so on: DEFAULT_CONFIG). The name must be empty or
//   this node's id, else INVALID_REQUEST, as in Kafka (clients send a
//   broker's resource to that broker).
// * Any other resource type (BROKER_LOGGER, GROUP_CONFIG, ...) is
//   INVALID_REQUEST with a message.
// * ConfigNames filters the configs; null or empty means all. Names Strata
//   does not know are left out, as Kafka leaves out names it does not have.
// * IncludeSynonyms (v1+): a topic config's synonyms are its own value (when
//   set) then the default under its broker name; IncludeDocumentation (v3+)
//   adds a line of documentation. ConfigType (v3+) is always set.

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeConfigs(req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	resp.Resources = make([]kmsg.DescribeConfigsResponseResource, 0, len(req.Resources))
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType = rr.ResourceType
		r.ResourceName = rr.ResourceName
		var err *topicError
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, terr := s.configTopic(rr.ResourceName)
			if err = terr; err == nil {
				r.Configs = describeTopicConfigs(t, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		case kmsg.ConfigResourceTypeBroker:
			if err = s.checkBrokerResource(rr.ResourceName); err == nil {
				r.Configs = s.describeBrokerConfigs(rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
			r.Configs, err = s.describeGroupConfigs(ctx, rr.ResourceName, rr.ConfigNames)
			cancel()
		default:
			err = unsupportedResource(rr.ResourceType)
		}
		if err != nil {
			r.ErrorCode = err.code
			r.ErrorMessage = kmsg.StringPtr(err.msg)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp
}

// checkBrokerResource accepts a BROKER resource name that means this node:
// empty (the cluster-wide default, which here is this node's set) or this
// node's id.
func (s *Server) checkBrokerResource(name string) *topicError {
	if name == "" {
		return nil
	}
	if id, err := strconv.ParseInt(name, 10, 32); err == nil && int32(id) == s.cfg.NodeID {
		return nil
	}
	return topicErr(kerr.InvalidRequest.Code, "broker resource %q is not this broker (%d): send it to that broker", name, s.cfg.NodeID)
}

// unsupportedResource is the answer for a config resource type Strata has
// no configs for.
func unsupportedResource(typ kmsg.ConfigResourceType) *topicError {
	return topicErr(kerr.InvalidRequest.Code, "config resource type %v (%d) is not supported: only TOPIC, BROKER and GROUP", typ, int8(typ))
}
