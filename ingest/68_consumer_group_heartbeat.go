package ingest

// ConsumerGroupHeartbeat (68, v0-v1) and ConsumerGroupDescribe (69, v0-v1):
// the KIP-848 consumer group protocol, on the group coordinator
// (ingest/group/consumer.go): server-side assignment (uniform, range),
// incremental reconciliation with member epochs, static membership, regex
// subscriptions (v1, RE2 syntax, matched against whole topic names,
// internal topics excluded), and classic members in the same group. The
// group's state is stored in etcd at every change.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/group"
)

func (s *Server) handleConsumerGroupHeartbeat(r *request, req *kmsg.ConsumerGroupHeartbeatRequest) func(context.Context) kmsg.Response {
	cl := group.Client{ID: clientID(r), Host: clientHost(r)}
	return func(context.Context) kmsg.Response { return s.groups.ConsumerGroupHeartbeat(cl, req) }
}

func (s *Server) handleConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) func(context.Context) kmsg.Response {
	return func(context.Context) kmsg.Response { return s.groups.ConsumerGroupDescribe(req) }
}
