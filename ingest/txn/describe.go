package txn

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// DescribeTransactions describes the ids this node coordinates; others are
// NOT_COORDINATOR and unknown ones TRANSACTIONAL_ID_NOT_FOUND.
func (c *Coordinator) DescribeTransactions(ctx context.Context, req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		ts.ProducerID, ts.ProducerEpoch = -1, -1
		if !c.owns(id) {
			ts.ErrorCode = kerr.NotCoordinator.Code
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		st, found, err := c.store.GetTxn(ctx, id)
		switch {
		case err != nil:
			ts.ErrorCode = c.storeCode("describe", id, err)
		case !found:
			ts.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			ts.State = st.State
			ts.TimeoutMillis = st.TimeoutMs
			ts.StartTimestamp = -1
			if st.State == metadata.TxnOngoing || st.State == metadata.TxnPrepareCommit || st.State == metadata.TxnPrepareAbort {
				ts.StartTimestamp = st.StartMs
			}
			ts.ProducerID, ts.ProducerEpoch = st.ProducerID, st.ProducerEpoch
			byTopic := map[string][]int32{}
			var names []string
			for _, tp := range st.Partitions {
				if _, ok := byTopic[tp.Topic]; !ok {
					names = append(names, tp.Topic)
				}
				byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
			}
			sort.Strings(names)
			for _, n := range names {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = n
				t.Partitions = byTopic[n]
				slices.Sort(t.Partitions)
				ts.Topics = append(ts.Topics, t)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}

// ListTransactions lists the ids this node coordinates, filtered by state,
// producer id and (v1+) the least time running.
func (c *Coordinator) ListTransactions(ctx context.Context, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	known := []string{metadata.TxnEmpty, metadata.TxnOngoing, metadata.TxnPrepareCommit, metadata.TxnPrepareAbort, metadata.TxnCompleteCommit, metadata.TxnCompleteAbort}
	var states []string
	for _, f := range req.StateFilters {
		if slices.Contains(known, f) {
			states = append(states, f)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return resp
	}
	if c.cfg.Serving != nil && !c.cfg.Serving() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	sts, err := c.store.ListTxns(ctx)
	if err != nil {
		resp.ErrorCode = c.storeCode("list", "", err)
		return resp
	}
	now := time.Now().UnixMilli()
	for _, st := range sts {
		if !c.owns(st.TransactionalID) ||
			len(states) > 0 && !slices.Contains(states, st.State) ||
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, st.ProducerID) ||
			req.DurationFilterMillis > 0 && (st.State != metadata.TxnOngoing || now-st.StartMs < req.DurationFilterMillis) {
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = st.TransactionalID, st.ProducerID, st.State
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}
