package e2e

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
)

// TestSarama produces with sarama's SyncProducer and reads back with its
// PartitionConsumer, both on sarama's default config (its default protocol
// version and acks=1, the way most sarama users run it), to a 3-partition
// topic the producer auto-creates.
func TestSarama(t *testing.T) {
	const partitions, n = 3, 3000
	addr := startBroker(t, withPartitions(partitions))
	ctx := testContext(t)
	topic := "sarama-default"

	cfg := sarama.NewConfig()
	cfg.ClientID = "strata-e2e"
	cfg.Producer.Return.Successes = true // required by SyncProducer
	cfg.Consumer.Return.Errors = true

	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	// Closing a sarama producer twice panics: close it once, here or on an
	// early failure.
	prodOpen := true
	t.Cleanup(func() {
		if prodOpen {
			prod.Close()
		}
	})
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("sarama-key-%05d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("sarama-value-%05d", i)),
			Headers: []sarama.RecordHeader{
				{Key: []byte("seq"), Value: []byte(fmt.Sprint(i))},
				{Key: []byte("empty"), Value: nil},
			},
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("sarama SendMessages: %v", err)
	}
	acked := make([]rec, n)
	for i, m := range msgs {
		acked[i] = fromSarama(m.Partition, m.Offset, []byte(fmt.Sprintf("sarama-key-%05d", i)),
			[]byte(fmt.Sprintf("sarama-value-%05d", i)), m.Headers)
	}
	checkDense(t, acked)
	prodOpen = false
	if err := prod.Close(); err != nil {
		t.Errorf("close sarama producer: %v", err)
	}

	cons, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer cons.Close()
	ps, err := cons.Partitions(topic)
	if err != nil {
		t.Fatalf("sarama partitions of %s: %v", topic, err)
	}
	if len(ps) != partitions {
		t.Fatalf("sarama sees %d partitions of %s, want %d", len(ps), topic, partitions)
	}
	perPart := map[int32]int{}
	for _, r := range acked {
		perPart[r.Partition]++
	}
	var got []rec
	for _, p := range ps {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama ConsumePartition %d: %v", p, err)
		}
		for k := 0; k < perPart[p]; k++ {
			select {
			case m := <-pc.Messages():
				var hs []sarama.RecordHeader
				for _, h := range m.Headers {
					hs = append(hs, *h)
				}
				got = append(got, fromSarama(m.Partition, m.Offset, m.Key, m.Value, hs))
			case err := <-pc.Errors():
				t.Fatalf("sarama partition %d: %v", p, err)
			case <-ctx.Done():
				t.Fatalf("sarama partition %d: got %d of %d records before the deadline", p, k, perPart[p])
			}
		}
		if hw := pc.HighWaterMarkOffset(); hw != int64(perPart[p]) {
			t.Errorf("sarama partition %d: high watermark %d, want %d", p, hw, perPart[p])
		}
		if err := pc.Close(); err != nil {
			t.Errorf("close sarama partition consumer %d: %v", p, err)
		}
	}
	checkSame(t, acked, got, true)
}

// fromSarama converts a sarama message.
func fromSarama(p int32, off int64, key, value []byte, hs []sarama.RecordHeader) rec {
	r := rec{Partition: p, Offset: off, Key: string(key), Value: string(value)}
	for _, h := range hs {
		r.Headers = append(r.Headers, hdr{string(h.Key), string(h.Value)})
	}
	return r
}
