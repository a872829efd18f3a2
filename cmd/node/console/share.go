package console

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeShareGroup describes a share group (KIP-932): its members and
// assignments (ShareGroupDescribe), and per partition it has state for the
// start offset and lag (DescribeShareGroupOffsets), the records in flight
// (ReadShareGroupState) and the age of the oldest record not yet
// acknowledged. ok is false when name is not a share group.
func describeShareGroup(ctx context.Context, cl *kgo.Client, name string) (Group, bool, error) {
	sreq := kmsg.NewPtrShareGroupDescribeRequest()
	sreq.GroupIDs = []string{name}
	sresp, err := sreq.RequestWith(ctx, cl)
	if err != nil || len(sresp.Groups) != 1 {
		return Group{}, false, nil
	}
	sg := sresp.Groups[0]
	if sg.ErrorCode != 0 {
		return Group{}, false, nil
	}
	out := Group{Name: name, Type: "share", State: sg.GroupState, ProtocolType: "share", Protocol: sg.Assignor}
	type tp struct {
		topic string
		part  int32
	}
	parts := map[tp]*GroupPartition{}
	get := func(k tp) *GroupPartition {
		p := parts[k]
		if p == nil {
			p = &GroupPartition{Topic: k.topic, Partition: k.part, Committed: -1, HighWatermark: -1, Lag: -1, StartOffset: -1, OldestUnackedMs: -1}
			parts[k] = p
		}
		return p
	}
	for _, m := range sg.Members {
		mb := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		for _, t := range m.Assignment.TopicPartitions {
			for _, p := range t.Partitions {
				gp := get(tp{t.Topic, p})
				if gp.Member == "" {
					gp.Member = m.MemberID
				} else {
					gp.Member += "," + m.MemberID
				}
				mb.Assigned = append(mb.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
			}
		}
		out.Members = append(out.Members, mb)
	}

	oreq := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	og := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	og.GroupID = name
	oreq.Groups = append(oreq.Groups, og)
	oresp, err := oreq.RequestWith(ctx, cl)
	if err != nil {
		return Group{}, true, fmt.Errorf("share offsets: %w", err)
	}
	ids := map[string][16]byte{}
	for _, g := range oresp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return Group{}, true, fmt.Errorf("share offsets: %w", err)
		}
		for _, t := range g.Topics {
			ids[t.Topic] = t.TopicID
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					continue
				}
				gp := get(tp{t.Topic, p.Partition})
				gp.StartOffset, gp.Lag = p.StartOffset, p.Lag
			}
		}
	}

	// In-flight records, from the stored state.
	rreq := kmsg.NewPtrReadShareGroupStateRequest()
	rreq.GroupID = name
	for topic, id := range ids {
		rt := kmsg.NewReadShareGroupStateRequestTopic()
		rt.TopicID = id
		for k := range parts {
			if k.topic == topic {
				rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
				rp.Partition = k.part
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		rreq.Topics = append(rreq.Topics, rt)
	}
	names := map[[16]byte]string{}
	for t, id := range ids {
		names[id] = t
	}
	if len(rreq.Topics) > 0 {
		if rresp, err := rreq.RequestWith(ctx, cl); err == nil {
			for _, t := range rresp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						continue
					}
					gp := get(tp{names[t.TopicID], p.Partition})
					for _, b := range p.StateBatches {
						if b.DeliveryState == 0 {
							gp.InFlight += b.LastOffset - b.FirstOffset + 1
						}
					}
				}
			}
		}
	}
	for _, p := range parts {
		if p.Lag > 0 && p.StartOffset >= 0 {
			if ts, ok := recordTime(ctx, cl, p.Topic, p.Partition, p.StartOffset); ok {
				p.OldestUnackedMs = max(time.Since(ts).Milliseconds(), 0)
			}
		}
		if p.Lag > 0 {
			out.Lag += p.Lag
		}
		out.Partitions = append(out.Partitions, *p)
	}
	sortPartitions(out.Partitions)
	return out, true, nil
}

// recordTime returns the timestamp of the first record at or after offset.
func recordTime(ctx context.Context, cl *kgo.Client, topic string, partition int32, offset int64) (time.Time, bool) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 0, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = partition, offset, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// Fetch goes to the partition's leader, which the client does not
	// find by itself for a raw request.
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil || len(mresp.Topics) != 1 {
		return time.Time{}, false
	}
	leader := int32(-1)
	for _, p := range mresp.Topics[0].Partitions {
		if p.Partition == partition {
			leader = p.Leader
		}
	}
	if leader < 0 {
		return time.Time{}, false
	}
	req.Topics[0].TopicID = mresp.Topics[0].TopicID // v13+ names topics by id
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return time.Time{}, false
	}
	raw := resp.Topics[0].Partitions[0].RecordBatches
	for len(raw) >= 61 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			return time.Time{}, false
		}
		if b.FirstOffset+int64(b.LastOffsetDelta) >= offset && b.Attributes&0x20 == 0 {
			return time.UnixMilli(b.FirstTimestamp), true
		}
		raw = raw[12+int(b.Length):]
	}
	return time.Time{}, false
}
