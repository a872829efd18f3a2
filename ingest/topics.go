package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier"
)

// errInvalidTopic is a topic name Kafka would refuse (INVALID_TOPIC_EXCEPTION).
var errInvalidTopic = errors.New("ingest: invalid topic name")

// maxTopicNameLen is Kafka's limit (Topic.MAX_NAME_LENGTH): a partition
// directory name must fit a file name with room for the partition suffix.
const maxTopicNameLen = 249

// validateTopicName applies Kafka's rules (org.apache.kafka.common.internals.Topic).
func validateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: topic name is empty", errInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name cannot be %q", errInvalidTopic, name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("%w: topic name is %d characters, the limit is %d", errInvalidTopic, len(name), maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", errInvalidTopic, name)
		}
	}
	return nil
}

// collision returns an existing topic, the internal one included, whose
// name differs from name only in '.' versus '_', which Kafka forbids because
// both map to the same metric names.
func (s *Server) collision(name string) (string, bool) {
	if !strings.ContainsAny(name, "._") {
		return "", false
	}
	norm := strings.ReplaceAll(name, ".", "_")
	if name != consumerOffsetsTopic && strings.ReplaceAll(consumerOffsetsTopic, ".", "_") == norm {
		return consumerOffsetsTopic, true
	}
	for _, t := range s.meta.Topics() {
		if t.Name != name && strings.ReplaceAll(t.Name, ".", "_") == norm {
			return t.Name, true
		}
	}
	return "", false
}

// opened is the result of opening one partition.
type opened struct {
	p   *tier.Partition
	err error
}

// openPartitions opens the given partitions of topic through the tier,
// several at once (tier.OpenAll): the first open of a partition is an etcd
// transaction, and a request for a fresh 100-partition topic should not take
// 100 round trips in a row.
func (s *Server) openPartitions(ctx context.Context, topic string, parts []int32) []opened {
	if len(parts) > 1 {
		tps := make([]metadata.TP, len(parts))
		for i, part := range parts {
			tps[i] = metadata.TP{Topic: topic, Partition: part}
		}
		s.tier.OpenAll(ctx, tps)
	}
	out := make([]opened, len(parts))
	for i, part := range parts {
		p, err := s.tier.Partition(ctx, metadata.TP{Topic: topic, Partition: part})
		out[i] = opened{p, err}
	}
	return out
}
