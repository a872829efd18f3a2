package ingest

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// authorizeGroups checks the group APIs and FindCoordinator; ok is false
// for other requests.
func (s *Server) authorizeGroups(r *request) (deny kmsg.Response, patch func(kmsg.Response), ok bool) {
	switch req := r.body.(type) {
	case *kmsg.FindCoordinatorRequest:
		rt, code := kmsg.ACLResourceTypeGroup, groupDenied
		if req.CoordinatorType == 1 {
			rt, code = kmsg.ACLResourceTypeTransactionalId, txnDenied
		}
		if req.Version < 4 {
			if !s.can(r, kmsg.ACLOperationDescribe, rt, req.CoordinatorKey) {
				resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
				resp.ErrorCode, resp.NodeID, resp.Port = code, -1, -1
				return resp, nil, true
			}
			return nil, nil, true
		}
		var denied []string
		req.CoordinatorKeys, denied = splitTopics(req.CoordinatorKeys, func(k string) bool { return s.can(r, kmsg.ACLOperationDescribe, rt, k) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.FindCoordinatorResponse)
			for _, k := range denied {
				c := kmsg.NewFindCoordinatorResponseCoordinator()
				c.Key, c.ErrorCode, c.NodeID, c.Port = k, code, -1, -1
				out.Coordinators = append(out.Coordinators, c)
			}
		}, true
	case *kmsg.JoinGroupRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation, resp.MemberID = groupDenied, -1, req.MemberID
			return resp, nil, true
		}
	case *kmsg.SyncGroupRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	case *kmsg.HeartbeatRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	case *kmsg.LeaveGroupRequest:
		if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
	case *kmsg.OffsetCommitRequest:
		groupOK := s.canGroup(r, kmsg.ACLOperationRead, req.Group)
		var denied []kmsg.OffsetCommitRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.OffsetCommitRequestTopic) bool {
			return groupOK && s.canTopic(r, kmsg.ACLOperationRead, t.Topic)
		})
		code := topicDenied
		if !groupOK {
			code = groupDenied
		}
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.OffsetCommitResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}, true
	case *kmsg.OffsetFetchRequest:
		return s.authorizeOffsetFetch(r, req)
	case *kmsg.DescribeGroupsRequest:
		var denied []string
		req.Groups, denied = splitTopics(req.Groups, func(g string) bool { return s.canGroup(r, kmsg.ACLOperationDescribe, g) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeGroupsResponse)
			for _, g := range denied {
				dg := kmsg.NewDescribeGroupsResponseGroup()
				dg.Group, dg.ErrorCode = g, groupDenied
				out.Groups = append(out.Groups, dg)
			}
		}, true
	case *kmsg.ListGroupsRequest:
		if s.canCluster(r, kmsg.ACLOperationDescribe) {
			return nil, nil, true
		}
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ListGroupsResponse)
			out.Groups, _ = splitTopics(out.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return s.canGroup(r, kmsg.ACLOperationDescribe, g.Group) })
		}, true
	case *kmsg.DeleteGroupsRequest:
		var denied []string
		req.Groups, denied = splitTopics(req.Groups, func(g string) bool { return s.canGroup(r, kmsg.ACLOperationDelete, g) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DeleteGroupsResponse)
			for _, g := range denied {
				dg := kmsg.NewDeleteGroupsResponseGroup()
				dg.Group, dg.ErrorCode = g, groupDenied
				out.Groups = append(out.Groups, dg)
			}
		}, true
	case *kmsg.OffsetDeleteRequest:
		if !s.canGroup(r, kmsg.ACLOperationDelete, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = groupDenied
			return resp, nil, true
		}
		var denied []kmsg.OffsetDeleteRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.OffsetDeleteRequestTopic) bool { return s.canTopic(r, kmsg.ACLOperationRead, t.Topic) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.OffsetDeleteResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetDeleteResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetDeleteResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}, true
	default:
		return nil, nil, false
	}
	return nil, nil, true
}

func (s *Server) authorizeOffsetFetch(r *request, req *kmsg.OffsetFetchRequest) (kmsg.Response, func(kmsg.Response), bool) {
	if req.Version < 8 {
		if !s.canGroup(r, kmsg.ACLOperationDescribe, req.Group) {
			resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = groupDenied
			for _, t := range req.Topics { // v0-1 carry errors per partition only
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.ErrorCode = p, -1, groupDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil, true
		}
		if req.Topics == nil { // every committed topic: those it may describe
			return nil, func(resp kmsg.Response) {
				out := resp.(*kmsg.OffsetFetchResponse)
				out.Topics, _ = splitTopics(out.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return s.canTopic(r, kmsg.ACLOperationDescribe, t.Topic) })
			}, true
		}
		var denied []kmsg.OffsetFetchRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.OffsetFetchRequestTopic) bool { return s.canTopic(r, kmsg.ACLOperationDescribe, t.Topic) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.OffsetFetchResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.ErrorCode = p, -1, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}, true
	}
	var denied []kmsg.OffsetFetchRequestGroup
	req.Groups, denied = splitTopics(req.Groups, func(g kmsg.OffsetFetchRequestGroup) bool { return s.canGroup(r, kmsg.ACLOperationDescribe, g.Group) })
	return nil, func(resp kmsg.Response) {
		out := resp.(*kmsg.OffsetFetchResponse)
		for i := range out.Groups {
			out.Groups[i].Topics, _ = splitTopics(out.Groups[i].Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool {
				return s.canTopic(r, kmsg.ACLOperationDescribe, t.Topic)
			})
		}
		for _, g := range denied {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, groupDenied
			out.Groups = append(out.Groups, rg)
		}
	}, true
}

// authorizeTxnAndAdmin checks the transaction, cluster and security APIs.
func (s *Server) authorizeTxnAndAdmin(r *request) (kmsg.Response, func(kmsg.Response)) {
	switch req := r.body.(type) {
	case *kmsg.InitProducerIDRequest:
		code := int16(0)
		if req.TransactionalID != nil {
			if !s.canTxn(r, kmsg.ACLOperationWrite, *req.TransactionalID) {
				code = txnDenied
			}
		} else if !s.canWriteSomeTopic(r) {
			code = clusterDenied
		}
		if code != 0 {
			resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
			resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
			return resp, nil
		}
	case *kmsg.AddPartitionsToTxnRequest:
		if req.Version >= 4 { // node to node (KIP-890 verification)
			if !s.canCluster(r, kmsg.ACLOperationClusterAction) {
				resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
				resp.ErrorCode = clusterDenied
				return resp, nil
			}
			return nil, nil
		}
		txnOK := s.canTxn(r, kmsg.ACLOperationWrite, req.TransactionalID)
		allOK := txnOK
		for _, t := range req.Topics {
			allOK = allOK && s.canTopic(r, kmsg.ACLOperationWrite, t.Topic)
		}
		if allOK {
			return nil, nil
		}
		resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		for _, t := range req.Topics {
			code := txnDenied
			if txnOK {
				code = kerr.OperationNotAttempted.Code
				if !s.canTopic(r, kmsg.ACLOperationWrite, t.Topic) {
					code = topicDenied
				}
			}
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.AddOffsetsToTxnRequest:
		code := int16(0)
		if !s.canTxn(r, kmsg.ACLOperationWrite, req.TransactionalID) {
			code = txnDenied
		} else if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			code = groupDenied
		}
		if code != 0 {
			resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
			resp.ErrorCode = code
			return resp, nil
		}
	case *kmsg.EndTxnRequest:
		if !s.canTxn(r, kmsg.ACLOperationWrite, req.TransactionalID) {
			resp := req.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = txnDenied, -1, -1
			return resp, nil
		}
	case *kmsg.TxnOffsetCommitRequest:
		code := int16(0)
		if !s.canTxn(r, kmsg.ACLOperationWrite, req.TransactionalID) {
			code = txnDenied
		} else if !s.canGroup(r, kmsg.ACLOperationRead, req.Group) {
			code = groupDenied
		}
		var denied []kmsg.TxnOffsetCommitRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool {
			return code == 0 && s.canTopic(r, kmsg.ACLOperationRead, t.Topic)
		})
		if code == 0 {
			code = topicDenied
		}
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.TxnOffsetCommitResponse)
			for _, t := range denied {
				rt := kmsg.NewTxnOffsetCommitResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.WriteTxnMarkersRequest:
		if !s.canCluster(r, kmsg.ACLOperationClusterAction) {
			resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
			for _, m := range req.Markers {
				rm := kmsg.NewWriteTxnMarkersResponseMarker()
				rm.ProducerID = m.ProducerID
				for _, t := range m.Topics {
					rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
						rp.Partition, rp.ErrorCode = p, clusterDenied
						rt.Partitions = append(rt.Partitions, rp)
					}
					rm.Topics = append(rm.Topics, rt)
				}
				resp.Markers = append(resp.Markers, rm)
			}
			return resp, nil
		}
	case *kmsg.DescribeTransactionsRequest:
		var denied []string
		req.TransactionalIDs, denied = splitTopics(req.TransactionalIDs, func(id string) bool { return s.canTxn(r, kmsg.ACLOperationDescribe, id) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeTransactionsResponse)
			for _, id := range denied {
				ts := kmsg.NewDescribeTransactionsResponseTransactionState()
				ts.TransactionalID, ts.ErrorCode, ts.ProducerID, ts.ProducerEpoch = id, txnDenied, -1, -1
				out.TransactionStates = append(out.TransactionStates, ts)
			}
		}
	case *kmsg.ListTransactionsRequest:
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ListTransactionsResponse)
			out.TransactionStates, _ = splitTopics(out.TransactionStates, func(ts kmsg.ListTransactionsResponseTransactionState) bool {
				return s.canTxn(r, kmsg.ACLOperationDescribe, ts.TransactionalID)
			})
		}
	case *kmsg.DescribeClusterRequest:
		if !s.canCluster(r, kmsg.ACLOperationDescribe) {
			resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
			resp.ErrorCode, resp.EndpointType = clusterDenied, req.EndpointType
			return resp, nil
		}
	case *kmsg.DescribeProducersRequest:
		var denied []kmsg.DescribeProducersRequestTopic
		req.Topics, denied = splitTopics(req.Topics, func(t kmsg.DescribeProducersRequestTopic) bool { return s.canTopic(r, kmsg.ACLOperationRead, t.Topic) })
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeProducersResponse)
			for _, t := range denied {
				rt := kmsg.NewDescribeProducersResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewDescribeProducersResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
		}
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		if !s.canCluster(r, kmsg.ACLOperationDescribe) {
			resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
			resp.ErrorCode = clusterDenied
			return resp, nil
		}
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		if !s.canCluster(r, kmsg.ACLOperationAlter) {
			resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
			seen := map[string]bool{}
			add := func(user string) {
				if !seen[user] {
					seen[user] = true
					rr := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
					rr.User, rr.ErrorCode = user, clusterDenied
					resp.Results = append(resp.Results, rr)
				}
			}
			for _, d := range req.Deletions {
				add(d.Name)
			}
			for _, u := range req.Upsertions {
				add(u.Name)
			}
			return resp, nil
		}
	case *kmsg.CreateACLsRequest:
		if !s.canCluster(r, kmsg.ACLOperationAlter) {
			resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
			for range req.Creations {
				rr := kmsg.NewCreateACLsResponseResult()
				rr.ErrorCode = clusterDenied
				resp.Results = append(resp.Results, rr)
			}
			return resp, nil
		}
	case *kmsg.DeleteACLsRequest:
		if !s.canCluster(r, kmsg.ACLOperationAlter) {
			resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
			for range req.Filters {
				rr := kmsg.NewDeleteACLsResponseResult()
				rr.ErrorCode = clusterDenied
				resp.Results = append(resp.Results, rr)
			}
			return resp, nil
		}
	case *kmsg.DescribeClientQuotasRequest:
		if !s.canCluster(r, kmsg.ACLOperationDescribeConfigs) {
			resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
			resp.ErrorCode = clusterDenied
			return resp, nil
		}
	case *kmsg.AlterClientQuotasRequest:
		if !s.canCluster(r, kmsg.ACLOperationAlterConfigs) {
			resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
			for _, e := range req.Entries {
				re := kmsg.NewAlterClientQuotasResponseEntry()
				re.ErrorCode = clusterDenied
				for _, en := range e.Entity {
					oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
					oe.Type, oe.Name = en.Type, en.Name
					re.Entity = append(re.Entity, oe)
				}
				resp.Entries = append(resp.Entries, re)
			}
			return resp, nil
		}
	case *kmsg.DescribeACLsRequest:
		if !s.canCluster(r, kmsg.ACLOperationDescribe) {
			resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
			resp.ErrorCode = clusterDenied
			return resp, nil
		}
	}
	return nil, nil
}
