package group

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// TestSimpleCommits: clients that assign partitions themselves (kcat,
// sarama and librdkafka manual commits, v0 commits) commit with no member
// and a negative generation to a group nobody joined.
func TestSimpleCommits(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	tests := []struct {
		name    string
		version int16
		topic   string
		part    int32
		offset  int64
		want    int16
	}{
		{"v0", 0, "t1", 0, 100, 0},
		{"v2", 2, "t1", 1, 200, 0},
		{"v8 flexible", 8, "t2", 2, 300, 0},
		{"unknown topic", 9, "nope", 0, 1, kerr.UnknownTopicOrPartition.Code},
		{"partition out of range", 9, "t2", 3, 1, kerr.UnknownTopicOrPartition.Code},
		{"negative partition", 9, "t2", -1, 1, kerr.UnknownTopicOrPartition.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := commitOne(t, c, g, "", -1, tt.version, tt.topic, tt.part, tt.offset); code != tt.want {
				t.Fatalf("commit = %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(tt.want))
			}
			if tt.want != 0 {
				return
			}
			if off, code := fetchOne(t, c, g, tt.topic, tt.part); code != 0 || off != tt.offset {
				t.Fatalf("fetch = %d, %v", off, kerr.ErrorForCode(code))
			}
		})
	}
	// A generation given for a group nobody joined is stale.
	if code := commitOne(t, c, g, "m", 3, 9, "t1", 0, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("commit with a generation to an empty group = %v", kerr.ErrorForCode(code))
	}
	if code := commitOne(t, c, "", "", -1, 9, "t1", 0, 1); code != kerr.InvalidGroupID.Code {
		t.Fatalf("commit to the empty group id = %v", kerr.ErrorForCode(code))
	}
}

func TestCommitMetadataLimit(t *testing.T) {
	c := newCoord(t, func(cfg *Config) { cfg.MaxMetadataBytes = 10 })
	g := groupName(t)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 6
	req.Group = g
	ok, long := kmsg.NewOffsetCommitRequestTopicPartition(), kmsg.NewOffsetCommitRequestTopicPartition()
	ok.Partition, ok.Offset, ok.Metadata = 0, 1, kmsg.StringPtr("0123456789")
	long.Partition, long.Offset, long.Metadata = 1, 1, kmsg.StringPtr("0123456789a")
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{ok, long}}}
	resp := c.OffsetCommit(testCtx(t), req)
	if got := resp.Topics[0].Partitions; got[0].ErrorCode != 0 || got[1].ErrorCode != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("codes = %d, %d", got[0].ErrorCode, got[1].ErrorCode)
	}
	if _, code := fetchOne(t, c, g, "t1", 0); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if off, _ := fetchOne(t, c, g, "t1", 1); off != -1 {
		t.Fatalf("refused partition was stored: %d", off)
	}
}

// TestOffsetFetchVersions checks each layout: per-partition errors (v0-1),
// top-level error and null-means-all (v2+), leader epoch (v5+), batched
// groups (v8+).
func TestOffsetFetchVersions(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	other := g + "-other"
	for _, p := range []int32{0, 3} {
		if code := commitOne(t, c, g, "", -1, 9, "t1", p, int64(10+p)); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	if code := commitOne(t, c, g, "", -1, 9, "t2", 1, 7); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if code := commitOne(t, c, other, "", -1, 9, "t2", 0, 99); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	ctx := testCtx(t)

	for _, v := range []int16{1, 3, 5, 7} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = v
		req.Group = g
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0, 1, 3}}}
		resp := roundTrip(t, c.OffsetFetch(ctx, req))
		ps := resp.Topics[0].Partitions
		if resp.ErrorCode != 0 || len(ps) != 3 || ps[0].Offset != 10 || ps[1].Offset != -1 || ps[2].Offset != 13 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		wantEpoch := int32(3)
		if v < 5 {
			wantEpoch = -1 // not on the wire before v5: the default
		}
		if ps[0].LeaderEpoch != wantEpoch || *ps[0].Metadata != "meta" || ps[1].LeaderEpoch != -1 {
			t.Fatalf("v%d partition 0: %+v", v, ps[0])
		}
	}

	// v2+: null topics means everything committed, sorted.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 6
	req.Group = g
	resp := c.OffsetFetch(ctx, req)
	var got []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			got = append(got, t.Topic+"/"+string(rune('0'+p.Partition)))
		}
	}
	if !slices.Equal(got, []string{"t1/0", "t1/3", "t2/1"}) {
		t.Fatalf("all offsets: %v", got)
	}

	// v8: several groups, one of them unknown.
	req = kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: g, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t2", Partitions: []int32{1}}}},
		{Group: other}, // all
		{Group: g + "-unknown", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t1", Partitions: []int32{0}}}},
	}
	resp = c.OffsetFetch(ctx, req)
	if len(resp.Groups) != 3 {
		t.Fatalf("v8 groups: %+v", resp.Groups)
	}
	if p := resp.Groups[0].Topics[0].Partitions[0]; p.Offset != 7 {
		t.Fatalf("v8 group 0: %+v", p)
	}
	if ts := resp.Groups[1].Topics; len(ts) != 1 || ts[0].Topic != "t2" || ts[0].Partitions[0].Offset != 99 {
		t.Fatalf("v8 group 1: %+v", ts)
	}
	if gr := resp.Groups[2]; gr.ErrorCode != 0 || gr.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("v8 unknown group: %+v", gr)
	}
	// Fetching an unknown group leaves nothing behind.
	for _, lg := range listGroups(t, c, nil) {
		if lg.Group == g+"-unknown" {
			t.Fatal("an OffsetFetch of an unknown group created it")
		}
	}
}

// TestOffsetsSurviveRestart: offsets are in etcd, so a new Coordinator (a
// restarted node) serves them, lists and describes the group as Empty,
// and refuses the old members, which join again.
func TestOffsetsSurviveRestart(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	a.sync(map[string][]byte{a.id: nil})
	if code := a.commit(42); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	c.Close()

	c2 := newCoord(t, nil)
	a.c = c2
	if off, code := fetchOne(t, c2, g, "t1", 0); code != 0 || off != 42 {
		t.Fatalf("after restart: %d, %v", off, kerr.ErrorForCode(code))
	}
	if code := a.heartbeat(); code != kerr.UnknownMemberID.Code {
		t.Fatalf("old member heartbeat = %v", kerr.ErrorForCode(code))
	}
	if code := a.commit(43); code != kerr.UnknownMemberID.Code {
		t.Fatalf("old member commit = %v", kerr.ErrorForCode(code))
	}
	c3 := newCoord(t, nil) // a fresh node: nothing in memory yet
	if d := describe(t, c3, g); d.State != "Empty" || d.ErrorCode != 0 {
		t.Fatalf("describe after restart: %+v", d)
	}
	found := false
	for _, lg := range listGroups(t, newCoord(t, nil), nil) {
		if lg.Group == g {
			found = lg.GroupState == "Empty"
		}
	}
	if !found {
		t.Fatal("ListGroups after restart lacks the group")
	}
	a.id = ""
	a.join()
	a.sync(map[string][]byte{a.id: nil})
	if code := a.commit(44); code != 0 {
		t.Fatalf("commit after rejoin = %v", kerr.ErrorForCode(code))
	}
}

// roundTrip encodes resp at its version and decodes it again: what a
// client would read.
func roundTrip[R kmsg.Response](t *testing.T, resp R) R {
	t.Helper()
	out := resp.RequestKind().ResponseKind().(R)
	out.SetVersion(resp.GetVersion())
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("decoding our own %T v%d: %v", resp, resp.GetVersion(), err)
	}
	return out
}

func listGroups(t *testing.T, c *Coordinator, mod func(*kmsg.ListGroupsRequest)) []kmsg.ListGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	if mod != nil {
		mod(req)
	}
	resp := c.ListGroups(testCtx(t), req)
	if resp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.Groups
}

func TestListAndDescribe(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	stable, empty := g+"-stable", g+"-empty"
	a := newTestMember(t, c, stable, "a")
	a.instance = kmsg.StringPtr("inst")
	a.join()
	a.sync(map[string][]byte{a.id: []byte("asg")})
	if code := commitOne(t, c, empty, "", -1, 9, "t1", 0, 1); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	states := func(mod func(*kmsg.ListGroupsRequest)) map[string]string {
		out := make(map[string]string)
		for _, lg := range listGroups(t, c, mod) {
			if strings.HasPrefix(lg.Group, g) {
				out[lg.Group] = lg.GroupState
				if lg.GroupType != "classic" {
					t.Fatalf("group type %q", lg.GroupType)
				}
			}
		}
		return out
	}
	if got := states(nil); got[stable] != "Stable" || got[empty] != "Empty" || len(got) != 2 {
		t.Fatalf("list = %v", got)
	}
	if got := states(func(r *kmsg.ListGroupsRequest) { r.StatesFilter = []string{"stable"} }); len(got) != 1 || got[stable] == "" {
		t.Fatalf("list stable = %v", got)
	}
	if got := states(func(r *kmsg.ListGroupsRequest) { r.TypesFilter = []string{"consumer"} }); len(got) != 0 {
		t.Fatalf("list of type consumer (KIP-848 groups) = %v", got)
	}

	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 6
	req.IncludeAuthorizedOperations = true
	req.Groups = []string{stable, empty, g + "-missing"}
	resp := c.DescribeGroups(testCtx(t), req)
	s, e, m := resp.Groups[0], resp.Groups[1], resp.Groups[2]
	if s.State != "Stable" || s.Protocol != "range" || len(s.Members) != 1 || *s.Members[0].InstanceID != "inst" ||
		s.Members[0].ClientHost != "/127.0.0.1" || string(s.Members[0].ProtocolMetadata) != string(consumerMeta("t1")) ||
		s.AuthorizedOperations != groupOps {
		t.Fatalf("stable: %+v", s)
	}
	if e.State != "Empty" || len(e.Members) != 0 || e.ErrorCode != 0 {
		t.Fatalf("empty: %+v", e)
	}
	if m.State != "Dead" || m.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("missing (v6): %+v", m)
	}
	req.Version = 5
	req.Groups = []string{g + "-missing"}
	if m := c.DescribeGroups(testCtx(t), req).Groups[0]; m.State != "Dead" || m.ErrorCode != 0 {
		t.Fatalf("missing (v5): %+v", m)
	}
}

func TestDeleteGroups(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	a.sync(map[string][]byte{a.id: nil})
	if code := a.commit(5); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	del := func(names ...string) []int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 2
		req.Groups = names
		var codes []int16
		for _, r := range c.DeleteGroups(testCtx(t), req).Groups {
			codes = append(codes, r.ErrorCode)
		}
		return codes
	}
	if got := del(g, g+"-missing", ""); !slices.Equal(got, []int16{kerr.NonEmptyGroup.Code, kerr.GroupIDNotFound.Code, kerr.InvalidGroupID.Code}) {
		t.Fatalf("delete codes %v", got)
	}
	if code := a.leave(); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if got := del(g); got[0] != 0 {
		t.Fatalf("delete of the emptied group: %v", kerr.ErrorForCode(got[0]))
	}
	if off, _ := fetchOne(t, c, g, "t1", 0); off != -1 {
		t.Fatalf("offset after delete: %d", off)
	}
	if stored, err := store.FetchOffsets(testCtx(t), g); err != nil || len(stored) != 0 {
		t.Fatalf("etcd after delete: %v, %v", stored, err)
	}
	if d := describe(t, c, g); d.State != "Dead" {
		t.Fatalf("describe after delete: %+v", d)
	}
	if got := del(g); got[0] != kerr.GroupIDNotFound.Code {
		t.Fatalf("second delete: %v", kerr.ErrorForCode(got[0]))
	}
	// The name is free again.
	a.id = ""
	a.join()
}

func TestOffsetDelete(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	for _, tp := range []metadata.TP{{Topic: "t1", Partition: 0}, {Topic: "t2", Partition: 0}, {Topic: "t2", Partition: 1}} {
		if code := commitOne(t, c, g, "", -1, 9, tp.Topic, tp.Partition, 1); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	a := newTestMember(t, c, g, "a") // subscribes to t1
	a.join()
	a.sync(map[string][]byte{a.id: nil})
	offDel := func(topic string, parts ...int32) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = g
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		for _, p := range parts {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
		}
		req.Topics = []kmsg.OffsetDeleteRequestTopic{rt}
		return c.OffsetDelete(testCtx(t), req)
	}
	if r := offDel("t1", 0); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("delete subscribed: %+v", r)
	}
	if r := offDel("t2", 0); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete unsubscribed: %+v", r)
	}
	if r := offDel("nope", 0); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete unknown topic: %+v", r)
	}
	if off, _ := fetchOne(t, c, g, "t2", 0); off != -1 {
		t.Fatalf("t2/0 after delete: %d", off)
	}
	a.leave()
	if r := offDel("t1", 0); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete after the group emptied: %+v", r)
	}
	stored, err := store.FetchOffsets(testCtx(t), g)
	if err != nil || len(stored) != 1 || stored[metadata.TP{Topic: "t2", Partition: 1}].Offset != 1 {
		t.Fatalf("etcd after deletes: %v, %v", stored, err)
	}
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = g + "-missing"
	if r := c.OffsetDelete(testCtx(t), req); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestFindCoordinator(t *testing.T) {
	c := newCoord(t, nil)
	tests := []struct {
		version  int16
		keyType  int8
		wantCode int16
	}{
		{0, 1, 0}, // v0 has no key type: always a group
		{1, 0, 0},
		{3, 0, 0},
		{2, 1, kerr.InvalidRequest.Code},
		{3, 2, kerr.InvalidRequest.Code},
	}
	for _, tt := range tests {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = tt.version
		req.CoordinatorKey = "g"
		req.CoordinatorType = tt.keyType
		resp := c.FindCoordinator(req)
		if resp.ErrorCode != tt.wantCode {
			t.Fatalf("v%d type %d: %v", tt.version, tt.keyType, kerr.ErrorForCode(resp.ErrorCode))
		}
		if tt.wantCode == 0 && (resp.NodeID != 7 || resp.Host != "127.0.0.1" || resp.Port != 9092) {
			t.Fatalf("v%d: %+v", tt.version, resp)
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 4
	req.CoordinatorKeys = []string{"a", "b"}
	resp := c.FindCoordinator(req)
	if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "b" || resp.Coordinators[1].NodeID != 7 || resp.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("v4: %+v", resp)
	}
}

// failingStore injects store failures into a real Store.
type failingStore struct {
	*metadata.Store
	fail bool
}

var errInjected = errors.New("injected failure")

func (f *failingStore) CommitOffsets(ctx context.Context, group string, o map[metadata.TP]metadata.CommittedOffset) error {
	if f.fail {
		return errInjected
	}
	return f.Store.CommitOffsets(ctx, group, o)
}

func (f *failingStore) FetchOffsets(ctx context.Context, group string) (map[metadata.TP]metadata.CommittedOffset, error) {
	if f.fail {
		return nil, errInjected
	}
	return f.Store.FetchOffsets(ctx, group)
}

// TestStoreFailures: a failing store turns into the retriable
// COORDINATOR_NOT_AVAILABLE and leaves no half-made state behind.
func TestStoreFailures(t *testing.T) {
	fs := &failingStore{Store: store}
	c, err := New(Config{MinSessionTimeout: 10}, fs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g := groupName(t)
	fs.fail = true
	if code := commitOne(t, c, g, "", -1, 9, "t1", 0, 1); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit with failing load = %v", kerr.ErrorForCode(code))
	}
	if _, code := fetchOne(t, c, g, "t1", 0); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("fetch with failing store = %v", kerr.ErrorForCode(code))
	}
	fs.fail = false
	if code := commitOne(t, c, g, "", -1, 9, "t1", 0, 1); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	fs.fail = true // loaded now: the write itself fails
	if code := commitOne(t, c, g, "", -1, 9, "t1", 0, 2); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit with failing write = %v", kerr.ErrorForCode(code))
	}
	fs.fail = false
	if off, _ := fetchOne(t, c, g, "t1", 0); off != 1 {
		t.Fatalf("a failed commit changed the cache: %d", off)
	}
}
