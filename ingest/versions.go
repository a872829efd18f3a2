package ingest

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// versionRange is what we do with one API key.
type versionRange struct {
	// advertisedMin is the lowest version ApiVersions reports. It is below
	// min only for Produce: librdkafka (kcat) enables compression only if
	// Produce v0 is advertised, so we advertise it as Kafka 4.0 does
	// (KAFKA-18659) while never serving it.
	advertisedMin int16
	// min and max bound the versions we parse and answer. A request
	// outside them closes the connection, as Kafka's SocketServer does
	// (UnsupportedVersionException), except ApiVersions, which is answered
	// at v0 with UNSUPPORTED_VERSION (KIP-511).
	min, max int16
}

// served is the single table of API versions this server speaks: the
// ApiVersions response is built from it and every request is checked against
// it. Each key's file starts with a comment explaining its range. kmsg v1.15.0
// knows every version listed here (it knows no minimums, hence this table).
var served = map[int16]versionRange{
	int16(kmsg.Produce):      {advertisedMin: 0, min: 3, max: 13},
	int16(kmsg.Fetch):        {advertisedMin: 4, min: 4, max: 18},
	int16(kmsg.ListOffsets):  {advertisedMin: 1, min: 1, max: 11},
	int16(kmsg.Metadata):     {advertisedMin: 0, min: 0, max: 13},
	int16(kmsg.ApiVersions):  {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.CreateTopics): {advertisedMin: 2, min: 2, max: 7},
	int16(kmsg.DeleteTopics): {advertisedMin: 1, min: 1, max: 6},

	// Consumer groups (ingest/group), served from v0 for librdkafka.
	int16(kmsg.OffsetCommit):    {advertisedMin: 0, min: 0, max: 9},
	int16(kmsg.OffsetFetch):     {advertisedMin: 0, min: 0, max: 9},
	int16(kmsg.FindCoordinator): {advertisedMin: 0, min: 0, max: 6},
	int16(kmsg.JoinGroup):       {advertisedMin: 0, min: 0, max: 9},
	int16(kmsg.Heartbeat):       {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.LeaveGroup):      {advertisedMin: 0, min: 0, max: 5},
	int16(kmsg.SyncGroup):       {advertisedMin: 0, min: 0, max: 5},
	int16(kmsg.DescribeGroups):  {advertisedMin: 0, min: 0, max: 6},
	int16(kmsg.ListGroups):      {advertisedMin: 0, min: 0, max: 5},
	int16(kmsg.DeleteGroups):    {advertisedMin: 0, min: 0, max: 2},
	int16(kmsg.OffsetDelete):    {advertisedMin: 0, min: 0, max: 0},

	// KIP-848 consumer groups and KIP-932 share groups (Kafka 4.2's
	// ranges; share v0 was early access, not served).
	int16(kmsg.ConsumerGroupHeartbeat):    {advertisedMin: 0, min: 0, max: 1},
	int16(kmsg.ConsumerGroupDescribe):     {advertisedMin: 0, min: 0, max: 1},
	int16(kmsg.ShareGroupHeartbeat):       {advertisedMin: 1, min: 1, max: 1},
	int16(kmsg.ShareGroupDescribe):        {advertisedMin: 1, min: 1, max: 1},
	int16(kmsg.ShareFetch):                {advertisedMin: 1, min: 1, max: 2},
	int16(kmsg.ShareAcknowledge):          {advertisedMin: 1, min: 1, max: 2},
	int16(kmsg.DescribeShareGroupOffsets): {advertisedMin: 0, min: 0, max: 1},
	int16(kmsg.AlterShareGroupOffsets):    {advertisedMin: 0, min: 0, max: 0},
	int16(kmsg.DeleteShareGroupOffsets):   {advertisedMin: 0, min: 0, max: 0},
	int16(kmsg.ReadShareGroupState):       {advertisedMin: 0, min: 0, max: 0},

	// Admin and producer requests, served from v0 where kmsg knows it:
	// kafkajs and older sarama settings send the low, non-flexible ones.
	int16(kmsg.DeleteRecords):           {advertisedMin: 0, min: 0, max: 2},
	int16(kmsg.InitProducerID):          {advertisedMin: 0, min: 0, max: 5},
	int16(kmsg.OffsetForLeaderEpoch):    {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.DescribeConfigs):         {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.AlterConfigs):            {advertisedMin: 0, min: 0, max: 2},
	int16(kmsg.CreatePartitions):        {advertisedMin: 0, min: 0, max: 3},
	int16(kmsg.IncrementalAlterConfigs): {advertisedMin: 0, min: 0, max: 1},
	int16(kmsg.DescribeCluster):         {advertisedMin: 0, min: 0, max: 2},
	int16(kmsg.DescribeProducers):       {advertisedMin: 0, min: 0, max: 0},

	// Authentication (sasl.go, 50_scram_credentials.go). SaslHandshake v0
	// (raw tokens outside Kafka's framing) is not served, but advertised:
	// librdkafka enables SASL only if the advertised range starts at 0, and
	// then speaks v1 since SaslAuthenticate is listed.
	int16(kmsg.SASLHandshake):                {advertisedMin: 0, min: 1, max: 1},
	int16(kmsg.SASLAuthenticate):             {advertisedMin: 0, min: 0, max: 2},
	int16(kmsg.DescribeUserSCRAMCredentials): {advertisedMin: 0, min: 0, max: 0},
	int16(kmsg.AlterUserSCRAMCredentials):    {advertisedMin: 0, min: 0, max: 0},
	int16(kmsg.DescribeACLs):                 {advertisedMin: 0, min: 0, max: 3},
	int16(kmsg.CreateACLs):                   {advertisedMin: 0, min: 0, max: 3},
	int16(kmsg.DeleteACLs):                   {advertisedMin: 0, min: 0, max: 3},
	int16(kmsg.DescribeClientQuotas):         {advertisedMin: 0, min: 0, max: 1},
	int16(kmsg.AlterClientQuotas):            {advertisedMin: 0, min: 0, max: 1},

	// Transactions (24_transactions.go). EndTxn v5 and TxnOffsetCommit v5
	// belong to transaction version 2 (KIP-890 part 2), not served.
	int16(kmsg.AddPartitionsToTxn):   {advertisedMin: 0, min: 0, max: 5},
	int16(kmsg.AddOffsetsToTxn):      {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.EndTxn):               {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.WriteTxnMarkers):      {advertisedMin: 0, min: 0, max: 1},
	int16(kmsg.TxnOffsetCommit):      {advertisedMin: 0, min: 0, max: 4},
	int16(kmsg.DescribeTransactions): {advertisedMin: 0, min: 0, max: 0},
	int16(kmsg.ListTransactions):     {advertisedMin: 0, min: 0, max: 1},
}

// isServed reports whether we parse and answer version v of key.
func isServed(key, v int16) bool {
	r, ok := served[key]
	return ok && v >= r.min && v <= r.max
}

// advertisedKeys returns the ApiVersions list, sorted by key as Kafka sends
// it (clients do not need the order, but humans reading dumps do).
func advertisedKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(served))
	for key := int16(0); len(keys) < len(served); key++ {
		r, ok := served[key]
		if !ok {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey = key
		k.MinVersion = r.advertisedMin
		k.MaxVersion = r.max
		keys = append(keys, k)
	}
	return keys
}
