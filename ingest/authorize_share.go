package ingest

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// authorizeNewGroups checks the KIP-848 and KIP-932 APIs as Kafka does: READ
// on the group to take part (heartbeats, share fetches and
// acknowledgements), DESCRIBE to describe, DELETE to delete share offsets,
// READ on each topic fetched. ok is false for other requests.
func (s *Server) authorizeNewGroups(r *request) (deny kmsg.Response, patch func(kmsg.Response), ok bool) {
	switch req := r.body.(type) {
	case *kmsg.ConsumerGroupHeartbeatRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	case *kmsg.ShareGroupHeartbeatRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.GroupID) {
			resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	case *kmsg.ConsumerGroupDescribeRequest:
		var denied []string
		req.Groups, denied = splitTopics(req.Groups, func(g string) bool { return s.canGroup(r, kmsg.ACLOperationDescribe, g) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ConsumerGroupDescribeResponse)
			for _, g := range denied {
				rg := kmsg.NewConsumerGroupDescribeResponseGroup()
				rg.Group, rg.ErrorCode = g, groupDenied
				out.Groups = append(out.Groups, rg)
			}
		}, true
	case *kmsg.ShareGroupDescribeRequest:
		var denied []string
		req.GroupIDs, denied = splitTopics(req.GroupIDs, func(g string) bool { return s.canGroup(r, kmsg.ACLOperationDescribe, g) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ShareGroupDescribeResponse)
			for _, g := range denied {
				rg := kmsg.NewShareGroupDescribeResponseGroup()
				rg.GroupID, rg.ErrorCode = g, groupDenied
				out.Groups = append(out.Groups, rg)
			}
		}, true
	case *kmsg.ShareFetchRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, deref(req.GroupID)) {
			resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
		readable := func(id [16]byte) bool {
			t, ok := s.meta.TopicByID(id)
			return !ok || s.canTopic(r, kmsg.ACLOperationRead, t.Name)
		}
		var denied []kmsg.ShareFetchRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.ShareFetchRequestTopic) bool { return readable(t.TopicID) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ShareFetchResponse)
			for _, t := range denied {
				rt := kmsg.NewShareFetchResponseTopic()
				rt.TopicID = t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewShareFetchResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicDenied
					rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}, true
	case *kmsg.ShareAcknowledgeRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, deref(req.GroupID)) {
			resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
		var denied []kmsg.ShareAcknowledgeRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.ShareAcknowledgeRequestTopic) bool {
			tt, ok := s.meta.TopicByID(t.TopicID)
			return !ok || s.canTopic(r, kmsg.ACLOperationRead, tt.Name)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ShareAcknowledgeResponse)
			for _, t := range denied {
				rt := kmsg.NewShareAcknowledgeResponseTopic()
				rt.TopicID = t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicDenied
					rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}, true
	case *kmsg.DescribeShareGroupOffsetsRequest:
		var denied []kmsg.DescribeShareGroupOffsetsRequestGroup
		req.Groups, denied = splitTopics(req.Groups, func(g kmsg.DescribeShareGroupOffsetsRequestGroup) bool {
			return s.canGroup(r, kmsg.ACLOperationDescribe, g.GroupID)
		})
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeShareGroupOffsetsResponse)
			for _, g := range denied {
				rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
				rg.GroupID, rg.ErrorCode = g.GroupID, groupDenied
				out.Groups = append(out.Groups, rg)
			}
		}, true
	case *kmsg.ReadShareGroupStateRequest:
		if !s.canGroup(r, kmsg.ACLOperationDescribe, req.GroupID) {
			resp := req.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
			for _, t := range req.Topics {
				rt := kmsg.NewReadShareGroupStateResponseTopic()
				rt.TopicID = t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewReadShareGroupStateResponseTopicPartition()
					rp.Partition, rp.ErrorCode, rp.StartOffset = p.Partition, groupDenied, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil, true
		}
	case *kmsg.AlterShareGroupOffsetsRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.GroupID) {
			resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	case *kmsg.DeleteShareGroupOffsetsRequest:
		if !s.canGroup(r, kmsg.ACLOperationDelete, req.GroupID) {
			resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	default:
		return nil, nil, false
	}
	return nil, nil, true
}
