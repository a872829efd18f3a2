package kbatch

// Tests against franz-go, an independent implementation of the format: its
// kmsg types and kgo codecs decode what Build writes, kbatch decodes what
// they write, and batches captured from a real kgo producer pass Validate.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgRecords decodes a batch with kmsg and kgo's decompressor.
func kmsgRecords(t *testing.T, b []byte) (kmsg.RecordBatch, []Record) {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg cannot read the batch: %v", err)
	}
	if want := int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))); rb.CRC != want {
		t.Fatalf("kmsg CRC %#x, recomputed %#x", rb.CRC, want)
	}
	data, err := kgo.DefaultDecompressor().Decompress(rb.Records, kgo.CompressionCodecType(rb.Attributes&7))
	if err != nil {
		t.Fatalf("kgo cannot decompress: %v", err)
	}
	var out []Record
	for i := int32(0); i < rb.NumRecords; i++ {
		var r kmsg.Record
		if err := r.ReadFrom(data); err != nil {
			t.Fatalf("kmsg record %d: %v", i, err)
		}
		used := len(binary.AppendVarint(nil, int64(r.Length))) + int(r.Length)
		data = data[used:]
		rec := Record{
			Offset:    rb.FirstOffset + int64(r.OffsetDelta),
			Timestamp: rb.FirstTimestamp + r.TimestampDelta64,
			Key:       r.Key,
			Value:     r.Value,
		}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, RecordHeader{Key: h.Key, Value: h.Value})
		}
		out = append(out, rec)
	}
	if len(data) != 0 {
		t.Fatalf("%d bytes after the last record", len(data))
	}
	return rb, out
}

func TestBuildReadableByKmsg(t *testing.T) {
	recs := sampleRecords(30)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := mustBuild(t, recs, BuildOptions{Codec: c, ProducerID: 77, ProducerEpoch: 1, BaseSequence: 9})
			rb, got := kmsgRecords(t, b)
			if rb.Magic != 2 || rb.Length != int32(len(b)-12) || rb.LastOffsetDelta != 29 || rb.NumRecords != 30 ||
				rb.ProducerID != 77 || rb.ProducerEpoch != 1 || rb.FirstSequence != 9 || rb.Attributes != int16(c) {
				t.Fatalf("kmsg header %+v", rb)
			}
			if want := withOffsets(recs, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("kmsg decodes different records")
			}
		})
	}
}

// kmsgBuild encodes recs the franz-go way: kmsg.Record, kgo's compressor and
// kmsg.RecordBatch.
func kmsgBuild(t *testing.T, recs []Record, c Codec, baseTS int64) []byte {
	t.Helper()
	var raw []byte
	maxTS := baseTS
	for i, rec := range recs {
		r := kmsg.Record{TimestampDelta64: rec.Timestamp - baseTS, OffsetDelta: int32(i), Key: rec.Key, Value: rec.Value}
		for _, h := range rec.Headers {
			r.Headers = append(r.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := r.AppendTo(nil)[1:] // Length 0 encodes as one byte
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
		maxTS = max(maxTS, rec.Timestamp)
	}
	payload := raw
	if c != None {
		codecs := map[Codec]kgo.CompressionCodec{Gzip: kgo.GzipCompression(), Snappy: kgo.SnappyCompression(), LZ4: kgo.Lz4Compression(), Zstd: kgo.ZstdCompression()}
		comp, err := kgo.DefaultCompressor(codecs[c])
		if err != nil {
			t.Fatal(err)
		}
		out, used := comp.Compress(new(bytes.Buffer), raw)
		if used != kgo.CompressionCodecType(c) {
			t.Fatalf("kgo compressed with %d, want %d", used, c)
		}
		payload = bytes.Clone(out)
	}
	rb := kmsg.RecordBatch{
		FirstOffset: 0, Length: int32(49 + len(payload)), PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: int16(c), LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: baseTS, MaxTimestamp: maxTS,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(recs)), Records: payload,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestKmsgBatchesDecode(t *testing.T) {
	recs := sampleRecords(30)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := kmsgBuild(t, recs, c, 1_000)
			hs, err := Validate(b)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if hs[0].Codec() != c || hs[0].NumRecords != 30 || hs[0].BaseTimestamp != 1_000 {
				t.Fatalf("header %+v", hs[0])
			}
			got, err := Records(b)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if want := withOffsets(recs, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("records differ")
			}
		})
	}
}

// TestKgoProducerBatches captures the batches a real franz-go producer sends
// to a fake broker, with each codec and with and without idempotence, and
// checks Validate accepts them and Records returns what was produced.
func TestKgoProducerBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster")
	}
	codecs := map[Codec]kgo.CompressionCodec{None: kgo.NoCompression(), Gzip: kgo.GzipCompression(),
		Snappy: kgo.SnappyCompression(), LZ4: kgo.Lz4Compression(), Zstd: kgo.ZstdCompression()}
	for _, c := range allCodecs {
		for _, idempotent := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/idempotent=%v", c, idempotent), func(t *testing.T) {
				cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
				if err != nil {
					t.Fatal(err)
				}
				defer cluster.Close()
				var (
					mu       sync.Mutex
					captured [][]byte
				)
				cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
					mu.Lock()
					defer mu.Unlock()
					for _, tp := range req.(*kmsg.ProduceRequest).Topics {
						for _, p := range tp.Partitions {
							captured = append(captured, bytes.Clone(p.Records))
						}
					}
					return nil, nil, false // observe only; kfake answers
				})

				opts := []kgo.Opt{
					kgo.SeedBrokers(cluster.ListenAddrs()...),
					kgo.DefaultProduceTopic("t"),
					kgo.ProducerBatchCompression(codecs[c]),
					kgo.ProducerLinger(50 * time.Millisecond), // several records per batch
				}
				if !idempotent {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()

				want := sampleRecords(200)
				var krs []*kgo.Record
				for _, r := range want {
					kr := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
					for _, h := range r.Headers {
						kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
					}
					krs = append(krs, kr)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}

				mu.Lock()
				defer mu.Unlock()
				var got []Record
				for i, b := range captured {
					hs, err := Validate(b)
					if err != nil {
						t.Fatalf("batch %d from kgo rejected: %v", i, err)
					}
					h := hs[0]
					if len(hs) != 1 || h.Codec() != c || (h.ProducerID >= 0) != idempotent {
						t.Fatalf("batch %d: %d headers, first %+v", i, len(hs), h)
					}
					recs, err := Records(b)
					if err != nil {
						t.Fatalf("batch %d: Records: %v", i, err)
					}
					for j := range recs {
						recs[j].Offset = int64(len(got) + j) // kgo sends base offset 0 per batch
					}
					got = append(got, recs...)
				}
				if !reflect.DeepEqual(got, withOffsets(want, 0)) {
					t.Fatalf("decoded %d records from %d batches; they differ from the %d produced", len(got), len(captured), len(want))
				}
			})
		}
	}
}
