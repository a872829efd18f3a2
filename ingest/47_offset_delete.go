package ingest

// OffsetDelete: v0 served
// * An empty group loses any partition's offset. A group with members only
//   those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC
//   otherwise), read from the consumer protocol's metadata; a non-consumer
//   group with members is NON_EMPTY_GROUP. Unknown topics:
//   UNKNOWN_TOPIC_OR_PARTITION; unknown group: GROUP_ID_NOT_FOUND.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleOffsetDelete(req *kmsg.OffsetDeleteRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.groups.OffsetDelete(ctx, req) }
}
