package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkFetchSession is the cost of one fetch of 1,000 idle partitions
// (caught up, MaxWait 0): a full sessionless fetch naming them all, against
// an incremental fetch of a session holding them that names nothing and is
// answered with nothing. "handler" is the server's work alone (the fetch
// handler called directly); "wire" is a round trip on a connection, the
// client's encoding and decoding included (client and server share the
// process, so allocs/op counts both).
func BenchmarkFetchSession(b *testing.B) {
	n := startNode(b, nil)
	const parts = 1000
	n.createTopic("bench", parts)
	// Open every partition first (each takes its leadership in etcd), so
	// the fetches measure the steady state.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := w; p < parts; p += 8 {
				if _, err := n.tier.Partition(context.Background(), topicPartition("bench", int32(p))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	all := make([]fetchAt, parts)
	for p := range all {
		all[p] = fetchAt{topic: "bench", p: int32(p)}
	}
	mkReq := func(id, epoch int32, named bool) *kmsg.FetchRequest {
		var req *kmsg.FetchRequest
		if named {
			req = sessionReq(12, id, epoch, 0, all...)
		} else {
			req = sessionReq(12, id, epoch, 0)
		}
		req.MinBytes = 0
		return req
	}
	handler := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		r := &request{arrived: time.Now()}
		resp := n.srv.fetch(context.Background(), r, req).(*kmsg.FetchResponse)
		n.srv.fetchBudget.release(r.reserved, true)
		return resp
	}
	answeredParts := func(resp *kmsg.FetchResponse) int {
		k := 0
		for _, t := range resp.Topics {
			k += len(t.Partitions)
		}
		return k
	}
	check := func(resp *kmsg.FetchResponse, wantParts int) {
		if resp.ErrorCode != 0 || answeredParts(resp) != wantParts {
			b.Fatalf("error %d, %d partitions answered, want %d", resp.ErrorCode, answeredParts(resp), wantParts)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					b.Fatalf("partition %d: error %d", p.Partition, p.ErrorCode)
				}
			}
		}
	}

	b.Run("full/handler", func(b *testing.B) {
		req := mkReq(0, -1, true) // the handler changes only its MaxBytes
		b.ReportAllocs()
		for b.Loop() {
			check(handler(req), parts)
		}
	})
	b.Run("incremental/handler", func(b *testing.B) {
		open := handler(mkReq(0, 0, true))
		check(open, parts)
		epoch := int32(0)
		b.ReportAllocs()
		for b.Loop() {
			epoch++
			check(handler(mkReq(open.SessionID, epoch, false)), 0)
		}
		n.srv.fetchSessions.remove(open.SessionID)
	})
	b.Run("full/wire", func(b *testing.B) {
		c := dial(b, n.addr)
		req := mkReq(0, -1, true)
		b.ReportAllocs()
		for b.Loop() {
			_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
			check(roundTrip[*kmsg.FetchResponse](c, req), parts)
		}
	})
	b.Run("incremental/wire", func(b *testing.B) {
		c := dial(b, n.addr)
		open := roundTrip[*kmsg.FetchResponse](c, mkReq(0, 0, true))
		check(open, parts)
		epoch := int32(0)
		b.ReportAllocs()
		for b.Loop() {
			epoch++
			_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
			check(roundTrip[*kmsg.FetchResponse](c, mkReq(open.SessionID, epoch, false)), 0)
		}
	})
}
