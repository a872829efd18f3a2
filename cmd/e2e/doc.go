// Package e2e holds Strata's end-to-end tests: real Kafka clients (franz-go
// kgo, IBM/sarama, kcat/librdkafka, librdkafka through Debian's
// python3-confluent-kafka, and kafkajs) against a real Strata node,
// either in process (cmd/node) or as the built strata binary that the
// restart tests kill -9.
//
// Each test checks what a user of that client would notice: every record
// arrives exactly once, in order per partition, with key, value and headers
// intact, and nothing acknowledged is lost across a crash.
//
// The package has no non-test code and must never be imported. It must never
// talk to anything but servers it started itself on 127.0.0.1, and it never
// skips a test because a tool is missing: kcat, kafkajs and
// python3-confluent-kafka come from `bash .ci/setup`, and a test without
// them fails saying so.
package e2e
