package ingest

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Enforcement of the authorizer (authz.go) on every API, with the error
// codes Kafka returns. Each API's check either refuses the whole request
// (deny: the answer, the handler does not run) or takes the refused topics,
// partitions or groups out of the request and returns patch, which adds
// them, with their error, to the handler's answer. The handler never sees
// what the caller may not touch.

// dispatchAuthorized is dispatch behind the authorizer.
func (s *Server) dispatchAuthorized(ctx context.Context, r *request) (kmsg.Response, func(context.Context) kmsg.Response, error) {
	if !s.authz.cfg.Enabled || r.body == nil {
		return s.dispatch(ctx, r)
	}
	deny, patch := s.authorize(r)
	if deny != nil {
		return deny, nil, nil
	}
	resp, later, err := s.dispatch(ctx, r)
	if err != nil || patch == nil {
		return resp, later, err
	}
	if resp != nil {
		patch(resp)
	}
	if later != nil {
		inner := later
		later = func(ctx context.Context) kmsg.Response {
			out := inner(ctx)
			if out != nil {
				patch(out)
			}
			return out
		}
	}
	return resp, later, nil
}

func (s *Server) can(r *request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return s.authz.allowed(r.who, op, rt, name)
}

func (s *Server) canTopic(r *request, op kmsg.ACLOperation, topic string) bool {
	return s.can(r, op, kmsg.ACLResourceTypeTopic, topic)
}

func (s *Server) canCluster(r *request, op kmsg.ACLOperation) bool {
	return s.can(r, op, kmsg.ACLResourceTypeCluster, ClusterName)
}

func (s *Server) canGroup(r *request, op kmsg.ACLOperation, group string) bool {
	return s.can(r, op, kmsg.ACLResourceTypeGroup, group)
}

func (s *Server) canTxn(r *request, op kmsg.ACLOperation, id string) bool {
	return s.can(r, op, kmsg.ACLResourceTypeTransactionalId, id)
}

// canWriteSomeTopic is Kafka's rule for idempotent producers (KIP-679):
// WRITE on any topic, or IDEMPOTENT_WRITE on the cluster.
func (s *Server) canWriteSomeTopic(r *request) bool {
	if s.canCluster(r, kmsg.ACLOperationIdempotentWrite) {
		return true
	}
	for _, t := range s.meta.Topics() {
		if s.canTopic(r, kmsg.ACLOperationWrite, t.Name) {
			return true
		}
	}
	return false
}

var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
	txnDenied     = kerr.TransactionalIDAuthorizationFailed.Code
)

// authorize checks r; see the top of the file.
func (s *Server) authorize(r *request) (deny kmsg.Response, patch func(kmsg.Response)) {
	switch req := r.body.(type) {
	case *kmsg.ApiVersionsRequest, *kmsg.SASLHandshakeRequest, *kmsg.SASLAuthenticateRequest:
		return nil, nil
	case *kmsg.ProduceRequest:
		return s.authorizeProduce(r, req)
	case *kmsg.FetchRequest:
		return s.authorizeFetch(r, req)
	case *kmsg.ListOffsetsRequest:
		var denied []kmsg.ListOffsetsRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.ListOffsetsRequestTopic) bool { return s.canTopic(r, kmsg.ACLOperationDescribe, t.Topic) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ListOffsetsResponse)
			for _, t := range denied {
				rt := kmsg.NewListOffsetsResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewListOffsetsResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.OffsetForLeaderEpochRequest:
		var denied []kmsg.OffsetForLeaderEpochRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) bool {
			return s.canTopic(r, kmsg.ACLOperationDescribe, t.Topic)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.OffsetForLeaderEpochResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.MetadataRequest:
		return s.authorizeMetadata(r, req)
	case *kmsg.CreateTopicsRequest:
		clusterCreate := s.canCluster(r, kmsg.ACLOperationCreate)
		var denied []kmsg.CreateTopicsRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.CreateTopicsRequestTopic) bool {
			return clusterCreate || s.canTopic(r, kmsg.ACLOperationCreate, t.Topic)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.CreateTopicsResponse)
			for _, t := range denied {
				rt := kmsg.NewCreateTopicsResponseTopic()
				rt.Topic, rt.ErrorCode = t.Topic, topicDenied
				rt.NumPartitions, rt.ReplicationFactor = -1, -1
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.DeleteTopicsRequest:
		return s.authorizeDeleteTopics(r, req)
	case *kmsg.CreatePartitionsRequest:
		var denied []kmsg.CreatePartitionsRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.CreatePartitionsRequestTopic) bool { return s.canTopic(r, kmsg.ACLOperationAlter, t.Topic) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.CreatePartitionsResponse)
			for _, t := range denied {
				rt := kmsg.NewCreatePartitionsResponseTopic()
				rt.Topic, rt.ErrorCode = t.Topic, topicDenied
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.DeleteRecordsRequest:
		var denied []kmsg.DeleteRecordsRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.DeleteRecordsRequestTopic) bool { return s.canTopic(r, kmsg.ACLOperationDelete, t.Topic) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DeleteRecordsResponse)
			for _, t := range denied {
				rt := kmsg.NewDeleteRecordsResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewDeleteRecordsResponseTopicPartition()
					rp.Partition, rp.LowWatermark, rp.ErrorCode = p.Partition, -1, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.DescribeConfigsRequest:
		var denied []kmsg.DescribeConfigsRequestResource
		req.Resources, denied = splitTopics(req.Resources, func(res kmsg.DescribeConfigsRequestResource) bool {
			return s.canConfigResource(r, res.ResourceType, res.ResourceName, kmsg.ACLOperationDescribeConfigs)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeConfigsResponse)
			for _, res := range denied {
				rr := kmsg.NewDescribeConfigsResponseResource()
				rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, configDenied(res.ResourceType)
				out.Resources = append(out.Resources, rr)
			}
		}
	case *kmsg.AlterConfigsRequest:
		var denied []kmsg.AlterConfigsRequestResource
		req.Resources, denied = splitTopics(req.Resources, func(res kmsg.AlterConfigsRequestResource) bool {
			return s.canConfigResource(r, res.ResourceType, res.ResourceName, kmsg.ACLOperationAlterConfigs)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.AlterConfigsResponse)
			for _, res := range denied {
				rr := kmsg.NewAlterConfigsResponseResource()
				rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, configDenied(res.ResourceType)
				out.Resources = append(out.Resources, rr)
			}
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		var denied []kmsg.IncrementalAlterConfigsRequestResource
		req.Resources, denied = splitTopics(req.Resources, func(res kmsg.IncrementalAlterConfigsRequestResource) bool {
			return s.canConfigResource(r, res.ResourceType, res.ResourceName, kmsg.ACLOperationAlterConfigs)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.IncrementalAlterConfigsResponse)
			for _, res := range denied {
				rr := kmsg.NewIncrementalAlterConfigsResponseResource()
				rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, configDenied(res.ResourceType)
				out.Resources = append(out.Resources, rr)
			}
		}
	}
	if deny, patch, ok := s.authorizeNewGroups(r); ok {
		return deny, patch
	}
	if deny, patch, ok := s.authorizeGroups(r); ok {
		return deny, patch
	}
	return s.authorizeTxnAndAdmin(r)
}

// splitTopics keeps the elements ok allows and returns the others.
func splitTopics[T any](in []T, ok func(T) bool) (kept, denied []T) {
	kept = in[:0:0]
	for _, t := range in {
		if ok(t) {
			kept = append(kept, t)
		} else {
			denied = append(denied, t)
		}
	}
	return kept, denied
}

func (s *Server) canConfigResource(r *request, rt kmsg.ConfigResourceType, name string, op kmsg.ACLOperation) bool {
	if rt == kmsg.ConfigResourceTypeTopic {
		return s.canTopic(r, op, name)
	}
	if rt == kmsg.ConfigResourceTypeGroupConfig {
		return s.canGroup(r, op, name)
	}
	return s.canCluster(r, op) // broker and broker-logger configs
}

func configDenied(rt kmsg.ConfigResourceType) int16 {
	if rt == kmsg.ConfigResourceTypeTopic {
		return topicDenied
	}
	if rt == kmsg.ConfigResourceTypeGroupConfig {
		return groupDenied
	}
	return clusterDenied
}

func (s *Server) authorizeProduce(r *request, req *kmsg.ProduceRequest) (kmsg.Response, func(kmsg.Response)) {
	code := int16(0)
	if req.TransactionID != nil && !s.canTxn(r, kmsg.ACLOperationWrite, *req.TransactionID) {
		code = txnDenied
	}
	var denied []kmsg.ProduceRequestTopic
	req.Topics, denied = splitTopics(req.Topics, func(t kmsg.ProduceRequestTopic) bool {
		return code == 0 && s.canTopic(r, kmsg.ACLOperationWrite, s.topicName(t.Topic, t.TopicID))
	})
	if code == 0 {
		code = topicDenied
	}
	if len(denied) > 0 {
		s.log.Info("produce refused by the authorizer", "principal", r.who.principal, "topics", len(denied))
	}
	return nil, func(resp kmsg.Response) {
		out := resp.(*kmsg.ProduceResponse)
		for _, t := range denied {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = p.Partition, code, -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
	}
}

// topicName is a topic's name from a request that may name it by id.
func (s *Server) topicName(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	if t, ok := s.clientTopicByID(id); ok {
		return t.Name
	}
	return ""
}

func (s *Server) authorizeFetch(r *request, req *kmsg.FetchRequest) (kmsg.Response, func(kmsg.Response)) {
	if req.ReplicaID >= 0 { // a follower: Strata has none
		if !s.canCluster(r, kmsg.ACLOperationClusterAction) {
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = clusterDenied
			return resp, nil
		}
		return nil, nil
	}
	var denied []kmsg.FetchRequestTopic
	req.Topics, denied = splitTopics(req.Topics, func(t kmsg.FetchRequestTopic) bool {
		return s.canTopic(r, kmsg.ACLOperationRead, s.topicName(t.Topic, t.TopicID))
	})
	return nil, func(resp kmsg.Response) {
		out := resp.(*kmsg.FetchResponse)
		for _, t := range denied {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = p.Partition, topicDenied, -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
	}
}

func (s *Server) authorizeMetadata(r *request, req *kmsg.MetadataRequest) (kmsg.Response, func(kmsg.Response)) {
	// Every topic (null, or an empty list at v0): show those the caller
	// may describe.
	if req.Topics == nil || req.Version == 0 && len(req.Topics) == 0 {
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.MetadataResponse)
			out.Topics, _ = splitTopics(out.Topics, func(t kmsg.MetadataResponseTopic) bool {
				return s.canTopic(r, kmsg.ACLOperationDescribe, s.topicName(deref(t.Topic), t.TopicID))
			})
		}
	}
	clusterCreate := s.canCluster(r, kmsg.ACLOperationCreate)
	var denied []kmsg.MetadataRequestTopic
	req.Topics, denied = splitTopics(req.Topics, func(t kmsg.MetadataRequestTopic) bool {
		name := s.topicName(deref(t.Topic), t.TopicID)
		if !s.canTopic(r, kmsg.ACLOperationDescribe, name) {
			return false
		}
		// Auto-creating a topic takes CREATE, as in Kafka.
		if _, exists := s.clientTopic(name); !exists && req.AllowAutoTopicCreation && s.cfg.AutoCreateTopics {
			return clusterCreate || s.canTopic(r, kmsg.ACLOperationCreate, name)
		}
		return true
	})
	return nil, func(resp kmsg.Response) {
		out := resp.(*kmsg.MetadataResponse)
		for _, t := range denied {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, topicDenied
			out.Topics = append(out.Topics, rt)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *Server) authorizeDeleteTopics(r *request, req *kmsg.DeleteTopicsRequest) (kmsg.Response, func(kmsg.Response)) {
	var deniedNames []string
	req.TopicNames, deniedNames = splitTopics(req.TopicNames, func(n string) bool { return s.canTopic(r, kmsg.ACLOperationDelete, n) })
	var denied []kmsg.DeleteTopicsRequestTopic
	req.Topics, denied = splitTopics(req.Topics, func(t kmsg.DeleteTopicsRequestTopic) bool {
		return s.canTopic(r, kmsg.ACLOperationDelete, s.topicName(deref(t.Topic), t.TopicID))
	})
	return nil, func(resp kmsg.Response) {
		out := resp.(*kmsg.DeleteTopicsResponse)
		for _, n := range deniedNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(n), topicDenied
			out.Topics = append(out.Topics, rt)
		}
		for _, t := range denied {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, topicDenied
			out.Topics = append(out.Topics, rt)
		}
	}
}
