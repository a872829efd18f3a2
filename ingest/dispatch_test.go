package ingest

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// FuzzDispatch runs arbitrary bodies of every served key and version
// through parsing, the handler (on a real node) and response encoding:
// nothing may panic, and every request but acks=0 produce gets a response
// that kmsg can encode and read back.
func FuzzDispatch(f *testing.F) {
	n := startNode(f, func(c *Config) { c.DefaultPartitions = 2 })
	fuzzDispatch(f, n, caller{})
}

// FuzzAuthorizedDispatch is FuzzDispatch behind the authorizer, with ACLs
// that allow some topics, groups and ids and not others: every API's
// refusals (and the answers patched with them) encode, nothing panics.
func FuzzAuthorizedDispatch(f *testing.F) {
	n := startNode(f, func(c *Config) {
		c.DefaultPartitions = 2
		c.Authorizer = Authorizer{Enabled: true}
	})
	var acls []metadata.ACL
	for _, rt := range []kmsg.ACLResourceType{kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeTransactionalId} {
		acls = append(acls, metadata.ACL{ResourceType: int8(rt), ResourceName: "fuzz", PatternType: int8(kmsg.ACLResourcePatternTypePrefixed),
			Principal: "User:*", Host: "*", Operation: int8(kmsg.ACLOperationAll), Permission: int8(kmsg.ACLPermissionTypeAllow)})
	}
	acls = append(acls, metadata.ACL{ResourceType: int8(kmsg.ACLResourceTypeTopic), ResourceName: "fuzz-no", PatternType: int8(kmsg.ACLResourcePatternTypeLiteral),
		Principal: "User:*", Host: "*", Operation: int8(kmsg.ACLOperationWrite), Permission: int8(kmsg.ACLPermissionTypeDeny)})
	if err := n.meta.CreateACLs(context.Background(), acls); err != nil {
		f.Fatal(err)
	}
	waitFor(f, func() bool { _, got := n.meta.ACLs(); return len(got) == len(acls) })
	fuzzDispatch(f, n, caller{principal: anonymous, host: "127.0.0.1"})
}

func fuzzDispatch(f *testing.F, n *testNode, who caller) {
	tp := n.createTopic("fuzz", 2)
	for _, fr := range validFrames() {
		key, v := int16(binary.BigEndian.Uint16(fr)), int16(binary.BigEndian.Uint16(fr[2:]))
		if !isServed(key, v) {
			continue
		}
		req, err := parseRequest(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(key, v, req.body.AppendTo(nil))
	}
	good := batch(f, "seed", 2, kbatch.BuildOptions{})
	for _, req := range []kmsg.Request{
		produceReq(9, 1, "fuzz", 1, good),
		produceReq(3, -1, "fuzz", 0, good),
		produceReq(7, 0, "fuzz", 0, good),
		fetchReq(11, "fuzz", tp.ID, 0, 0, 10, 1),
		fetchReq(13, "", tp.ID, 1, 0, 10, 1),
		metadataReq(12, "fuzz", "auto"),
		createReq(7, false, newTopic("made", 2, 1, "retention.ms", "1000")),
	} {
		f.Add(req.Key(), req.GetVersion(), req.AppendTo(nil))
	}
	// The security and quota requests.
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.SetVersion(3)
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType, cr.Principal, cr.Host = 2, "fuzz", 3, "User:a", "*"
	cr.Operation, cr.PermissionType = 3, 3
	ca.Creations = append(ca.Creations, cr)
	da := kmsg.NewPtrDescribeACLsRequest()
	da.SetVersion(1)
	da.ResourceType, da.ResourcePatternType, da.Operation, da.PermissionType = 1, 1, 1, 1
	dl := kmsg.NewPtrDeleteACLsRequest()
	dl.SetVersion(2)
	dl.Filters = append(dl.Filters, kmsg.NewDeleteACLsRequestFilter())
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aq.SetVersion(1)
	qe := kmsg.NewAlterClientQuotasRequestEntry()
	qe.Entity = append(qe.Entity, kmsg.AlterClientQuotasRequestEntryEntity{Type: "user", Name: kmsg.StringPtr("u")})
	qe.Ops = append(qe.Ops, kmsg.AlterClientQuotasRequestEntryOp{Key: "producer_byte_rate", Value: 1000})
	aq.Entries = append(aq.Entries, qe)
	dq := kmsg.NewPtrDescribeClientQuotasRequest()
	dq.Components = append(dq.Components, kmsg.DescribeClientQuotasRequestComponent{EntityType: "user", MatchType: 2})
	us := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	us.Upsertions = append(us.Upsertions, kmsg.AlterUserSCRAMCredentialsRequestUpsertion{Name: "u", Mechanism: 1, Iterations: 4096, Salt: []byte("s"), SaltedPassword: make([]byte, 32)})
	for _, req := range []kmsg.Request{ca, da, dl, aq, dq, us, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()} {
		f.Add(req.Key(), req.GetVersion(), req.AppendTo(nil))
	}
	// Share groups and KIP-848 groups.
	sh := kmsg.NewPtrShareGroupHeartbeatRequest()
	sh.SetVersion(1)
	sh.GroupID, sh.MemberID, sh.SubscribedTopicNames = "fuzz-share", "m1", []string{"fuzz"}
	ch := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	ch.SetVersion(1)
	ch.Group, ch.MemberID, ch.RebalanceTimeoutMillis, ch.SubscribedTopicRegex = "fuzz-848", "m1", 1000, kmsg.StringPtr("fu.*")
	ch.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	sf := kmsg.NewPtrShareFetchRequest()
	sf.SetVersion(2)
	sf.GroupID, sf.MemberID, sf.MaxWaitMillis, sf.MaxRecords = kmsg.StringPtr("fuzz-share"), kmsg.StringPtr("m1"), 10, 5
	sft := kmsg.NewShareFetchRequestTopic()
	sft.TopicID = tp.ID
	sfp := kmsg.NewShareFetchRequestTopicPartition()
	sfp.AcknowledgementBatches = append(sfp.AcknowledgementBatches, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 1, AcknowledgeTypes: []int8{1}})
	sft.Partitions = append(sft.Partitions, sfp)
	sf.Topics = append(sf.Topics, sft)
	sa := kmsg.NewPtrShareAcknowledgeRequest()
	sa.SetVersion(2)
	sa.GroupID, sa.MemberID, sa.ShareSessionEpoch = kmsg.StringPtr("fuzz-share"), kmsg.StringPtr("m1"), 1
	sat := kmsg.NewShareAcknowledgeRequestTopic()
	sat.TopicID = tp.ID
	sat.Partitions = append(sat.Partitions, kmsg.ShareAcknowledgeRequestTopicPartition{AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{3}}}})
	sa.Topics = append(sa.Topics, sat)
	ao := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	ao.GroupID = "fuzz-share"
	ao.Topics = append(ao.Topics, kmsg.AlterShareGroupOffsetsRequestTopic{Topic: "fuzz", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 1}}})
	rs := kmsg.NewPtrReadShareGroupStateRequest()
	rs.GroupID = "fuzz-share"
	rs.Topics = append(rs.Topics, kmsg.ReadShareGroupStateRequestTopic{TopicID: tp.ID, Partitions: []kmsg.ReadShareGroupStateRequestTopicPartition{{Partition: 0}}})
	gc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	gc.SetVersion(1)
	gc.Resources = append(gc.Resources, kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeGroupConfig, ResourceName: "fuzz-share",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "share.auto.offset.reset", Value: kmsg.StringPtr("earliest")}}})
	for _, req := range []kmsg.Request{sh, ch, sf, sa, ao, rs, gc} {
		f.Add(req.Key(), req.GetVersion(), req.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, v int16, body []byte) {
		if !isServed(key, v) || saslAllowedBefore(key) && key != int16(kmsg.ApiVersions) {
			return // the SASL exchange runs on the connection: FuzzSASL
		}
		frame := kmsg.NewRequestFormatter().AppendRequest(nil, &rawBody{key: key, version: v, body: body}, 1)[4:]
		r, err := parseRequest(frame)
		if err != nil {
			return
		}
		r.arrived = time.Now()
		r.who = who
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		resp, later, err := n.srv.dispatchAuthorized(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if later != nil {
			resp = later(ctx)
		}
		if r.budgeted { // the connection's writer would, once written
			n.srv.fetchBudget.release(r.reserved, true)
		}
		if resp == nil {
			if p, ok := r.body.(*kmsg.ProduceRequest); !ok || p.Acks != 0 {
				t.Fatalf("%s v%d: no response", kmsg.NameForKey(key), v)
			}
			return
		}
		out := appendResponse(nil, r.corr, resp)
		back := resp.RequestKind().ResponseKind()
		back.SetVersion(v)
		hdr := 8
		if back.IsFlexible() && key != int16(kmsg.ApiVersions) {
			hdr++
		}
		if err := back.ReadFrom(out[hdr:]); err != nil {
			t.Fatalf("%s v%d: response does not read back: %v", kmsg.NameForKey(key), v, err)
		}
	})
}

// rawBody is a request whose body bytes are given as they are, so the
// RequestFormatter frames arbitrary bodies with a real header.
type rawBody struct {
	key, version int16
	body         []byte
}

func (r *rawBody) Key() int16               { return r.key }
func (r *rawBody) MaxVersion() int16        { return kmsg.RequestForKey(r.key).MaxVersion() }
func (r *rawBody) SetVersion(v int16)       { r.version = v }
func (r *rawBody) GetVersion() int16        { return r.version }
func (r *rawBody) AppendTo(b []byte) []byte { return append(b, r.body...) }
func (r *rawBody) ReadFrom([]byte) error    { return nil }
func (r *rawBody) ResponseKind() kmsg.Response {
	resp := kmsg.ResponseForKey(r.key)
	resp.SetVersion(r.version)
	return resp
}
func (r *rawBody) IsFlexible() bool {
	req := kmsg.RequestForKey(r.key)
	req.SetVersion(r.version)
	return req.IsFlexible()
}
