package e2e

import (
	"encoding/json"
	"strconv"
	"testing"
)

// kafkajsRec is a record as produce_fetch.js reports it.
type kafkajsRec struct {
	Partition int32       `json:"partition"`
	Offset    string      `json:"offset"` // kafkajs keeps int64 offsets as strings
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][2]string `json:"headers"`
}

// kafkajsResult is produce_fetch.js's output.
type kafkajsResult struct {
	Version  string       `json:"version"`
	Produced []kafkajsRec `json:"produced"`
	Offsets  []struct {
		Partition int32  `json:"partition"`
		Low       string `json:"low"`
		High      string `json:"high"`
	} `json:"offsets"`
	Fetched []kafkajsRec `json:"fetched"`
}

// TestKafkajs produces with kafkajs 2.2.4 (acks=-1, no compression and gzip;
// kafkajs has no built-in zstd and snappy/lz4 need plugins), asks kafkajs's
// admin for the offsets, fetches everything back with kafkajs's own Fetch
// decoding, and reads it once more with franz-go: the same records, once
// each, in order, for both readers.
//
// kafkajs consumes only through consumer groups; those are covered by
// TestGroupKafkajs. This test reads without a group (produce_fetch.js says
// how) so that a fetch or decoding fault shows up here on its own, not
// tangled with group rebalancing.
func TestKafkajs(t *testing.T) {
	nodeBin := requireTool(t, "node")
	env := []string{"NODE_PATH=" + nodePath(t), "KAFKAJS_NO_PARTITIONER_WARNING=1"}
	const partitions, n = 4, 2000
	addr := startBroker(t, withPartitions(partitions))

	for _, codec := range []string{"none", "gzip"} {
		t.Run(codec, func(t *testing.T) {
			ctx := testContext(t)
			topic := "kafkajs-" + codec
			cfg, _ := json.Marshal(map[string]any{
				"broker": addr, "topic": topic, "count": n, "partitions": partitions,
				"compression": codec, "timeoutMs": int(testTimeout.Milliseconds()),
			})
			out, _ := runCmd(t, ctx, nil, env, nodeBin, "testdata/kafkajs/produce_fetch.js", string(cfg))
			var res kafkajsResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("produce_fetch.js output is not JSON (%v):\n%s", err, tail(out))
			}
			if res.Version != "2.2.4" {
				t.Fatalf("kafkajs version %q, want 2.2.4: %s", res.Version, setupHint)
			}
			if len(res.Produced) != n {
				t.Fatalf("kafkajs acknowledged %d records, want %d", len(res.Produced), n)
			}
			produced := fromKafkajs(t, res.Produced)
			checkDense(t, produced)

			perPart := map[int32]int64{}
			for _, r := range produced {
				perPart[r.Partition]++
			}
			if len(res.Offsets) != partitions {
				t.Errorf("kafkajs admin reports %d partitions, want %d", len(res.Offsets), partitions)
			}
			for _, o := range res.Offsets {
				if o.Low != "0" || o.High != strconv.FormatInt(perPart[o.Partition], 10) {
					t.Errorf("kafkajs admin offsets of partition %d: low %s high %s, want 0 and %d",
						o.Partition, o.Low, o.High, perPart[o.Partition])
				}
			}

			t.Run("kafkajs-fetch", func(t *testing.T) {
				checkSame(t, produced, fromKafkajs(t, res.Fetched), true)
			})
			t.Run("franz-go-consume", func(t *testing.T) {
				checkSame(t, produced, consumeN(t, ctx, addr, topic, n), true)
			})
		})
	}
}

// fromKafkajs converts produce_fetch.js records.
func fromKafkajs(t *testing.T, rs []kafkajsRec) []rec {
	t.Helper()
	out := make([]rec, len(rs))
	for i, r := range rs {
		off, err := strconv.ParseInt(r.Offset, 10, 64)
		if err != nil {
			t.Fatalf("kafkajs record %d: offset %q: %v", i, r.Offset, err)
		}
		out[i] = rec{Partition: r.Partition, Offset: off, Key: deref(r.Key), Value: deref(r.Value)}
		for _, h := range r.Headers {
			out[i].Headers = append(out[i].Headers, hdr{h[0], h[1]})
		}
	}
	return out
}

// deref turns a null key or value into "<nil>", which no test record holds,
// so a null where a string was produced shows up as a mismatch.
func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
