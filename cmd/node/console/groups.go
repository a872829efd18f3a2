package console

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group is a consumer group as DescribeGroups, OffsetFetch and ListOffsets
// show it.
type Group struct {
	Name string `json:"name"`
	// Type is "classic", "consumer" (KIP-848) or "share" (KIP-932).
	Type         string           `json:"type"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	Members      []Member         `json:"members"`
	Partitions   []GroupPartition `json:"partitions"`
	// Lag is the sum of the partitions' lag (those with a commit).
	Lag int64 `json:"lag"`
}

// Member is one member of a group.
type Member struct {
	ID         string   `json:"id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Assigned   []string `json:"assigned"` // "topic/partition"
}

// GroupPartition is one partition the group committed to or is assigned.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the committed offset, -1 when the group has none.
	Committed int64 `json:"committed"`
	// HighWatermark is the partition's high watermark (-1 unknown).
	HighWatermark int64 `json:"high_watermark"`
	// Lag is HighWatermark - Committed (never negative), -1 with no commit.
	Lag    int64  `json:"lag"`
	Member string `json:"member,omitempty"`
	// Share groups: the share partition's start offset (the oldest
	// record not yet acknowledged), the records in flight (delivered or
	// deliverable, not yet acknowledged or archived, between the start
	// offset and the last delivered) and the age of the record at the
	// start offset, in milliseconds (-1 when nothing waits).
	StartOffset     int64 `json:"start_offset,omitempty"`
	InFlight        int64 `json:"in_flight,omitempty"`
	OldestUnackedMs int64 `json:"oldest_unacked_ms,omitempty"`
}

// ErrGroupNotFound: the group has no members and no committed offsets.
var ErrGroupNotFound = errors.New("group not found")

// DescribeGroup describes a group through the client's cluster: its
// members and their assignments, and per partition the committed offset,
// the high watermark and the lag.
func DescribeGroup(ctx context.Context, cl *kgo.Client, name string) (Group, error) {
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{name}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return Group{}, err
	}
	if len(dresp.Groups) != 1 {
		return Group{}, fmt.Errorf("no answer for group %s", name)
	}
	g := dresp.Groups[0]
	if g.ErrorCode == kerr.GroupIDNotFound.Code || (g.ErrorCode == 0 && g.State == "Dead") {
		if sg, ok, err := describeShareGroup(ctx, cl, name); err != nil || ok {
			return sg, err
		}
	}
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return Group{}, err
	}
	out := Group{Name: name, Type: "classic", State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol}
	creq := kmsg.NewPtrConsumerGroupDescribeRequest()
	creq.Groups = []string{name}
	if cresp, err := creq.RequestWith(ctx, cl); err == nil && len(cresp.Groups) == 1 && cresp.Groups[0].ErrorCode == 0 {
		out.Type = "consumer"
	}

	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Group = name
	freq.Topics = nil // all committed
	fresp, err := freq.RequestWith(ctx, cl)
	if err != nil {
		return Group{}, fmt.Errorf("offsets: %w", err)
	}
	if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil {
		return Group{}, fmt.Errorf("offsets: %w", err)
	}
	type tp struct {
		topic string
		part  int32
	}
	parts := map[tp]*GroupPartition{}
	get := func(k tp) *GroupPartition {
		p := parts[k]
		if p == nil {
			p = &GroupPartition{Topic: k.topic, Partition: k.part, Committed: -1, HighWatermark: -1, Lag: -1}
			parts[k] = p
		}
		return p
	}
	for _, t := range fresp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Offset >= 0 {
				get(tp{t.Topic, p.Partition}).Committed = p.Offset
			}
		}
	}
	for _, m := range g.Members {
		mb := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			mb.InstanceID = *m.InstanceID
		}
		var a kmsg.ConsumerMemberAssignment
		if g.ProtocolType == "consumer" && a.ReadFrom(m.MemberAssignment) == nil {
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					get(tp{t.Topic, p}).Member = m.MemberID
					mb.Assigned = append(mb.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
				}
			}
		}
		out.Members = append(out.Members, mb)
	}
	if len(parts) == 0 && len(g.Members) == 0 && g.State == "Dead" {
		return Group{}, ErrGroupNotFound
	}
	if len(parts) > 0 {
		lreq := kmsg.NewPtrListOffsetsRequest()
		lreq.ReplicaID = -1
		byTopic := map[string]int{}
		for k := range parts {
			i, ok := byTopic[k.topic]
			if !ok {
				i = len(lreq.Topics)
				byTopic[k.topic] = i
				t := kmsg.NewListOffsetsRequestTopic()
				t.Topic = k.topic
				lreq.Topics = append(lreq.Topics, t)
			}
			p := kmsg.NewListOffsetsRequestTopicPartition()
			p.Partition = k.part
			p.Timestamp = -1 // latest: the high watermark
			p.CurrentLeaderEpoch = -1
			lreq.Topics[i].Partitions = append(lreq.Topics[i].Partitions, p)
		}
		// The client sends each partition to its leader.
		lresp, err := lreq.RequestWith(ctx, cl)
		if err != nil {
			return Group{}, fmt.Errorf("high watermarks: %w", err)
		}
		for _, t := range lresp.Topics {
			for _, p := range t.Partitions {
				if gp := parts[tp{t.Topic, p.Partition}]; gp != nil && p.ErrorCode == 0 {
					gp.HighWatermark = p.Offset
				}
			}
		}
	}
	for _, p := range parts {
		if p.Committed >= 0 && p.HighWatermark >= 0 {
			p.Lag = max(p.HighWatermark-p.Committed, 0)
			out.Lag += p.Lag
		}
		out.Partitions = append(out.Partitions, *p)
	}
	sortPartitions(out.Partitions)
	return out, nil
}

// sortPartitions orders partitions by topic, then number.
func sortPartitions(ps []GroupPartition) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
}

// ResetTarget says where ResetOffsets moves a group's offsets.
type ResetTarget struct {
	// To is "earliest", "latest", "timestamp" (Value: Unix milliseconds;
	// the first offset at or after it, the high watermark if none) or
	// "offset" (Value: the offset, clamped to the log).
	To    string `json:"to"`
	Value int64  `json:"value"`
}

// ErrGroupNotEmpty: offsets are reset only while a group has no members.
var ErrGroupNotEmpty = errors.New("the group has members: stop its consumers first (offsets can be reset only while the group is empty)")

// ResetOffsets commits new offsets for the given partitions of an empty
// group (every partition of topic when partitions is empty) and returns
// them. The commit carries no generation, which the coordinator accepts only
// while the group is empty, so a consumer that joins meanwhile makes it
// fail rather than be overwritten.
func ResetOffsets(ctx context.Context, cl *kgo.Client, group, topic string, partitions []int32, target ResetTarget) (map[int32]int64, error) {
	var ts int64
	switch target.To {
	case "earliest":
		ts = -2
	case "latest":
		ts = -1
	case "timestamp":
		if target.Value < 0 {
			return nil, fmt.Errorf("timestamp %d is negative", target.Value)
		}
		ts = target.Value
	case "offset":
		if target.Value < 0 {
			return nil, fmt.Errorf("offset %d is negative", target.Value)
		}
	default:
		return nil, fmt.Errorf("reset to %q: want earliest, latest, timestamp or offset", target.To)
	}
	g, err := DescribeGroup(ctx, cl, group)
	if err != nil && !errors.Is(err, ErrGroupNotFound) {
		return nil, err
	}
	if len(g.Members) > 0 {
		return nil, ErrGroupNotEmpty
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = []kmsg.MetadataRequestTopic{mt}
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("no metadata for topic %s", topic)
	}
	if err := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	exists := map[int32]bool{}
	for _, p := range mresp.Topics[0].Partitions {
		exists[p.Partition] = true
	}
	if len(partitions) == 0 {
		for p := range exists {
			partitions = append(partitions, p)
		}
		sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	}
	for _, p := range partitions {
		if !exists[p] {
			return nil, fmt.Errorf("topic %s has no partition %d", topic, p)
		}
	}
	offsets := map[int32]int64{}
	// earliest, latest and timestamps come from ListOffsets; an explicit
	// offset is clamped between them.
	list := func(ts int64) (map[int32]int64, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = ts
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		out := map[int32]int64{}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("%s/%d: %w", topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
		return out, nil
	}
	if target.To == "offset" {
		lo, err := list(-2)
		if err != nil {
			return nil, err
		}
		hi, err := list(-1)
		if err != nil {
			return nil, err
		}
		for _, p := range partitions {
			offsets[p] = min(max(target.Value, lo[p]), hi[p])
		}
	} else {
		got, err := list(ts)
		if err != nil {
			return nil, err
		}
		var hi map[int32]int64
		for _, p := range partitions {
			o := got[p]
			if o < 0 { // no record at or after the timestamp: the end
				if hi == nil {
					if hi, err = list(-1); err != nil {
						return nil, err
					}
				}
				o = hi[p]
			}
			offsets[p] = o
		}
	}

	creq := kmsg.NewPtrOffsetCommitRequest()
	creq.Group = group
	creq.Generation = -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = topic
	for _, p := range partitions {
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition = p
		cp.Offset = offsets[p]
		cp.LeaderEpoch = -1
		ct.Partitions = append(ct.Partitions, cp)
	}
	creq.Topics = []kmsg.OffsetCommitRequestTopic{ct}
	cresp, err := creq.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	for _, t := range cresp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == kerr.UnknownMemberID.Code || p.ErrorCode == kerr.IllegalGeneration.Code || p.ErrorCode == kerr.RebalanceInProgress.Code {
				return nil, ErrGroupNotEmpty
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("commit %s/%d: %w", topic, p.Partition, err)
			}
		}
	}
	return offsets, nil
}
