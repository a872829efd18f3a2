package group

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/strata-io/strata/metadata"
)

// store is a real metadata.Store on an embedded etcd, shared by the tests;
// each test uses its own group names. It holds topics t1 (6 partitions)
// and t2 (3).
var store *metadata.Store

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strata-group-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: dir}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	store, err = metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints(), Cluster: "grouptest"}, nil, nil)
	if err != nil {
		e.Close()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for name, n := range map[string]int32{"t1": 6, "t2": 3} {
		if _, err := store.CreateTopic(ctx, name, n, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	store.Close()
	e.Close()
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
			goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9._-]`)

// groupName is a group id unique to the test.
func groupName(t *testing.T) string { return nonName.ReplaceAllString(t.Name(), "_") }

// newCoord returns a Coordinator on the shared store with test-friendly
// session bounds, closed at the end of the test.
func newCoord(t *testing.T, mod func(*Config)) *Coordinator {
	t.Helper()
	cfg := Config{NodeID: 7, Host: "127.0.0.1", Port: 9092, MinSessionTimeout: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumerMeta is consumer-protocol member metadata subscribing to topics.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// protos builds join protocols named names, each subscribing to t1.
func protos(names ...string) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(names))
	for i, n := range names {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: n, Metadata: consumerMeta("t1")}
	}
	return out
}

// tmember is a test client of one group: it remembers its member id and
// generation the way a real consumer does.
type tmember struct {
	t         *testing.T
	c         *Coordinator
	group     string
	clientID  string
	id        string
	gen       int32
	instance  *string
	version   int16 // JoinGroup version; the other requests use their newest
	session   time.Duration
	rebalance time.Duration
	protocols []kmsg.JoinGroupRequestProtocol
}

func newTestMember(t *testing.T, c *Coordinator, group, clientID string) *tmember {
	return &tmember{t: t, c: c, group: group, clientID: clientID, gen: -1, version: 9,
		session: 10 * time.Second, rebalance: 10 * time.Second, protocols: protos("range")}
}

func (m *tmember) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = m.version
	req.Group = m.group
	req.MemberID = m.id
	req.InstanceID = m.instance
	req.SessionTimeoutMillis = int32(m.session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(m.rebalance / time.Millisecond)
	req.ProtocolType = "consumer"
	req.Protocols = m.protocols
	return req
}

// startJoin sends a JoinGroup in the background. A member without an id
// that is told MEMBER_ID_REQUIRED joins again with the id it got, as every
// client does, before the answer is delivered.
func (m *tmember) startJoin(ctx context.Context) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	req := m.joinRequest()
	cl := Client{ID: m.clientID, Host: "/127.0.0.1"}
	go func() {
		resp := m.c.Join(ctx, cl, req)
		if resp != nil && resp.ErrorCode == kerr.MemberIDRequired.Code {
			req.MemberID = resp.MemberID
			resp = m.c.Join(ctx, cl, req)
		}
		ch <- resp
	}()
	return ch
}

// joined waits for a join answer, checks it succeeded and records the id
// and generation.
func (m *tmember) joined(ch <-chan *kmsg.JoinGroupResponse) *kmsg.JoinGroupResponse {
	m.t.Helper()
	resp := recv(m.t, ch)
	if resp == nil || resp.ErrorCode != 0 {
		m.t.Fatalf("%s: join failed: %+v", m.clientID, resp)
	}
	m.id, m.gen = resp.MemberID, resp.Generation
	return resp
}

// join joins and waits for the answer.
func (m *tmember) join() *kmsg.JoinGroupResponse {
	m.t.Helper()
	return m.joined(m.startJoin(testCtx(m.t)))
}

func (m *tmember) syncRequest(assign map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = m.group
	req.MemberID = m.id
	req.Generation = m.gen
	req.InstanceID = m.instance
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return req
}

func (m *tmember) startSync(assign map[string][]byte) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	req := m.syncRequest(assign)
	ctx := testCtx(m.t)
	go func() { ch <- m.c.Sync(ctx, req) }()
	return ch
}

// sync sends a SyncGroup and waits for the answer.
func (m *tmember) sync(assign map[string][]byte) *kmsg.SyncGroupResponse {
	m.t.Helper()
	return recv(m.t, m.startSync(assign))
}

func (m *tmember) heartbeat() int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = m.group
	req.MemberID = m.id
	req.Generation = m.gen
	req.InstanceID = m.instance
	return m.c.Heartbeat(req).ErrorCode
}

func (m *tmember) leave() int16 {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = m.group
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m.id, InstanceID: m.instance}}
	resp := m.c.Leave(req)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Members[0].ErrorCode
}

// commit commits offset for t1/0 as this member and returns the
// partition's error code.
func (m *tmember) commit(offset int64) int16 {
	m.t.Helper()
	return commitOne(m.t, m.c, m.group, m.id, m.gen, 9, "t1", 0, offset)
}

func commitOne(t *testing.T, c *Coordinator, group, memberID string, gen int32, version int16, topic string, part int32, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group = group
	req.MemberID = memberID
	req.Generation = gen
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = part
	p.Offset = offset
	p.LeaderEpoch = 3
	p.Metadata = kmsg.StringPtr("meta")
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{p}}}
	resp := c.OffsetCommit(testCtx(t), req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("commit response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchOne returns the committed offset of topic/part (v5, one group).
func fetchOne(t *testing.T, c *Coordinator, group, topic string, part int32) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 5
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{part}}}
	resp := c.OffsetFetch(testCtx(t), req)
	if resp.ErrorCode != 0 {
		return 0, resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].Offset, 0
}

func describe(t *testing.T, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return c.DescribeGroups(testCtx(t), req).Groups[0]
}

// recv waits for a value on ch; a test that waits longer than this has
// hung.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for an answer")
		panic("unreachable")
	}
}

// pendingFor checks that nothing arrives on ch for d: the request is
// blocked, as it should be while the group waits for others.
func pendingFor[T any](t *testing.T, ch <-chan T, d time.Duration) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("answered early: %+v", v)
	case <-time.After(d):
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func memberIDs(ms []kmsg.JoinGroupResponseMember) map[string]bool {
	out := make(map[string]bool)
	for _, m := range ms {
		out[m.MemberID] = true
	}
	return out
}
