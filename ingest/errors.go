package ingest

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier"
)

// errCode maps an error from the packages below ingest to the Kafka error
// code a client should see. This is the only place internal errors become
// Kafka codes.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// First: the tier wraps a timed-out etcd call in ErrStorage, but
		// the client should hear that its time ran out.
		return kerr.RequestTimedOut.Code
	case errors.Is(err, tier.ErrUnknownPartition), errors.Is(err, metadata.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, tier.ErrNotLeader), errors.Is(err, metadata.ErrNotLeader), errors.Is(err, metadata.ErrFenced):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, tier.ErrClosed):
		// This node is shutting down: like a broker that stopped leading,
		// the client refreshes its metadata and retries elsewhere.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, tier.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, tier.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, tier.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, tier.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, tier.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, tier.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, metadata.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, kbatch.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, kbatch.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, kbatch.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, kbatch.ErrUnsupportedCodec):
		return kerr.UnsupportedCompressionType.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage returns a pointer to err's text for the ErrorMessage fields of
// newer response versions, or nil for no error.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
