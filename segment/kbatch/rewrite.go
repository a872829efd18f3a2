package kbatch

import "encoding/binary"

// The rewrite functions change a batch in place, as a broker does on append.
// They expect a batch that Validate or Iterate accepted and leave a slice too
// short to hold the field untouched rather than panic; they do not report
// errors because by then the batch has already been checked.

// SetBaseOffset stores offset as the batch's base offset. The field lies
// outside the CRC, so the CRC stays valid.
func SetBaseOffset(batch []byte, offset int64) {
	if len(batch) < offBaseOffset+8 {
		return
	}
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch stores epoch as the batch's partition leader
// epoch. The field lies outside the CRC, so the CRC stays valid.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	if len(batch) < offLeaderEpoch+4 {
		return
	}
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch's timestamps as the broker's append time
// ts (topics with message.timestamp.type=LogAppendTime): it sets the 0x08
// attribute and MaxTimestamp, both inside the CRC, then recomputes the CRC.
// As in Kafka, BaseTimestamp and the record deltas are left alone; readers
// give every record MaxTimestamp. batch may be followed by other bytes: only
// the batchLength bytes that belong to it are summed.
func SetLogAppendTime(batch []byte, ts int64) {
	if len(batch) < HeaderSize {
		return
	}
	be := binary.BigEndian
	size := int64(int32(be.Uint32(batch[offBatchLength:]))) + logOverhead
	if size < HeaderSize || size > int64(len(batch)) {
		return // not a whole batch; a CRC over it would be meaningless
	}
	batch = batch[:size]
	attrs := be.Uint16(batch[offAttributes:]) | attrLogAppendTime
	be.PutUint16(batch[offAttributes:], attrs)
	be.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	be.PutUint32(batch[offCRC:], checksum(batch))
}
