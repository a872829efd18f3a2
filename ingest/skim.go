package ingest

import (
	"encoding/binary"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Why a skim before kmsg parses a body:
//
// kmsg v1.15.0 reads a tagged-field section as
//
//	for n := b.Uvarint(); n > 0; n-- { ... }
//
// and once its reader runs out of bytes every read returns 0 but the loop
// still runs n times. A 7-byte ApiVersions v3 body ending in a tag count of
// 2^32-1 kept a core busy for over four minutes in a test here. kmsg also
// allocates each array at the length the client claims (bounded only by the
// bytes left, at 30-100 bytes of struct per claimed byte) before finding out
// whether the elements are there.
//
// skim walks a body's shape for the versions we serve — lengths, counts and
// tagged sections, no values — and refuses any body kmsg would either spin
// on or over-allocate for: a tag count larger than the bytes left could hold
// (each tag takes at least two bytes, so kmsg would run out and fail anyway,
// after the spin), or any string, array or field that runs past the end.
// Bodies skim accepts cost kmsg time and memory linear in their size.
// skim never decides a value: kmsg still decodes everything.

// skimmer walks an encoded request body.
type skimmer struct {
	b    []byte
	flex bool // KIP-482 compact encodings and tagged fields
	bad  bool
}

func (s *skimmer) fail() {
	s.bad = true
	s.b = nil
}

// skip passes n fixed-size bytes.
func (s *skimmer) skip(n int) {
	if s.bad {
		return
	}
	if len(s.b) < n {
		s.fail()
		return
	}
	s.b = s.b[n:]
}

// uvarint reads an unsigned varint as kmsg does: at most five bytes, and a
// value that does not fit 32 bits is an error.
func (s *skimmer) uvarint() uint32 {
	if s.bad {
		return 0
	}
	v, n := binary.Uvarint(s.b)
	if n <= 0 || n > 5 || v > math.MaxUint32 {
		s.fail()
		return 0
	}
	s.b = s.b[n:]
	return uint32(v)
}

func (s *skimmer) int16() int16 {
	if s.bad || len(s.b) < 2 {
		s.fail()
		return 0
	}
	v := int16(binary.BigEndian.Uint16(s.b))
	s.b = s.b[2:]
	return v
}

func (s *skimmer) int32() int32 {
	if s.bad || len(s.b) < 4 {
		s.fail()
		return 0
	}
	v := int32(binary.BigEndian.Uint32(s.b))
	s.b = s.b[4:]
	return v
}

// str passes a string (nullable or not; a negative length where null is
// not allowed is an error, as in kmsg).
func (s *skimmer) str(nullable bool) {
	var n int
	if s.flex {
		n = int(s.uvarint()) - 1
	} else {
		n = int(s.int16())
	}
	if n < 0 {
		if !nullable {
			s.fail()
		}
		return
	}
	s.skip(n)
}

// bytes passes a nullable byte array (record batches).
func (s *skimmer) bytes() {
	var n int
	if s.flex {
		n = int(s.uvarint()) - 1
	} else {
		n = int(s.int32())
	}
	if n > 0 {
		s.skip(n)
	}
}

// array passes an array, calling elem for each element. The count is read
// as kmsg reads it (a negative count is null or empty), and the elements
// must all be there.
func (s *skimmer) array(elem func()) {
	var n int32
	if s.flex {
		n = int32(s.uvarint()) - 1
	} else {
		n = s.int32()
	}
	if s.bad || n <= 0 {
		return
	}
	if int(n) > len(s.b) { // every element takes at least a byte
		s.fail()
		return
	}
	for range n {
		elem()
		if s.bad {
			return
		}
	}
}

// tags passes a tagged-field section (flexible versions only). known, when
// set, walks the payload of a tag kmsg decodes itself, for the tags whose
// payload has a tagged section of its own.
func (s *skimmer) tags(known func(tag uint32, sub *skimmer)) {
	if !s.flex || s.bad {
		return
	}
	n := s.uvarint()
	if uint64(n) > uint64(len(s.b))/2 { // each tag takes at least two bytes
		s.fail()
		return
	}
	for range n {
		tag := s.uvarint()
		size := s.uvarint()
		if s.bad || uint64(size) > uint64(len(s.b)) {
			s.fail()
			return
		}
		payload := s.b[:size]
		s.b = s.b[size:]
		if known != nil {
			sub := &skimmer{b: payload, flex: true}
			known(tag, sub)
			if sub.bad {
				s.fail()
				return
			}
		}
	}
}

// skimBody reports whether body, a request of the given kind and version,
// is safe to hand to kmsg (see the comment at the top of this file).
func skimBody(req kmsg.Request, body []byte) bool {
	s := &skimmer{b: body, flex: req.IsFlexible()}
	return skimWith(s, req) && !s.bad
}

// skimWith walks s as a body of req's kind and version; false means there
// is no skim for that kind, which parseRequest treats as malformed rather
// than risk kmsg on it (every served key must have one: a test checks).
func skimWith(s *skimmer, req kmsg.Request) bool {
	v := req.GetVersion()
	switch req.(type) {
	case *kmsg.ProduceRequest:
		skimProduce(s, v)
	case *kmsg.FetchRequest:
		skimFetch(s, v)
	case *kmsg.ListOffsetsRequest:
		skimListOffsets(s, v)
	case *kmsg.MetadataRequest:
		skimMetadata(s, v)
	case *kmsg.ApiVersionsRequest:
		skimApiVersions(s, v)
	case *kmsg.CreateTopicsRequest:
		skimCreateTopics(s, v)
	case *kmsg.DeleteTopicsRequest:
		skimDeleteTopics(s, v)
	// Consumer groups (ingest/group).
	case *kmsg.OffsetCommitRequest:
		skimOffsetCommit(s, v)
	case *kmsg.OffsetFetchRequest:
		skimOffsetFetch(s, v)
	case *kmsg.FindCoordinatorRequest:
		skimFindCoordinator(s, v)
	case *kmsg.JoinGroupRequest:
		skimJoinGroup(s, v)
	case *kmsg.HeartbeatRequest:
		skimHeartbeat(s, v)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		skimConsumerGroupHeartbeat(s, v)
	case *kmsg.ConsumerGroupDescribeRequest, *kmsg.ShareGroupDescribeRequest:
		s.array(func() { s.str(false) })
		s.skip(1) // IncludeAuthorizedOperations
		s.tags(nil)
	case *kmsg.ShareGroupHeartbeatRequest:
		s.str(false) // GroupID
		s.str(false) // MemberID
		s.skip(4)    // MemberEpoch
		s.str(true)  // RackID
		s.array(func() { s.str(false) })
		s.tags(nil)
	case *kmsg.ShareFetchRequest:
		skimShareFetch(s, v)
	case *kmsg.ShareAcknowledgeRequest:
		skimShareAcknowledge(s, v)
	case *kmsg.DescribeShareGroupOffsetsRequest:
		s.array(func() {
			s.str(false) // GroupID
			s.array(func() {
				s.str(false)
				s.array(func() { s.skip(4) })
				s.tags(nil)
			})
			s.tags(nil)
		})
		s.tags(nil)
	case *kmsg.AlterShareGroupOffsetsRequest:
		s.str(false)
		s.array(func() {
			s.str(false)
			s.array(func() {
				s.skip(4 + 8) // Partition, StartOffset
				s.tags(nil)
			})
			s.tags(nil)
		})
		s.tags(nil)
	case *kmsg.ReadShareGroupStateRequest:
		s.str(false) // GroupID
		s.array(func() {
			s.skip(uuidLen)
			s.array(func() {
				s.skip(4 + 4) // Partition, LeaderEpoch
				s.tags(nil)
			})
			s.tags(nil)
		})
		s.tags(nil)
	case *kmsg.DeleteShareGroupOffsetsRequest:
		s.str(false)
		s.array(func() {
			s.str(false)
			s.tags(nil)
		})
		s.tags(nil)
	case *kmsg.LeaveGroupRequest:
		skimLeaveGroup(s, v)
	case *kmsg.SyncGroupRequest:
		skimSyncGroup(s, v)
	case *kmsg.DescribeGroupsRequest:
		skimDescribeGroups(s, v)
	case *kmsg.ListGroupsRequest:
		skimListGroups(s, v)
	case *kmsg.DeleteGroupsRequest:
		skimDeleteGroups(s, v)
	case *kmsg.OffsetDeleteRequest:
		skimOffsetDelete(s, v)
	case *kmsg.DeleteRecordsRequest:
		skimDeleteRecords(s, v)
	case *kmsg.InitProducerIDRequest:
		skimInitProducerID(s, v)
	case *kmsg.OffsetForLeaderEpochRequest:
		skimOffsetForLeaderEpoch(s, v)
	case *kmsg.DescribeConfigsRequest:
		skimDescribeConfigs(s, v)
	case *kmsg.AlterConfigsRequest:
		skimAlterConfigs(s, v, false)
	case *kmsg.IncrementalAlterConfigsRequest:
		skimAlterConfigs(s, v, true)
	case *kmsg.CreatePartitionsRequest:
		skimCreatePartitions(s, v)
	case *kmsg.DescribeClusterRequest:
		skimDescribeCluster(s, v)
	case *kmsg.DescribeProducersRequest:
		skimDescribeProducers(s, v)
	// Transactions.
	case *kmsg.AddPartitionsToTxnRequest:
		skimAddPartitionsToTxn(s, v)
	case *kmsg.AddOffsetsToTxnRequest:
		skimAddOffsetsToTxn(s, v)
	case *kmsg.EndTxnRequest:
		skimEndTxn(s, v)
	case *kmsg.WriteTxnMarkersRequest:
		skimWriteTxnMarkers(s, v)
	case *kmsg.TxnOffsetCommitRequest:
		skimTxnOffsetCommit(s, v)
	case *kmsg.DescribeTransactionsRequest:
		skimDescribeTransactions(s, v)
	case *kmsg.ListTransactionsRequest:
		skimListTransactions(s, v)
	// Authentication.
	case *kmsg.SASLHandshakeRequest:
		s.str(false) // Mechanism
	case *kmsg.SASLAuthenticateRequest:
		s.bytes() // SASLAuthBytes
		s.tags(nil)
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		s.array(func() { s.str(false); s.tags(nil) }) // Users (nullable)
		s.tags(nil)
	case *kmsg.DescribeClientQuotasRequest:
		s.array(func() { s.str(false); s.skip(1); s.str(true); s.tags(nil) })
		s.skip(1) // Strict
		s.tags(nil)
	case *kmsg.AlterClientQuotasRequest:
		s.array(func() {
			s.array(func() { s.str(false); s.str(true); s.tags(nil) })
			s.array(func() { s.str(false); s.skip(8 + 1); s.tags(nil) })
			s.tags(nil)
		})
		s.skip(1) // ValidateOnly
		s.tags(nil)
	case *kmsg.DescribeACLsRequest:
		s.skip(1)   // ResourceType
		s.str(true) // ResourceName
		if v >= 1 {
			s.skip(1) // ResourcePatternType
		}
		s.str(true)   // Principal
		s.str(true)   // Host
		s.skip(1 + 1) // Operation, PermissionType
		s.tags(nil)
	case *kmsg.CreateACLsRequest:
		s.array(func() {
			s.skip(1)
			s.str(false)
			if v >= 1 {
				s.skip(1)
			}
			s.str(false)
			s.str(false)
			s.skip(1 + 1)
			s.tags(nil)
		})
		s.tags(nil)
	case *kmsg.DeleteACLsRequest:
		s.array(func() {
			s.skip(1)
			s.str(true)
			if v >= 1 {
				s.skip(1)
			}
			s.str(true)
			s.str(true)
			s.skip(1 + 1)
			s.tags(nil)
		})
		s.tags(nil)
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		s.array(func() { s.str(false); s.skip(1); s.tags(nil) }) // Deletions
		s.array(func() {                                         // Upsertions
			s.str(false)
			s.skip(1 + 4) // Mechanism, Iterations
			s.bytes()     // Salt
			s.bytes()     // SaltedPassword
			s.tags(nil)
		})
		s.tags(nil)
	default:
		return false
	}
	return true
}

const uuidLen = 16

func skimProduce(s *skimmer, v int16) {
	s.str(true) // TransactionID, v3+
	s.skip(2 + 4)
	s.array(func() {
		if v <= 12 {
			s.str(false)
		} else {
			s.skip(uuidLen)
		}
		s.array(func() {
			s.skip(4)
			s.bytes()
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.tags(nil)
}

func skimFetch(s *skimmer, v int16) {
	n := 4 + 4 + 4 + 1 // MaxWaitMillis, MinBytes, MaxBytes, IsolationLevel (v4+)
	if v <= 14 {
		n += 4 // ReplicaID
	}
	if v >= 7 {
		n += 4 + 4 // SessionID, SessionEpoch
	}
	s.skip(n)
	s.array(func() {
		if v <= 12 {
			s.str(false)
		} else {
			s.skip(uuidLen)
		}
		s.array(func() {
			n := 4 + 8 + 4 // Partition, FetchOffset, PartitionMaxBytes
			if v >= 9 {
				n += 4 // CurrentLeaderEpoch
			}
			if v >= 12 {
				n += 4 // LastFetchedEpoch
			}
			if v >= 5 {
				n += 8 // LogStartOffset
			}
			s.skip(n)
			s.tags(nil) // ReplicaDirectoryID, HighWatermark: no tags inside
		})
		s.tags(nil)
	})
	if v >= 7 {
		s.array(func() { // ForgottenTopics
			if v <= 12 {
				s.str(false)
			} else {
				s.skip(uuidLen)
			}
			s.array(func() { s.skip(4) })
			s.tags(nil)
		})
	}
	if v >= 11 {
		s.str(false) // Rack
	}
	s.tags(func(tag uint32, sub *skimmer) {
		if tag == 1 { // ReplicaState: ID, Epoch, its own tags
			sub.skip(4 + 8)
			sub.tags(nil)
		}
	})
}

func skimListOffsets(s *skimmer, v int16) {
	if v >= 2 {
		s.skip(4 + 1) // ReplicaID, IsolationLevel
	} else {
		s.skip(4)
	}
	s.array(func() {
		s.str(false)
		s.array(func() {
			n := 4 + 8 // Partition, Timestamp
			if v >= 4 {
				n += 4 // CurrentLeaderEpoch
			}
			s.skip(n)
			s.tags(nil)
		})
		s.tags(nil)
	})
	if v >= 10 {
		s.skip(4) // TimeoutMillis
	}
	s.tags(nil)
}

func skimMetadata(s *skimmer, v int16) {
	s.array(func() {
		if v >= 10 {
			s.skip(uuidLen)
		}
		s.str(v >= 10)
		s.tags(nil)
	})
	n := 0
	if v >= 4 {
		n++ // AllowAutoTopicCreation
	}
	if v >= 8 && v <= 10 {
		n++ // IncludeClusterAuthorizedOperations
	}
	if v >= 8 {
		n++ // IncludeTopicAuthorizedOperations
	}
	s.skip(n)
	s.tags(nil)
}

func skimApiVersions(s *skimmer, v int16) {
	if v >= 3 {
		s.str(false) // ClientSoftwareName
		s.str(false) // ClientSoftwareVersion
	}
	s.tags(nil)
}

func skimCreateTopics(s *skimmer, _ int16) {
	s.array(func() {
		s.str(false)
		s.skip(4 + 2) // NumPartitions, ReplicationFactor
		s.array(func() {
			s.skip(4)
			s.array(func() { s.skip(4) })
			s.tags(nil)
		})
		s.array(func() {
			s.str(false)
			s.str(true)
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.skip(4 + 1) // TimeoutMillis, ValidateOnly (v1+)
	s.tags(nil)
}

func skimDeleteTopics(s *skimmer, v int16) {
	if v <= 5 {
		s.array(func() { s.str(false) })
	} else {
		s.array(func() {
			s.str(true)
			s.skip(uuidLen)
			s.tags(nil)
		})
	}
	s.skip(4) // TimeoutMillis
	s.tags(nil)
}

// The group requests (handled by ingest/group).

func skimOffsetCommit(s *skimmer, v int16) {
	s.str(false) // Group
	if v >= 1 {
		s.skip(4)    // Generation
		s.str(false) // MemberID
	}
	if v >= 7 {
		s.str(true) // InstanceID
	}
	if v >= 2 && v <= 4 {
		s.skip(8) // RetentionTimeMillis
	}
	s.array(func() {
		if v <= 9 {
			s.str(false)
		} else {
			s.skip(uuidLen)
		}
		s.array(func() {
			n := 4 + 8 // Partition, Offset
			if v == 1 {
				n += 8 // Timestamp
			}
			if v >= 6 {
				n += 4 // LeaderEpoch
			}
			s.skip(n)
			s.str(true) // Metadata
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.tags(nil)
}

func skimOffsetFetch(s *skimmer, v int16) {
	if v <= 7 {
		s.str(false) // Group
		s.array(func() {
			s.str(false)
			s.array(func() { s.skip(4) })
			s.tags(nil)
		})
	} else {
		s.array(func() { // Groups
			s.str(false)
			if v >= 9 {
				s.str(true) // MemberID
				s.skip(4)   // MemberEpoch
			}
			s.array(func() {
				if v <= 9 {
					s.str(false)
				} else {
					s.skip(uuidLen)
				}
				s.array(func() { s.skip(4) })
				s.tags(nil)
			})
			s.tags(nil)
		})
	}
	if v >= 7 {
		s.skip(1) // RequireStable
	}
	s.tags(nil)
}

func skimFindCoordinator(s *skimmer, v int16) {
	if v <= 3 {
		s.str(false) // CoordinatorKey
	}
	if v >= 1 {
		s.skip(1) // CoordinatorType
	}
	if v >= 4 {
		s.array(func() { s.str(false) })
	}
	s.tags(nil)
}

func skimJoinGroup(s *skimmer, v int16) {
	s.str(false) // Group
	s.skip(4)    // SessionTimeoutMillis
	if v >= 1 {
		s.skip(4) // RebalanceTimeoutMillis
	}
	s.str(false) // MemberID
	if v >= 5 {
		s.str(true) // InstanceID
	}
	s.str(false) // ProtocolType
	s.array(func() {
		s.str(false)
		s.bytes()
		s.tags(nil)
	})
	if v >= 8 {
		s.str(true) // Reason
	}
	s.tags(nil)
}

func skimHeartbeat(s *skimmer, v int16) {
	s.str(false) // Group
	s.skip(4)    // Generation
	s.str(false) // MemberID
	if v >= 3 {
		s.str(true) // InstanceID
	}
	s.tags(nil)
}

func skimLeaveGroup(s *skimmer, v int16) {
	s.str(false) // Group
	if v <= 2 {
		s.str(false) // MemberID
	} else {
		s.array(func() {
			s.str(false) // MemberID
			s.str(true)  // InstanceID
			if v >= 5 {
				s.str(true) // Reason
			}
			s.tags(nil)
		})
	}
	s.tags(nil)
}

func skimSyncGroup(s *skimmer, v int16) {
	s.str(false) // Group
	s.skip(4)    // Generation
	s.str(false) // MemberID
	if v >= 3 {
		s.str(true) // InstanceID
	}
	if v >= 5 {
		s.str(true) // ProtocolType
		s.str(true) // Protocol
	}
	s.array(func() {
		s.str(false)
		s.bytes()
		s.tags(nil)
	})
	s.tags(nil)
}

func skimDescribeGroups(s *skimmer, v int16) {
	s.array(func() { s.str(false) })
	if v >= 3 {
		s.skip(1) // IncludeAuthorizedOperations
	}
	s.tags(nil)
}

func skimListGroups(s *skimmer, v int16) {
	if v >= 4 {
		s.array(func() { s.str(false) }) // StatesFilter
	}
	if v >= 5 {
		s.array(func() { s.str(false) }) // TypesFilter
	}
	s.tags(nil)
}

func skimDeleteGroups(s *skimmer, _ int16) {
	s.array(func() { s.str(false) })
	s.tags(nil)
}

func skimOffsetDelete(s *skimmer, _ int16) {
	s.str(false) // Group
	s.array(func() {
		s.str(false)
		s.array(func() { s.skip(4) })
	})
}

// Other requests, skimmed so they can be served safely once they are.

func skimDeleteRecords(s *skimmer, _ int16) {
	s.array(func() {
		s.str(false)
		s.array(func() {
			s.skip(4 + 8) // Partition, Offset
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.skip(4) // TimeoutMillis
	s.tags(nil)
}

func skimInitProducerID(s *skimmer, v int16) {
	s.str(true) // TransactionalID
	s.skip(4)   // TransactionTimeoutMillis
	if v >= 3 {
		s.skip(8 + 2) // ProducerID, ProducerEpoch
	}
	s.tags(nil)
}

func skimOffsetForLeaderEpoch(s *skimmer, v int16) {
	if v >= 3 {
		s.skip(4) // ReplicaID
	}
	s.array(func() {
		s.str(false)
		s.array(func() {
			n := 4 + 4 // Partition, LeaderEpoch
			if v >= 2 {
				n += 4 // CurrentLeaderEpoch
			}
			s.skip(n)
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.tags(nil)
}

func skimDescribeConfigs(s *skimmer, v int16) {
	s.array(func() {
		s.skip(1)    // ResourceType
		s.str(false) // ResourceName
		s.array(func() { s.str(false) })
		s.tags(nil)
	})
	if v >= 1 {
		s.skip(1) // IncludeSynonyms
	}
	if v >= 3 {
		s.skip(1) // IncludeDocumentation
	}
	s.tags(nil)
}

// skimAlterConfigs covers AlterConfigs and IncrementalAlterConfigs, which
// differ only in the operation byte of each config.
func skimAlterConfigs(s *skimmer, _ int16, incremental bool) {
	s.array(func() {
		s.skip(1)    // ResourceType
		s.str(false) // ResourceName
		s.array(func() {
			s.str(false) // Name
			if incremental {
				s.skip(1) // Op
			}
			s.str(true) // Value
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.skip(1) // ValidateOnly
	s.tags(nil)
}

func skimCreatePartitions(s *skimmer, _ int16) {
	s.array(func() {
		s.str(false)
		s.skip(4) // Count
		s.array(func() {
			s.array(func() { s.skip(4) })
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.skip(4 + 1) // TimeoutMillis, ValidateOnly
	s.tags(nil)
}

func skimDescribeCluster(s *skimmer, v int16) {
	n := 1 // IncludeClusterAuthorizedOperations
	if v >= 1 {
		n++ // EndpointType
	}
	if v >= 2 {
		n++ // IncludeFencedBrokers
	}
	s.skip(n)
	s.tags(nil)
}

func skimDescribeProducers(s *skimmer, _ int16) {
	s.array(func() {
		s.str(false)
		s.array(func() { s.skip(4) })
		s.tags(nil)
	})
	s.tags(nil)
}

// skimTxnTopics passes a topic array of partition indexes (AddPartitionsToTxn,
// WriteTxnMarkers).
func skimTxnTopics(s *skimmer) {
	s.array(func() {
		s.str(false)
		s.array(func() { s.skip(4) })
		s.tags(nil)
	})
}

func skimAddPartitionsToTxn(s *skimmer, v int16) {
	if v >= 4 {
		s.array(func() {
			s.str(false)      // TransactionalID
			s.skip(8 + 2 + 1) // ProducerID, ProducerEpoch, VerifyOnly
			skimTxnTopics(s)
			s.tags(nil)
		})
	} else {
		s.str(false)  // TransactionalID
		s.skip(8 + 2) // ProducerID, ProducerEpoch
		skimTxnTopics(s)
	}
	s.tags(nil)
}

func skimAddOffsetsToTxn(s *skimmer, _ int16) {
	s.str(false)  // TransactionalID
	s.skip(8 + 2) // ProducerID, ProducerEpoch
	s.str(false)  // Group
	s.tags(nil)
}

func skimEndTxn(s *skimmer, _ int16) {
	s.str(false)      // TransactionalID
	s.skip(8 + 2 + 1) // ProducerID, ProducerEpoch, Commit
	s.tags(nil)
}

func skimWriteTxnMarkers(s *skimmer, v int16) {
	s.array(func() {
		s.skip(8 + 2 + 1) // ProducerID, ProducerEpoch, Committed
		skimTxnTopics(s)
		s.skip(4) // CoordinatorEpoch
		if v >= 2 {
			s.skip(1) // TransactionVersion
		}
		s.tags(nil)
	})
	s.tags(nil)
}

func skimTxnOffsetCommit(s *skimmer, v int16) {
	s.str(false)  // TransactionalID
	s.str(false)  // Group
	s.skip(8 + 2) // ProducerID, ProducerEpoch
	if v >= 3 {
		s.skip(4)    // Generation
		s.str(false) // MemberID
		s.str(true)  // InstanceID
	}
	s.array(func() {
		s.str(false)
		s.array(func() {
			n := 4 + 8 // Partition, Offset
			if v >= 2 {
				n += 4 // LeaderEpoch
			}
			s.skip(n)
			s.str(true) // Metadata
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.tags(nil)
}

func skimDescribeTransactions(s *skimmer, _ int16) {
	s.array(func() { s.str(false) })
	s.tags(nil)
}

func skimListTransactions(s *skimmer, v int16) {
	s.array(func() { s.str(false) }) // StateFilters
	s.array(func() { s.skip(8) })    // ProducerIDFilters
	if v >= 1 {
		s.skip(8) // DurationFilterMillis
	}
	if v >= 2 {
		s.str(true) // TransactionalIDPattern
	}
	s.tags(nil)
}

func skimConsumerGroupHeartbeat(s *skimmer, v int16) {
	s.str(false) // Group
	s.str(false) // MemberID
	s.skip(4)    // MemberEpoch
	s.str(true)  // InstanceID
	s.str(true)  // RackID
	s.skip(4)    // RebalanceTimeoutMillis
	s.array(func() { s.str(false) })
	if v >= 1 {
		s.str(true) // SubscribedTopicRegex
	}
	s.str(true) // ServerAssignor
	s.array(func() {
		s.skip(uuidLen)
		s.array(func() { s.skip(4) })
		s.tags(nil)
	})
	s.tags(nil)
}

// skimShareAcks passes acknowledgement batches.
func skimShareAcks(s *skimmer) {
	s.array(func() {
		s.skip(8 + 8) // FirstOffset, LastOffset
		s.array(func() { s.skip(1) })
		s.tags(nil)
	})
}

func skimShareFetch(s *skimmer, v int16) {
	s.str(true)           // GroupID
	s.str(true)           // MemberID
	s.skip(4 + 4 + 4 + 4) // ShareSessionEpoch, MaxWaitMillis, MinBytes, MaxBytes
	if v >= 1 {
		s.skip(4 + 4) // MaxRecords, BatchSize
	}
	if v >= 2 {
		s.skip(1 + 1) // ShareAcquireMode, IsRenewAck
	}
	s.array(func() {
		s.skip(uuidLen)
		s.array(func() {
			s.skip(4) // Partition
			if v == 0 {
				s.skip(4) // PartitionMaxBytes
			}
			skimShareAcks(s)
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.array(func() { // ForgottenTopicsData
		s.skip(uuidLen)
		s.array(func() { s.skip(4) })
		s.tags(nil)
	})
	s.tags(nil)
}

func skimShareAcknowledge(s *skimmer, v int16) {
	s.str(true) // GroupID
	s.str(true) // MemberID
	s.skip(4)   // ShareSessionEpoch
	if v >= 2 {
		s.skip(1) // IsRenewAck
	}
	s.array(func() {
		s.skip(uuidLen)
		s.array(func() {
			s.skip(4) // Partition
			skimShareAcks(s)
			s.tags(nil)
		})
		s.tags(nil)
	})
	s.tags(nil)
}
