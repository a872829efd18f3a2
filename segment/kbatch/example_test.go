package kbatch_test

import (
	"errors"
	"fmt"

	"github.com/strata-io/strata/segment/kbatch"
)

// The Produce path: validate what the client sent, map a failure to a Kafka
// error, then stamp the offset and leader epoch the broker assigns.
func Example() {
	batch, _ := kbatch.Build([]kbatch.Record{
		{Timestamp: 1000, Key: []byte("k"), Value: []byte("hello")},
		{Timestamp: 1001, Value: []byte("world")},
	}, kbatch.BuildOptions{Codec: kbatch.Zstd})

	hs, err := kbatch.Validate(batch)
	switch {
	case errors.Is(err, kbatch.ErrCorrupt):
		fmt.Println("CORRUPT_MESSAGE")
		return
	case err != nil:
		fmt.Println("other error:", err)
		return
	}
	kbatch.SetBaseOffset(batch, 500)
	kbatch.SetPartitionLeaderEpoch(batch, 3)
	fmt.Println(len(hs), hs[0].NumRecords, hs[0].Codec())

	recs, _ := kbatch.Records(batch)
	for _, r := range recs {
		fmt.Printf("%d %d %q %q\n", r.Offset, r.Timestamp, r.Key, r.Value)
	}
	// Output:
	// 1 2 zstd
	// 500 1000 "k" "hello"
	// 501 1001 "" "world"
}
