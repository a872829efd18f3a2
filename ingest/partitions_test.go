package ingest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

func createPartitionsReq(v int16, validateOnly bool, topics ...kmsg.CreatePartitionsRequestTopic) *kmsg.CreatePartitionsRequest {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = v
	req.TimeoutMillis = 10000
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

func partitionsTo(topic string, count int32) kmsg.CreatePartitionsRequestTopic {
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic = topic
	rt.Count = count
	return rt
}

func TestCreatePartitions(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("grow", 2)
	c := n.dial()
	count := func() int32 { tp, _ := n.meta.Topic("grow"); return tp.Partitions }

	withAssignment := partitionsTo("grow", 5)
	withAssignment.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}}
	steps := []struct {
		name         string
		v            int16
		validateOnly bool
		topics       []kmsg.CreatePartitionsRequestTopic
		want         int16
		after        int32
	}{
		{"validate only", 0, true, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", 4)}, 0, 2},
		{"grow to 3", 0, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", 3)}, 0, 3},
		{"grow to 4 (v3)", 3, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", 4)}, 0, 4},
		{"same count", 1, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", 4)}, kerr.InvalidPartitions.Code, 4},
		{"fewer", 2, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", 1)}, kerr.InvalidPartitions.Code, 4},
		{"too many", 2, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", maxPartitions+1)}, kerr.InvalidPartitions.Code, 4},
		{"assignment", 2, false, []kmsg.CreatePartitionsRequestTopic{withAssignment}, kerr.InvalidRequest.Code, 4},
		{"twice", 2, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("grow", 6), partitionsTo("grow", 7)}, kerr.InvalidRequest.Code, 4},
		{"unknown topic", 2, false, []kmsg.CreatePartitionsRequestTopic{partitionsTo("nope", 7)}, kerr.UnknownTopicOrPartition.Code, 4},
	}
	for _, st := range steps {
		resp := roundTrip[*kmsg.CreatePartitionsResponse](c, createPartitionsReq(st.v, st.validateOnly, st.topics...))
		for _, rt := range resp.Topics {
			if rt.ErrorCode != st.want || (st.want != 0) != (rt.ErrorMessage != nil) {
				t.Fatalf("%s: error %v (%v), want %v", st.name, kerr.ErrorForCode(rt.ErrorCode), rt.ErrorMessage, kerr.ErrorForCode(st.want))
			}
		}
		if got := count(); got != st.after {
			t.Fatalf("%s: %d partitions, want %d", st.name, got, st.after)
		}
	}
	// The new partitions take records.
	sp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "grow", 3, batch(t, "new", 2, kbatch.BuildOptions{}))).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("produce to a new partition: %v at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
}

func TestDescribeCluster(t *testing.T) {
	n := startNode(t, func(c *Config) { c.NodeID = 3; c.ClusterID = "described-cluster" })
	c := n.dial()
	for v := int16(0); v <= 2; v++ {
		resp := roundTrip[*kmsg.DescribeClusterResponse](c, &kmsg.DescribeClusterRequest{Version: v, EndpointType: 1})
		if resp.ErrorCode != 0 || resp.ClusterID != "described-cluster" || resp.ControllerID != 3 || len(resp.Brokers) != 1 ||
			resp.Brokers[0].NodeID != 3 || resp.Brokers[0].Host != "127.0.0.1" || resp.ClusterAuthorizedOperations != -2147483648 {
			t.Fatalf("v%d alone: %+v", v, resp)
		}
	}
	resp := roundTrip[*kmsg.DescribeClusterResponse](c, &kmsg.DescribeClusterRequest{Version: 1, EndpointType: 2})
	if resp.ErrorCode != kerr.UnsupportedEndpointType.Code || resp.ErrorMessage == nil {
		t.Fatalf("controllers endpoint: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	// With other live nodes: all listed, sorted, the lowest id the
	// controller.
	for _, id := range []int32{5, 2} {
		if err := n.meta.RegisterNode(t.Context(), metadata.Node{ID: id, Host: "127.0.0.1", Port: 9000 + id}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(n.meta.Nodes()) == 2 })
	resp = roundTrip[*kmsg.DescribeClusterResponse](c, &kmsg.DescribeClusterRequest{Version: 2, EndpointType: 1})
	var ids []int32
	for _, b := range resp.Brokers {
		ids = append(ids, b.NodeID)
	}
	if resp.ErrorCode != 0 || resp.ControllerID != 2 || len(ids) != 3 || ids[0] != 2 || ids[1] != 3 || ids[2] != 5 {
		t.Fatalf("with three nodes: controller %d, brokers %v", resp.ControllerID, ids)
	}
}

// TestNotLeader checks the per-partition requests on a partition another
// live node leads.
func TestNotLeader(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("elsewhere", 1)
	// The only live nodes are others (the test tier is node 0, the server
	// node 1): every partition is theirs.
	if err := n.meta.RegisterNode(t.Context(), metadata.Node{ID: 7, Host: "127.0.0.1", Port: 9007}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(n.meta.Nodes()) == 1 })
	c := n.dial()
	want := kerr.NotLeaderForPartition.Code
	if code := roundTrip[*kmsg.DeleteRecordsResponse](c, deleteRecordsReq(1, "elsewhere", 0, -1)).Topics[0].Partitions[0].ErrorCode; code != want {
		t.Errorf("DeleteRecords: %v", kerr.ErrorForCode(code))
	}
	if code := roundTrip[*kmsg.OffsetForLeaderEpochResponse](c, offsetForEpochReq(4, "elsewhere", 0, -1, 1)).Topics[0].Partitions[0].ErrorCode; code != want {
		t.Errorf("OffsetForLeaderEpoch: %v", kerr.ErrorForCode(code))
	}
	if code := roundTrip[*kmsg.DescribeProducersResponse](c, describeProducersReq("elsewhere", 0)).Topics[0].Partitions[0].ErrorCode; code != want {
		t.Errorf("DescribeProducers: %v", kerr.ErrorForCode(code))
	}
}
