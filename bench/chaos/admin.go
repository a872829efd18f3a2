package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The admin requests the checker needs, written with kmsg on a kgo client
// (kgo routes each to the right broker: the partition leaders, the group
// coordinator or the controller). kadm wraps the same requests but is a
// module of its own that this repository does not require.

// createTopic creates topic with parts partitions and configs; an
// existing topic is fine.
func createTopic(ctx context.Context, cl *kgo.Client, topic string, parts int32, configs map[string]string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = parts
	rt.ReplicationFactor = 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// partitionCount asks any node how many partitions topic has (-1: unknown).
func partitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == topic {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return -1, err
			}
			return int32(len(t.Partitions)), nil
		}
	}
	return -1, fmt.Errorf("topic %s not in metadata", topic)
}

// createPartitions raises topic's partition count to total.
func createPartitions(ctx context.Context, cl *kgo.Client, topic string, total int32) error {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic = topic
	rt.Count = total
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			msg := ""
			if t.ErrorMessage != nil {
				msg = ": " + *t.ErrorMessage
			}
			return fmt.Errorf("%w%s", err, msg)
		}
	}
	return nil
}

// listOffsets returns the log start (at = -2) or high watermark (at = -1)
// of each of parts partitions of topic. Partitions whose answer is an error
// are missing from the map; err is the first such error.
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, parts int32, at int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < parts; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = at
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	out := map[int32]int64{}
	var first error
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			if first == nil {
				first = sh.Err
			}
			continue
		}
		resp := sh.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					if first == nil {
						first = fmt.Errorf("partition %d: %w", p.Partition, err)
					}
					continue
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	if first == nil && int32(len(out)) < parts {
		first = errors.New("list offsets: partitions missing from the answer")
	}
	return out, first
}

// listOffsetsRetry retries listOffsets until every partition answers or
// limit passes.
func listOffsetsRetry(ctx context.Context, cl *kgo.Client, topic string, parts int32, at int64, limit time.Duration) (map[int32]int64, error) {
	deadline := time.Now().Add(limit)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := listOffsets(rctx, cl, topic, parts, at)
		cancel()
		if err == nil {
			return out, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond): // polling a condition
		}
	}
}

// deleteRecords moves partition p of topic's log start to off and returns
// the new low watermark.
func deleteRecords(ctx context.Context, cl *kgo.Client, topic string, p int32, off int64) (int64, error) {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition = p
	rp.Offset = off
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			return -1, sh.Err
		}
		resp := sh.Resp.(*kmsg.DeleteRecordsResponse)
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				if rp.Partition != p {
					continue
				}
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return -1, err
				}
				return rp.LowWatermark, nil
			}
		}
	}
	return -1, errors.New("delete records: partition missing from the answer")
}

// committedOffsets fetches group's committed offsets from its coordinator:
// topic → partition → offset (only partitions with a commit), and the node
// that answered.
func committedOffsets(ctx context.Context, cl *kgo.Client, group string) (map[string]map[int32]int64, int32, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg)
	shards := cl.RequestSharded(ctx, req)
	if len(shards) != 1 {
		return nil, -1, fmt.Errorf("offset fetch: %d answers", len(shards))
	}
	node := shards[0].Meta.NodeID
	if shards[0].Err != nil {
		return nil, node, shards[0].Err
	}
	offs, err := parseOffsetFetch(shards[0].Resp.(*kmsg.OffsetFetchResponse))
	return offs, node, err
}

func parseOffsetFetch(resp *kmsg.OffsetFetchResponse) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	add := func(topic string, p int32, off int64, code int16) {
		if code != 0 || off < 0 {
			return
		}
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][p] = off
	}
	if len(resp.Groups) > 0 {
		for _, g := range resp.Groups {
			if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
				return nil, err
			}
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					add(t.Topic, p.Partition, p.Offset, p.ErrorCode)
				}
			}
		}
		return out, nil
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			add(t.Topic, p.Partition, p.Offset, p.ErrorCode)
		}
	}
	return out, nil
}
