package ingest

// ShareGroupHeartbeat (76, v1) and ShareGroupDescribe (77, v1): share group
// membership (KIP-932, Kafka 4.2; v0 was early access), on the group
// coordinator (ingest/group/share.go). Members name their own member ids;
// the simple assignor gives every subscribed partition to at least one
// member, sharing partitions when members outnumber them. The records'
// delivery state lives with each partition's leader (78_share_fetch.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/group"
)

func (s *Server) handleShareGroupHeartbeat(r *request, req *kmsg.ShareGroupHeartbeatRequest) func(context.Context) kmsg.Response {
	cl := group.Client{ID: clientID(r), Host: clientHost(r)}
	return func(context.Context) kmsg.Response { return s.groups.ShareGroupHeartbeat(cl, req) }
}

func (s *Server) handleShareGroupDescribe(req *kmsg.ShareGroupDescribeRequest) func(context.Context) kmsg.Response {
	return func(context.Context) kmsg.Response { return s.groups.ShareGroupDescribe(req) }
}
