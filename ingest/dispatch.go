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
	}
	return nil, nil, fmt.Errorf("ingest: no handler for %s v%d", kmsg.NameForKey(r.key), r.version)
}
