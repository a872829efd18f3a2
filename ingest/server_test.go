package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

// rawHeader is a request header as a client writes it, without the size.
func rawHeader(key, version int16, corr int32, flexible bool) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	if flexible {
		b = append(b, 0) // no header tags
	}
	return b
}

func sized(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// TestApiVersionsDowngrade sends ApiVersions at versions we do not serve, as
// raw bytes, and checks the exact answer KIP-511 asks for: a v0 body with
// UNSUPPORTED_VERSION and key 18's range, and no header tags.
func TestApiVersionsDowngrade(t *testing.T) {
	n := startNode(t, nil)
	want := []byte{
		0, 0, 0, 16, // size
		0, 0, 0, 7, // correlation id, then no tag byte
		0, 35, // UNSUPPORTED_VERSION
		0, 0, 0, 1, // one api key
		0, 18, 0, 0, 0, 4, // ApiVersions 0..4
	}
	tests := []struct {
		name string
		req  []byte
	}{
		{"v99 flexible body", append(rawHeader(18, 99, 7, true), 1, 1, 0)},
		{"v5 with cluster id", append(rawHeader(18, 5, 7, true), 1, 1, 0, 0, 0, 0, 0, 0)},
		{"v1000 without header tags", rawHeader(18, 1000, 7, false)},
		{"v-1", rawHeader(18, -1, 7, false)},
		{"v99 body we cannot parse", append(rawHeader(18, 99, 7, true), 0xff, 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := n.dial()
			c.writeRaw(sized(tt.req))
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c.br, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("response\n got % x\nwant % x", got, want)
			}
			// The connection stays usable: the client retries at v3.
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 3
			req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1.0"
			resp := roundTrip[*kmsg.ApiVersionsResponse](c, req)
			if resp.ErrorCode != 0 || len(resp.ApiKeys) < 7 {
				t.Fatalf("retry at v3: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
			}
		})
	}
}

// TestApiVersionsServed checks every served ApiVersions version lists
// exactly our table, and that v3+ responses parse with no header tags
// (roundTrip reads them that way).
func TestApiVersionsServed(t *testing.T) {
	n := startNode(t, nil)
	c := n.dial()
	want := advertisedKeys()
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "librdkafka", "2.0.2"
		resp := roundTrip[*kmsg.ApiVersionsResponse](c, req)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		if len(resp.ApiKeys) != len(want) {
			t.Fatalf("v%d: %d keys, want %d", v, len(resp.ApiKeys), len(want))
		}
		for i, k := range resp.ApiKeys {
			if k.ApiKey != want[i].ApiKey || k.MinVersion != want[i].MinVersion || k.MaxVersion != want[i].MaxVersion {
				t.Fatalf("v%d: key %d = %+v, want %+v", v, i, k, want[i])
			}
		}
	}
	// librdkafka's feature checks: Produce from v0, MsgVer2 (Produce 3,
	// Fetch 4), zstd (Produce 7, Fetch 10).
	has := func(key, v int16) bool {
		for _, k := range want {
			if k.ApiKey == key {
				return v >= k.MinVersion && v <= k.MaxVersion
			}
		}
		return false
	}
	for _, kv := range [][2]int16{{0, 0}, {0, 3}, {0, 7}, {1, 4}, {1, 10}} {
		if !has(kv[0], kv[1]) {
			t.Errorf("%s v%d not advertised", kmsg.NameForKey(kv[0]), kv[1])
		}
	}

	bad := kmsg.NewPtrApiVersionsRequest()
	bad.Version = 3
	bad.ClientSoftwareName, bad.ClientSoftwareVersion = "-bad name", "1"
	if resp := roundTrip[*kmsg.ApiVersionsResponse](c, bad); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("invalid software name: error %d, want INVALID_REQUEST", resp.ErrorCode)
	}
}

// TestConnectionClosedOnBadInput covers what closes a connection: after the
// responses owed for earlier requests are written.
func TestConnectionClosedOnBadInput(t *testing.T) {
	n := startNode(t, func(c *Config) { c.MaxRequestBytes = 1024 })
	tests := []struct {
		name string
		raw  []byte
	}{
		{"frame above MaxRequestBytes", append(binary.BigEndian.AppendUint32(nil, 2000), make([]byte, 2000)...)},
		{"negative frame size", []byte{0xff, 0xff, 0xff, 0xfe}},
		{"unknown api key", sized(rawHeader(999, 0, 9, false))},
		{"produce v2 (advertised only)", sized(append(rawHeader(0, 2, 9, false), 0, 1, 0, 0, 0, 0, 0, 0, 0, 0))},
		{"fetch v3", sized(rawHeader(1, 3, 9, false))},
		{"truncated metadata body", sized(append(rawHeader(3, 1, 9, false), 0, 0, 0, 3))},
		{"short header", sized([]byte{0, 3, 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := n.dial()
			// A request before the bad one is still answered.
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 1
			req.Topics = []kmsg.MetadataRequestTopic{}
			corr := c.send(req)
			c.writeRaw(tt.raw)
			c.recv(corr, req.ResponseKind())
			c.expectClosed()
		})
	}
}

// TestAcksZeroNoResponse: an acks=0 produce is never answered, the next
// request's response is the next thing on the wire, and the records were
// appended all the same.
func TestAcksZeroNoResponse(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("fire", 1)
	c := n.dial()
	c.send(produceReq(7, 0, "fire", 0, batch(t, "a", 3, kbatch.BuildOptions{})))
	c.send(produceReq(7, 0, "nope", 0, batch(t, "b", 1, kbatch.BuildOptions{}))) // fails: logged, not answered
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 4
	md.Topics = []kmsg.MetadataRequestTopic{}
	corr := c.send(md)
	c.recv(corr, md.ResponseKind()) // fails if any produce was answered first

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "fire"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp}
	lo.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	waitFor(t, func() bool {
		resp := roundTrip[*kmsg.ListOffsetsResponse](c, lo)
		return resp.Topics[0].Partitions[0].Offset == 3
	})
}

// TestPipelinedProduce sends several acks=all requests without waiting:
// they are answered in order, with dense offsets, and all wait on the same
// flushes rather than one flush each.
func TestPipelinedProduce(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("pipe", 1)
	c := n.dial()
	const k = 10
	corrs := make([]int32, k)
	for i := range corrs {
		corrs[i] = c.send(produceReq(9, -1, "pipe", 0, batch(t, "p", 2, kbatch.BuildOptions{})))
	}
	for i, corr := range corrs {
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 9
		c.recv(corr, resp)
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || sp.BaseOffset != int64(2*i) {
			t.Fatalf("request %d: error %d, base offset %d; want 0, %d", i, sp.ErrorCode, sp.BaseOffset, 2*i)
		}
	}
}

// TestCloseCutsLongPoll: Close answers a fetch that is long-polling at once
// (rather than after MaxWait) and returns; the cleanup checks Serve returned
// nil and that no goroutine is left (TestMain).
func TestCloseCutsLongPoll(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("quiet", 1)
	c := n.dial()
	corr := c.send(fetchReq(12, "quiet", tp.ID, 0, 0, 60_000, 1))
	// Wait until the fetch was read: the reader then holds a second token
	// for the next read.
	waitFor(t, func() bool { return inflight(n.srv) == 2 })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	c.recv(corr, resp)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with a long poll parked", d)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("fetch answered %+v", resp)
	}
	c.expectClosed()
}

// inflight counts the requests read but not yet answered on s.
func inflight(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for c := range s.conns {
		total += len(c.inflight)
	}
	return total
}

// TestMetrics checks the server's series move with traffic.
func TestMetrics(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("metered", 1)
	c := n.dial()
	roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "metered", 0, batch(t, "m", 4, kbatch.BuildOptions{})))
	fetched := roundTrip[*kmsg.FetchResponse](c, fetchReq(12, "metered", tp.ID, 0, 0, 100, 1))
	fetchedBytes := len(fetched.Topics[0].Partitions[0].RecordBatches)

	values := func() map[string]float64 {
		mfs, err := n.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += "/" + l.GetValue()
				}
				switch {
				case m.Counter != nil:
					out[name] = m.Counter.GetValue()
				case m.Gauge != nil:
					out[name] = m.Gauge.GetValue()
				case m.Histogram != nil:
					out[name] = float64(m.Histogram.GetSampleCount())
				}
			}
		}
		return out
	}
	// The fetch's duration is observed after its response is written, so
	// poll rather than race it.
	waitFor(t, func() bool { return values()["strata_kafka_request_duration_seconds/Fetch"] == 1 })
	v := values()
	for name, want := range map[string]float64{
		"strata_kafka_requests_total/Produce":           1,
		"strata_kafka_requests_total/Fetch":             1,
		"strata_kafka_request_duration_seconds/Produce": 1,
		"strata_kafka_connections":                      1,
		"strata_produce_records_total":                  4,
		"strata_fetch_bytes_total":                      float64(fetchedBytes),
	} {
		if v[name] != want {
			t.Errorf("%s = %v, want %v", name, v[name], want)
		}
	}
	if v["strata_kafka_bytes_in_total"] <= 0 || v["strata_kafka_bytes_out_total"] <= float64(fetchedBytes) {
		t.Errorf("bytes in %v, out %v", v["strata_kafka_bytes_in_total"], v["strata_kafka_bytes_out_total"])
	}
}
