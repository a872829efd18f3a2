package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzCodecs produces with acks=all to a 6-partition topic once per
// batch codec and reads everything back: each record once, in order, intact,
// and the batches come back with the codec they were produced with (Strata
// stores producer bytes unchanged).
func TestFranzCodecs(t *testing.T) {
	const partitions = 6
	addr := startBroker(t, withPartitions(partitions))
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		attr  int16
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx := testContext(t)
			topic := "franz-codec-" + c.name
			prod := newClient(t, addr,
				kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerBatchCompression(c.codec),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerLinger(5*time.Millisecond),
			)
			acked := produceAll(t, ctx, prod, topic, testRecords(c.name, 3000, partitions))
			checkDense(t, acked)

			got := consumeN(t, ctx, addr, topic, len(acked))
			checkSame(t, acked, got, true)

			hw := highWatermarks(t, ctx, prod, topic, partitions)
			var total int64
			for _, h := range hw {
				total += h
			}
			if total != int64(len(acked)) {
				t.Errorf("high watermarks %v sum to %d, want %d", hw, total, len(acked))
			}
			if c.attr != 0 {
				checkStoredCodec(t, ctx, rawClient(t, addr), topic, c.attr)
			}
		})
	}
}

// checkStoredCodec fetches partition 0 raw and fails unless its first batch
// carries codec attr: compression must survive the trip through Strata.
func checkStoredCodec(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, attr int16) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.FetchOffset = 0
	fp.PartitionMaxBytes = 1 << 20
	fp.CurrentLeaderEpoch = -1
	fp.LogStartOffset = -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("raw fetch: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("raw fetch: want one topic with one partition, got %d topics", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("raw fetch: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	// Clients may send a batch uncompressed when compressing does not make
	// it smaller (librdkafka does, for a tiny first batch): the codec must
	// show on some stored batch, and each batch must be stored as sent.
	var codecs []int16
	for rest := p.RecordBatches; len(rest) > 0; {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(rest); err != nil {
			break // a fetch may end in a partial batch
		}
		codecs = append(codecs, b.Attributes&7)
		if b.Attributes&7 == attr {
			return
		}
		rest = rest[12+int(b.Length):]
	}
	t.Errorf("stored batch codecs = %v, want some batch with codec %d", codecs, attr)
}

// TestFranzAcksZero produces with acks=0 (no responses at all), closes the
// producer right after the last write and checks that all records arrive:
// the tail of an acks=0 stream must not be dropped when the connection
// closes.
func TestFranzAcksZero(t *testing.T) {
	const n = 5000
	addr := startBroker(t)
	ctx := testContext(t)
	topic := "franz-acks0"

	// The topic exists before the unacknowledged stream starts, so the test
	// measures record loss, not auto-creation.
	setup := newClient(t, addr)
	produceAll(t, ctx, setup, topic, testRecords("warm", 1, 1))

	prod := newClient(t, addr,
		kgo.RequiredAcks(kgo.NoAck()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	rs := testRecords("acks0", n, 1)
	for _, r := range rs {
		r.Topic = topic
		prod.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("acks=0 produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	prod.Close()

	got := consumeN(t, ctx, addr, topic, n+1)
	seen := map[string]int{}
	for _, r := range got[1:] {
		seen[r.Value]++
	}
	for i, r := range rs {
		if c := seen[string(r.Value)]; c != 1 {
			t.Fatalf("acks=0 record %d of %d seen %d times (want 1)", i, n, c)
		}
	}
	// Order within the one partition is the produce order.
	for i, r := range got[1:] {
		if r.Value != string(rs[i].Value) {
			t.Fatalf("acks=0 record at offset %d is %q, want %q", r.Offset, r.Value, rs[i].Value)
		}
	}
}

// TestFranzListOffsetsByTimestamp produces records with explicit timestamps
// and asks ListOffsets for timestamps before, between, at and after them:
// the answer is the first offset whose timestamp is >= the target, or -1
// past the end; earliest and latest are 0 and the record count.
func TestFranzListOffsetsByTimestamp(t *testing.T) {
	addr := startBroker(t)
	ctx := testContext(t)
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	ms := func(sec int) int64 { return at(sec).UnixMilli() }

	// Offsets 0..4 hold records at seconds 0, 10, 20, 30, 40 in both cases.
	cases := []struct {
		name    string
		batches [][]int // seconds of each record, one inner slice per batch
	}{
		{
			name:    "one-record-batches",
			batches: [][]int{{0}, {10}, {20}, {30}, {40}},
		},
		{
			// Kafka answers with the exact record inside a batch, not the
			// batch's first offset.
			name:    "multi-record-batches",
			batches: [][]int{{0, 10, 20}, {30, 40}},
		},
	}
	type query struct {
		what string
		ts   int64
		want int64
	}
	queries := []query{
		{"before the first record", ms(-5), 0},
		{"exactly the first", ms(0), 0},
		{"between 0s and 10s", ms(5), 1},
		{"exactly 20s", ms(20), 2},
		{"one ms after 20s", ms(20) + 1, 3},
		{"between 30s and 40s", ms(35), 4},
		{"exactly the last", ms(40), 4},
		{"after the last", ms(41), -1},
		{"earliest", -2, 0},
		{"latest", -1, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := "franz-listoffsets-" + c.name
			cl := newClient(t, addr,
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(kgo.GzipCompression()),
			)
			var offset int64
			for bi, b := range c.batches {
				var rs []*kgo.Record
				for _, sec := range b {
					rs = append(rs, &kgo.Record{
						Topic:     topic,
						Value:     []byte(fmt.Sprintf("at %ds", sec)),
						Timestamp: at(sec),
					})
				}
				// ProduceSync of a slice goes out as one batch per partition.
				res := cl.ProduceSync(ctx, rs...)
				if err := res.FirstErr(); err != nil {
					t.Fatalf("produce batch %d: %v", bi, err)
				}
				for _, r := range res {
					if r.Record.Offset != offset {
						t.Fatalf("batch %d: record got offset %d, want %d", bi, r.Record.Offset, offset)
					}
					offset++
				}
			}
			for _, q := range queries {
				got, gotTS := listOffset(t, ctx, cl, topic, 0, q.ts)
				if got != q.want {
					t.Errorf("ListOffsets(%s, ts=%d): offset %d, want %d", q.what, q.ts, got, q.want)
				}
				if q.ts >= 0 && q.want >= 0 {
					if wantTS := ms(int(q.want) * 10); gotTS != wantTS {
						t.Errorf("ListOffsets(%s, ts=%d): timestamp %d, want %d (the record's own)", q.what, q.ts, gotTS, wantTS)
					}
				}
			}
		})
	}
}

// TestFranzBadBatches hands the node raw Produce requests: a valid batch
// (the control), one with a flipped CRC byte (CORRUPT_MESSAGE) and one whose
// lastOffsetDelta disagrees with its record count (INVALID_RECORD). Only the
// valid batch may be stored.
func TestFranzBadBatches(t *testing.T) {
	addr := startBroker(t)
	ctx := testContext(t)
	topic := "franz-bad-batches"
	cl := rawClient(t, addr)
	ensureTopic(t, ctx, cl, topic)

	now := time.Now().UnixMilli()
	good := rawBatch(now, "good-0", "good-1", "good-2")
	badCRC := rawBatch(now, "crc-0", "crc-1")
	badCRC[19] ^= 0x40 // inside the CRC field (bytes 17..20)
	badDelta := rawBatch(now, "delta-0", "delta-1", "delta-2")
	binary.BigEndian.PutUint32(badDelta[23:27], 1) // lastOffsetDelta 1, records 3
	fixCRC(badDelta)

	steps := []struct {
		name  string
		batch []byte
		want  error // nil: accepted
	}{
		{"valid batch", good, nil},
		{"flipped CRC byte", badCRC, kerr.CorruptMessage},
		{"lastOffsetDelta != records-1", badDelta, kerr.InvalidRecord},
	}
	for _, s := range steps {
		code, base := produceRaw(t, ctx, cl, topic, s.batch)
		if got := kerr.ErrorForCode(code); got != s.want {
			t.Errorf("%s: error %v, want %v", s.name, got, s.want)
		}
		if s.want == nil && base != 0 {
			t.Errorf("%s: base offset %d, want 0", s.name, base)
		}
		if hw, _ := listOffset(t, ctx, cl, topic, 0, -1); hw != 3 {
			t.Errorf("after %s: high watermark %d, want 3 (only the valid batch)", s.name, hw)
		}
	}

	got := consumeN(t, ctx, addr, topic, 3)
	for i, r := range got {
		if want := fmt.Sprintf("good-%d", i); r.Value != want || r.Offset != int64(i) {
			t.Errorf("record %d: %v, want value %q at offset %d", i, r, want, i)
		}
	}
}

// produceRaw sends one batch to partition 0 of topic with acks=all and
// returns the partition's error code and base offset.
func produceRaw(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, batch []byte) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("raw produce: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("raw produce: want one topic with one partition in the response, got %+v", resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// rawBatch builds an uncompressed RecordBatch v2 holding one record per
// value, with a correct length and CRC.
func rawBatch(ts int64, values ...string) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(v)}
		// The record length is a varint prefix: encode once to measure.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              records,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	fixCRC(raw)
	return raw
}

// fixCRC recomputes a batch's CRC-32C over attributes..end.
func fixCRC(raw []byte) {
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
}
