package ingest

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// dispatch runs the synchronous part of a request, in the connection's
// request order, and returns either its response or a function that
// computes the response later on the connection's writer (both nil: no
// response at all, for acks=0 produce). parseRequest has checked the key and
// version against served; an error means a served key has no handler, a bug
// that closes the connection rather than desynchronise the client.
func (s *Server) dispatch(ctx context.Context, r *request) (kmsg.Response, func(context.Context) kmsg.Response, error) {
	if r.body == nil { // ApiVersions at a version we do not serve
		return s.handleApiVersions(r), nil, nil
	}
	switch body := r.body.(type) {
	case *kmsg.ProduceRequest:
		resp, later := s.handleProduce(ctx, r, body)
		return resp, later, nil
	case *kmsg.FetchRequest:
		return nil, s.handleFetch(r, body), nil
	case *kmsg.ListOffsetsRequest:
		return s.handleListOffsets(ctx, body), nil, nil
	case *kmsg.MetadataRequest:
		return s.handleMetadata(ctx, body), nil, nil
	case *kmsg.ApiVersionsRequest:
		return s.handleApiVersions(r), nil, nil
	case *kmsg.CreateTopicsRequest:
		return s.handleCreateTopics(ctx, body), nil, nil
	case *kmsg.DeleteTopicsRequest:
		return s.handleDeleteTopics(ctx, body), nil, nil
	// Group requests run on the writer, in request order: a JoinGroup
	// waits for its rebalance, and Kafka serves a connection's requests
	// one at a time, so nothing after it may overtake it.
	case *kmsg.FindCoordinatorRequest:
		return s.handleFindCoordinator(body), nil, nil
	case *kmsg.JoinGroupRequest:
		return nil, s.handleJoinGroup(r, body), nil
	case *kmsg.SyncGroupRequest:
		return nil, s.handleSyncGroup(body), nil
	case *kmsg.HeartbeatRequest:
		return nil, s.handleHeartbeat(body), nil
	case *kmsg.LeaveGroupRequest:
		return nil, s.handleLeaveGroup(body), nil
	case *kmsg.OffsetCommitRequest:
		return nil, s.handleOffsetCommit(body), nil
	case *kmsg.OffsetFetchRequest:
		return nil, s.handleOffsetFetch(body), nil
	case *kmsg.OffsetDeleteRequest:
		return nil, s.handleOffsetDelete(body), nil
	case *kmsg.DescribeGroupsRequest:
		return nil, s.handleDescribeGroups(body), nil
	case *kmsg.ListGroupsRequest:
		return nil, s.handleListGroups(body), nil
	case *kmsg.DeleteGroupsRequest:
		return nil, s.handleDeleteGroups(body), nil
	case *kmsg.ConsumerGroupHeartbeatRequest:
		return nil, s.handleConsumerGroupHeartbeat(r, body), nil
	case *kmsg.ConsumerGroupDescribeRequest:
		return nil, s.handleConsumerGroupDescribe(body), nil
	case *kmsg.ShareGroupHeartbeatRequest:
		return nil, s.handleShareGroupHeartbeat(r, body), nil
	case *kmsg.ShareGroupDescribeRequest:
		return nil, s.handleShareGroupDescribe(body), nil
	// Share fetches wait on the writer as fetches do.
	case *kmsg.ShareFetchRequest:
		return nil, s.handleShareFetch(r, body), nil
	case *kmsg.ShareAcknowledgeRequest:
		return nil, s.handleShareAcknowledge(body), nil
	case *kmsg.DescribeShareGroupOffsetsRequest:
		return s.handleDescribeShareGroupOffsets(ctx, body), nil, nil
	case *kmsg.AlterShareGroupOffsetsRequest:
		return s.handleAlterShareGroupOffsets(ctx, body), nil, nil
	case *kmsg.DeleteShareGroupOffsetsRequest:
		return s.handleDeleteShareGroupOffsets(ctx, body), nil, nil
	case *kmsg.ReadShareGroupStateRequest:
		return s.handleReadShareGroupState(ctx, body), nil, nil
	// Admin and producer requests: answered in request order on the
	// reader, as CreateTopics is.
	case *kmsg.DeleteRecordsRequest:
		return s.handleDeleteRecords(ctx, body), nil, nil
	case *kmsg.InitProducerIDRequest:
		return s.handleInitProducerID(ctx, body), nil, nil
	case *kmsg.OffsetForLeaderEpochRequest:
		return s.handleOffsetForLeaderEpoch(ctx, body), nil, nil
	case *kmsg.DescribeConfigsRequest:
		return s.handleDescribeConfigs(body), nil, nil
	case *kmsg.AlterConfigsRequest:
		return s.handleAlterConfigs(ctx, body), nil, nil
	case *kmsg.CreatePartitionsRequest:
		return s.handleCreatePartitions(ctx, body), nil, nil
	case *kmsg.IncrementalAlterConfigsRequest:
		return s.handleIncrementalAlterConfigs(ctx, body), nil, nil
	case *kmsg.DescribeClusterRequest:
		return s.handleDescribeCluster(body), nil, nil
	case *kmsg.DescribeProducersRequest:
		return s.handleDescribeProducers(ctx, body), nil, nil
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		return s.handleDescribeUserSCRAMCredentials(ctx, body), nil, nil
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		return s.handleAlterUserSCRAMCredentials(ctx, body), nil, nil
	case *kmsg.DescribeACLsRequest:
		return s.handleDescribeACLs(ctx, body), nil, nil
	case *kmsg.CreateACLsRequest:
		return s.handleCreateACLs(ctx, body), nil, nil
	case *kmsg.DeleteACLsRequest:
		return s.handleDeleteACLs(ctx, body), nil, nil
	case *kmsg.DescribeClientQuotasRequest:
		return s.handleDescribeClientQuotas(body), nil, nil
	case *kmsg.AlterClientQuotasRequest:
		return s.handleAlterClientQuotas(ctx, body), nil, nil
	// Transactions: in request order on the reader, except what waits
	// for markers or runs on the group coordinator.
	case *kmsg.AddPartitionsToTxnRequest:
		return s.handleAddPartitionsToTxn(ctx, body), nil, nil
	case *kmsg.AddOffsetsToTxnRequest:
		return s.handleAddOffsetsToTxn(ctx, body), nil, nil
	case *kmsg.EndTxnRequest:
		return nil, func(ctx context.Context) kmsg.Response { return s.handleEndTxn(ctx, body) }, nil
	case *kmsg.WriteTxnMarkersRequest:
		return nil, s.handleWriteTxnMarkers(ctx, body), nil
	case *kmsg.TxnOffsetCommitRequest:
		return nil, s.handleTxnOffsetCommit(body), nil
	case *kmsg.DescribeTransactionsRequest:
		return s.handleDescribeTransactions(ctx, body), nil, nil
	case *kmsg.ListTransactionsRequest:
		return s.handleListTransactions(ctx, body), nil, nil
	}
	return nil, nil, fmt.Errorf("ingest: no handler for %s v%d", kmsg.NameForKey(r.key), r.version)
}
