package ingest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

// BenchmarkParseProduce measures framing, skim and kmsg parsing of a
// produce request carrying one 64 KiB-ish batch per partition for 4
// partitions, the hot path of every produce.
func BenchmarkParseProduce(b *testing.B) {
	recs := make([]kbatch.Record, 64)
	for i := range recs {
		recs[i] = kbatch.Record{Value: make([]byte, 1000)}
	}
	batch, err := kbatch.Build(recs, kbatch.BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	for p := range int32(4) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, 1)[4:]
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendFetchResponse measures encoding a fetch response with 1
// MiB of record batches into a reused buffer, as the connection writer
// does.
func BenchmarkAppendFetchResponse(b *testing.B) {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	st := kmsg.NewFetchResponseTopic()
	st.Topic = "bench"
	for p := range int32(4) {
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = p
		sp.RecordBatches = make([]byte, 256<<10)
		st.Partitions = append(st.Partitions, sp)
	}
	resp.Topics = []kmsg.FetchResponseTopic{st}
	var buf []byte
	b.SetBytes(4 * 256 << 10)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendResponse(buf[:0], 1, resp)
	}
}
