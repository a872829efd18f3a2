package ingest

// DescribeCluster: v0-v2 served
// * Brokers: every live node registered in metadata and this node (as
//   Metadata lists them), sorted by id; no racks; none fenced (v2).
// * ControllerID: the lowest live node id, so every node names the same one.
//   Any node answers admin requests (topics live in etcd), so the choice only
//   has to be stable.
// * ClusterID: the configured cluster id.
// * EndpointType (v1+): only brokers (1); controllers (2) or anything else
//   is UNSUPPORTED_ENDPOINT_TYPE: Strata has no separate controllers.
// * ClusterAuthorizedOperations: -2147483648 (not provided): there are no
//   ACLs to report from.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// endpointTypeBrokers is DescribeCluster's EndpointType for brokers
// (KIP-919).
const endpointTypeBrokers = 1

func (s *Server) handleDescribeCluster(req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("only the brokers endpoint type (1) is supported: Strata has no separate controllers")
		return resp
	}
	resp.ClusterID = s.cfg.ClusterID
	resp.ClusterAuthorizedOperations = -2147483648
	for _, b := range s.brokers() {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID = b.NodeID
		db.Host = b.Host
		db.Port = b.Port
		resp.Brokers = append(resp.Brokers, db)
	}
	slices.SortFunc(resp.Brokers, func(a, b kmsg.DescribeClusterResponseBroker) int { return int(a.NodeID) - int(b.NodeID) })
	resp.ControllerID = resp.Brokers[0].NodeID // brokers() always holds this node
	return resp
}
