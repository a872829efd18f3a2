package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

func metadataReq(v int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = v
	req.AllowAutoTopicCreation = true
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestMetadata(t *testing.T) {
	n := startNode(t, func(c *Config) { c.DefaultPartitions = 3 })
	known := n.createTopic("known", 2)
	c := n.dial()

	resp := roundTrip[*kmsg.MetadataResponse](c, metadataReq(12, "known"))
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != "127.0.0.1" || resp.ControllerID != 1 ||
		resp.ClusterID == nil || *resp.ClusterID != "test-cluster" {
		t.Fatalf("brokers %+v controller %d cluster %v", resp.Brokers, resp.ControllerID, resp.ClusterID)
	}
	st := resp.Topics[0]
	if st.ErrorCode != 0 || *st.Topic != "known" || st.TopicID != known.ID || len(st.Partitions) != 2 {
		t.Fatalf("topic %+v", st)
	}
	for i, sp := range st.Partitions {
		if sp.Partition != int32(i) || sp.Leader != 1 || sp.LeaderEpoch < 0 || len(sp.Replicas) != 1 || sp.Replicas[0] != 1 || len(sp.ISR) != 1 {
			t.Fatalf("partition %+v", sp)
		}
	}

	// Auto-creation, and when it is not allowed.
	for _, tc := range []struct {
		name  string
		v     int16
		allow bool
		want  int16
		parts int
	}{
		{"auto-v1", 1, false, 0, 3}, // below v4 auto-creation is always requested
		{"auto-v9", 9, true, 0, 3},
		{"no-auto-v9", 9, false, kerr.UnknownTopicOrPartition.Code, 0},
		{"bad name!", 9, true, kerr.InvalidTopicException.Code, 0},
		{"bad name?", 9, false, kerr.InvalidTopicException.Code, 0},
		{strings.Repeat("x", 250), 9, true, kerr.InvalidTopicException.Code, 0},
	} {
		req := metadataReq(tc.v, tc.name)
		req.AllowAutoTopicCreation = tc.allow
		resp := roundTrip[*kmsg.MetadataResponse](c, req)
		if got := resp.Topics[0]; got.ErrorCode != tc.want || len(got.Partitions) != tc.parts {
			t.Errorf("%q v%d allow=%v: error %v with %d partitions, want %v with %d", tc.name, tc.v, tc.allow,
				kerr.ErrorForCode(got.ErrorCode), len(got.Partitions), kerr.ErrorForCode(tc.want), tc.parts)
		}
	}

	// Which topics a request means.
	all := len(n.meta.Topics()) + 1 // known, auto-v1, auto-v9, and the internal __consumer_offsets
	for _, tc := range []struct {
		name string
		req  *kmsg.MetadataRequest
		want int
	}{
		{"v0 empty list = all", metadataReq(0, []string{}...), all},
		{"v1 null = all", metadataReq(1), all},
		{"v1 empty = none", metadataReq(1, []string{}...), 0},
		{"v12 null = all", metadataReq(12), all},
		{"duplicates once", metadataReq(12, "known", "known"), 1},
	} {
		if got := len(roundTrip[*kmsg.MetadataResponse](c, tc.req).Topics); got != tc.want {
			t.Errorf("%s: %d topics, want %d", tc.name, got, tc.want)
		}
	}

	// By id (v10+).
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	for _, id := range [][16]byte{known.ID, {7}} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		byID.Topics = append(byID.Topics, rt)
	}
	resp = roundTrip[*kmsg.MetadataResponse](c, byID)
	if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != 0 || *resp.Topics[0].Topic != "known" ||
		resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code || resp.Topics[1].TopicID != [16]byte{7} {
		t.Fatalf("by id: %+v", resp.Topics)
	}
}

func TestMetadataAutoCreateDisabled(t *testing.T) {
	n := startNode(t, func(c *Config) { c.AutoCreateTopics = false })
	resp := roundTrip[*kmsg.MetadataResponse](n.dial(), metadataReq(1, "ghost"))
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("error %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	if _, ok := n.meta.Topic("ghost"); ok {
		t.Fatal("topic created with AutoCreateTopics off")
	}
}

func createReq(v int16, validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = v
	req.TimeoutMillis = 10000
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

func newTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = name
	rt.NumPartitions = partitions
	rt.ReplicationFactor = rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name = configs[i]
		c.Value = kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func TestCreateTopics(t *testing.T) {
	n := startNode(t, func(c *Config) { c.DefaultPartitions = 2 })
	n.createTopic("exists", 1)
	n.createTopic("dotted.name", 1)
	c := n.dial()

	withAssignment := newTopic("assigned", -1, -1)
	for p := range int32(3) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition = p
		a.Replicas = []int32{1}
		withAssignment.ReplicaAssignment = append(withAssignment.ReplicaAssignment, a)
	}
	badAssignment := newTopic("bad-assigned", -1, -1)
	badAssignment.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 5, Replicas: []int32{1}}}
	nullConfig := newTopic("null-config", 1, 1)
	nullConfig.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms"}}

	tests := []struct {
		topic kmsg.CreateTopicsRequestTopic
		want  int16
		parts int32
	}{
		{newTopic("plain", 4, 1), 0, 4},
		{newTopic("defaults", -1, -1), 0, 2},
		{newTopic("rf3", 1, 3), 0, 1},
		{newTopic("configured", 1, 1, "retention.ms", "60000", "cleanup.policy", "delete", "compression.type", "zstd", "max.message.bytes", "2000000"), 0, 1},
		{withAssignment, 0, 3},
		{badAssignment, kerr.InvalidReplicaAssignment.Code, -1},
		{newTopic("exists", 1, 1), kerr.TopicAlreadyExists.Code, -1},
		{newTopic("dotted_name", 1, 1), kerr.InvalidTopicException.Code, -1},
		{newTopic("bad/name", 1, 1), kerr.InvalidTopicException.Code, -1},
		{newTopic("..", 1, 1), kerr.InvalidTopicException.Code, -1},
		{newTopic("zero", 0, 1), kerr.InvalidPartitions.Code, -1},
		{newTopic("minus-two", -2, 1), kerr.InvalidPartitions.Code, -1},
		{newTopic("too-many", maxPartitions+1, 1), kerr.InvalidPartitions.Code, -1},
		{newTopic("rf0", 1, 0), kerr.InvalidReplicationFactor.Code, -1},
		{newTopic("compacted", 1, 1, "cleanup.policy", "shred"), kerr.InvalidConfig.Code, -1},
		{newTopic("unknown-config", 1, 1, "no.such.config", "5"), kerr.InvalidConfig.Code, -1},
		{newTopic("bad-retention", 1, 1, "retention.ms", "soon"), kerr.InvalidConfig.Code, -1},
		{nullConfig, kerr.InvalidConfig.Code, -1},
	}
	for _, validateOnly := range []bool{true, false} {
		for _, tt := range tests {
			resp := roundTrip[*kmsg.CreateTopicsResponse](c, createReq(7, validateOnly, tt.topic))
			st := resp.Topics[0]
			if st.ErrorCode != tt.want || st.NumPartitions != tt.parts {
				t.Errorf("%s (validateOnly %v): error %v, %d partitions; want %v, %d", tt.topic.Topic, validateOnly,
					kerr.ErrorForCode(st.ErrorCode), st.NumPartitions, kerr.ErrorForCode(tt.want), tt.parts)
				continue
			}
			if tt.want != 0 {
				if st.ErrorMessage == nil {
					t.Errorf("%s: no error message", tt.topic.Topic)
				}
				continue
			}
			got, ok := n.meta.Topic(tt.topic.Topic)
			if validateOnly {
				if ok || st.TopicID != [16]byte{} {
					t.Errorf("%s: created by a validate-only request", tt.topic.Topic)
				}
				continue
			}
			if !ok || got.ID != st.TopicID || got.Partitions != tt.parts || st.ReplicationFactor != 1 || len(st.Configs) != len(tt.topic.Configs) {
				t.Errorf("%s: answered %+v, metadata has %+v (%v)", tt.topic.Topic, st, got, ok)
			}
		}
	}

	// The same name twice in one request.
	resp := roundTrip[*kmsg.CreateTopicsResponse](c, createReq(4, false, newTopic("twice", 1, 1), newTopic("twice", 1, 1)))
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("duplicate: error %v, want INVALID_REQUEST", kerr.ErrorForCode(st.ErrorCode))
		}
	}
}

func TestDeleteTopics(t *testing.T) {
	n := startNode(t, nil)
	a := n.createTopic("doomed-a", 1)
	n.createTopic("doomed-b", 1)
	n.createTopic("kept", 1)
	c := n.dial()
	// Some data and an open partition, so the tier has something to drop.
	roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "doomed-a", 0, batch(t, "d", 1, kbatch.BuildOptions{})))

	byName := kmsg.NewPtrDeleteTopicsRequest()
	byName.Version = 4
	byName.TimeoutMillis = 10000
	byName.TopicNames = []string{"doomed-b", "never-was"}
	resp := roundTrip[*kmsg.DeleteTopicsResponse](c, byName)
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("by name: %+v", resp.Topics)
	}

	byID := kmsg.NewPtrDeleteTopicsRequest()
	byID.Version = 6
	byID.TimeoutMillis = 10000
	for _, id := range [][16]byte{a.ID, {3}} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = id
		byID.Topics = append(byID.Topics, rt)
	}
	both := kmsg.NewDeleteTopicsRequestTopic()
	both.TopicID, both.Topic = a.ID, kmsg.StringPtr("doomed-a")
	byID.Topics = append(byID.Topics, both)
	resp = roundTrip[*kmsg.DeleteTopicsResponse](c, byID)
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.Topic == nil || *st.Topic != "doomed-a" {
		t.Fatalf("by id: %+v", st)
	}
	if resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code || resp.Topics[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("unknown id, and name with id: %+v", resp.Topics[1:])
	}

	// A topic named twice is refused both times and kept.
	dup := kmsg.NewPtrDeleteTopicsRequest()
	dup.Version = 1
	dup.TopicNames = []string{"kept", "kept"}
	resp = roundTrip[*kmsg.DeleteTopicsResponse](c, dup)
	if resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("duplicate: %+v", resp.Topics)
	}
	if _, ok := n.meta.Topic("kept"); !ok {
		t.Fatal("duplicate delete deleted the topic")
	}
	waitFor(t, func() bool { return len(n.meta.Topics()) == 1 })

	// Produce to a deleted topic fails; metadata no longer lists it.
	pr := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, 1, "doomed-a", 0, batch(t, "d", 1, kbatch.BuildOptions{})))
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce after delete: %v", kerr.ErrorForCode(code))
	}
}

func TestListOffsets(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("lo", 1)
	c := n.dial()
	before := time.Now().UnixMilli()
	produceN(t, c, "lo", 3) // offsets 0..5
	part, err := n.tier.Partition(t.Context(), topicPartition("lo", 0))
	if err != nil {
		t.Fatal(err)
	}
	epoch := part.LeaderEpoch()

	tests := []struct {
		name   string
		v      int16
		ts     int64
		cle    int32
		part   int32
		topic  string
		want   int16
		offset int64
	}{
		{"latest", 1, -1, -1, 0, "lo", 0, 6},
		{"earliest", 1, -2, -1, 0, "lo", 0, 0},
		{"earliest local", 8, -4, -1, 0, "lo", 0, 0},
		{"max timestamp below v7", 6, -3, -1, 0, "lo", kerr.UnsupportedVersion.Code, -1},
		{"latest tiered", 9, -5, -1, 0, "lo", 0, -1},
		{"unknown special timestamp", 11, -7, -1, 0, "lo", kerr.UnsupportedVersion.Code, -1},
		{"by timestamp", 4, before, -1, 0, "lo", 0, 0},
		{"timestamp in the future", 4, before + 3_600_000, -1, 0, "lo", 0, -1},
		{"unknown topic", 4, -1, -1, 0, "nope", kerr.UnknownTopicOrPartition.Code, -1},
		{"unknown partition", 4, -1, -1, 3, "lo", kerr.UnknownTopicOrPartition.Code, -1},
		{"future epoch", 4, -1, epoch + 1, 0, "lo", kerr.UnknownLeaderEpoch.Code, -1},
		{"current epoch", 4, -1, epoch, 0, "lo", 0, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version = tt.v
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = tt.topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = tt.part
			rp.Timestamp = tt.ts
			rp.CurrentLeaderEpoch = tt.cle
			rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp}
			req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
			sp := roundTrip[*kmsg.ListOffsetsResponse](c, req).Topics[0].Partitions[0]
			if sp.ErrorCode != tt.want || sp.Offset != tt.offset {
				t.Fatalf("error %v offset %d, want %v offset %d", kerr.ErrorForCode(sp.ErrorCode), sp.Offset, kerr.ErrorForCode(tt.want), tt.offset)
			}
		})
	}

	// A partition listed twice: INVALID_REQUEST for both.
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 5
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp, rp}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	for _, sp := range roundTrip[*kmsg.ListOffsetsResponse](c, req).Topics[0].Partitions {
		if sp.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate: %v", kerr.ErrorForCode(sp.ErrorCode))
		}
	}
}

func TestListOffsetsMaxTimestamp(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("lomax", 1)
	c := n.dial()
	// Batches with timestamps 100.., 900.., 500..: the largest is 901 at offset 3.
	for _, base := range []int64{100, 900, 500} {
		recs := []kbatch.Record{{Timestamp: base, Value: []byte("a")}, {Timestamp: base + 1, Value: []byte("b")}}
		b, err := kbatch.Build(recs, kbatch.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "lomax", 0, b))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lomax"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, -3, -1
	rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	sp := roundTrip[*kmsg.ListOffsetsResponse](c, req).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.Offset != 3 || sp.Timestamp != 901 {
		t.Fatalf("max timestamp: error %v offset %d timestamp %d; want offset 3, timestamp 901", kerr.ErrorForCode(sp.ErrorCode), sp.Offset, sp.Timestamp)
	}
}
