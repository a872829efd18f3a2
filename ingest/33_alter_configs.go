package ingest

// AlterConfigs: v0-v2 served
// * TOPIC resources, with Kafka's legacy semantics: the configs given become
//   the topic's whole set; every config not named goes back to its default.
//   Each name and value is checked (configs.go) first: an unknown name or a
//   bad value is INVALID_CONFIG with a message, a null value
//   INVALID_REQUEST (both as Kafka), and nothing of that resource changes.
//   An unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
// * BROKER resources (name empty or this node's id) cannot be altered:
//   INVALID_REQUEST, "broker configs are set by flags". An empty set of
//   changes is accepted, since it changes nothing. Other resource types are
//   INVALID_REQUEST.
// * A resource named twice in one request is INVALID_REQUEST for each entry,
//   a config named twice in one resource INVALID_REQUEST, as in Kafka.
// * ValidateOnly runs every check and changes nothing.
// * The change is one compare-and-swap on the topic's etcd key, bounded by
//   adminTimeout; past it, REQUEST_TIMED_OUT, and it may or may not have
//   been applied. The tier reads the new values at its next maintenance
//   pass (retention, rolling); Produce at once (max.message.bytes).

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleAlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()

	count := make(map[configResource]int, len(req.Resources))
	for _, rr := range req.Resources {
		count[configResource{rr.ResourceType, rr.ResourceName}]++
	}
	resp.Resources = make([]kmsg.AlterConfigsResponseResource, 0, len(req.Resources))
	for _, rr := range req.Resources {
		r := kmsg.NewAlterConfigsResponseResource()
		r.ResourceType = rr.ResourceType
		r.ResourceName = rr.ResourceName
		err := s.alterConfigsResource(ctx, rr, count[configResource{rr.ResourceType, rr.ResourceName}] > 1, req.ValidateOnly)
		if err != nil {
			r.ErrorCode = err.code
			r.ErrorMessage = kmsg.StringPtr(err.msg)
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp
}

// alterConfigsResource handles one resource of a legacy AlterConfigs.
func (s *Server) alterConfigsResource(ctx context.Context, rr kmsg.AlterConfigsRequestResource, dup, validateOnly bool) *topicError {
	if done, err := s.checkAlterResource(rr.ResourceType, rr.ResourceName, dup, len(rr.Configs)); done || err != nil {
		return err
	}
	changes := make(map[string]*string, len(rr.Configs))
	for _, c := range rr.Configs {
		if _, ok := changes[c.Name]; ok {
			return topicErr(kerr.InvalidRequest.Code, "config %q appears more than once", c.Name)
		}
		if _, ok := topicConfigSpec(c.Name); !ok {
			return topicErr(kerr.InvalidConfig.Code, "unknown or unsupported topic config %q", c.Name)
		}
		if c.Value == nil {
			return topicErr(kerr.InvalidRequest.Code, "null value for topic config %q", c.Name)
		}
		changes[c.Name] = c.Value
	}
	return s.alterTopicConfigs(ctx, rr.ResourceName, changes, true, validateOnly)
}

// configResource names one resource of an alter request, to find the ones
// named twice.
type configResource struct {
	typ  kmsg.ConfigResourceType
	name string
}

// checkAlterResource checks the resource part of an alter request: a
// topic must exist; a broker may only be "altered" with no changes (done);
// any other type is refused.
func (s *Server) checkAlterResource(typ kmsg.ConfigResourceType, name string, dup bool, changes int) (done bool, err *topicError) {
	if dup {
		return true, topicErr(kerr.InvalidRequest.Code, "resource %v %q appears more than once in the request", typ, name)
	}
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		_, err := s.configTopic(name)
		return err != nil, err
	case kmsg.ConfigResourceTypeBroker:
		if err := s.checkBrokerResource(name); err != nil {
			return true, err
		}
		if changes > 0 {
			return true, topicErr(kerr.InvalidRequest.Code, "broker configs are set by flags when the node starts; they cannot be altered")
		}
		return true, nil
	}
	return true, unsupportedResource(typ)
}

// configTopic returns the topic a TOPIC config resource names.
func (s *Server) configTopic(name string) (metadata.Topic, *topicError) {
	if err := validateTopicName(name); err != nil {
		return metadata.Topic{}, topicErr(kerr.InvalidTopicException.Code, "%v", err)
	}
	t, ok := s.meta.Topic(name)
	if !ok {
		return metadata.Topic{}, topicErr(kerr.UnknownTopicOrPartition.Code, "topic %q does not exist", name)
	}
	return t, nil
}

// alterTopicConfigs checks every change to topic name's configs (a nil
// value sets the config back to its default) and, unless validateOnly,
// applies them in one metadata update; replace first drops every config
// not named (legacy AlterConfigs).
func (s *Server) alterTopicConfigs(ctx context.Context, name string, changes map[string]*string, replace, validateOnly bool) *topicError {
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error reported does not depend on map order
	for _, k := range keys {
		v := changes[k]
		if v == nil {
			if _, ok := topicConfigSpec(k); !ok {
				return topicErr(kerr.InvalidConfig.Code, "unknown or unsupported topic config %q", k)
			}
			continue
		}
		if err := checkTopicConfig(k, *v); err != nil {
			return topicErr(kerr.InvalidConfig.Code, "%v", err)
		}
	}
	if validateOnly {
		return nil
	}
	if _, err := s.meta.AlterTopicConfigs(ctx, name, changes, replace); err != nil {
		switch {
		case errors.Is(err, metadata.ErrUnknownTopic):
			return topicErr(kerr.UnknownTopicOrPartition.Code, "topic %q does not exist", name)
		case errors.Is(err, context.DeadlineExceeded):
			return topicErr(kerr.RequestTimedOut.Code, "timed out altering the configs of topic %q; they may have been altered", name)
		}
		s.log.Warn("altering topic configs failed", "topic", name, "err", err)
		return topicErr(errCode(err), "%v", err)
	}
	s.log.Info("altered topic configs", "topic", name, "changes", len(changes), "replace", replace)
	return nil
}
