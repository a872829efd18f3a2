package query

import (
	"encoding/json"
	"net/http"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
)

// CompactionReport is what GET /v1/topics/{topic}/compaction answers.
type CompactionReport struct {
	Topic         string                `json:"topic"`
	CleanupPolicy string                `json:"cleanup_policy"`
	Partitions    []PartitionCompaction `json:"partitions"`
}

// PartitionCompaction is one partition's compaction progress and cost.
type PartitionCompaction struct {
	Partition      int32 `json:"partition"`
	HighWatermark  int64 `json:"high_watermark"`
	LogStartOffset int64 `json:"log_start_offset"`
	metadata.CompactionState
}

// serveCompaction answers GET /v1/topics/{topic}/compaction: each
// partition's compaction state from etcd (where the compactor has reached,
// when it last ran, and what it cost), as JSON.
func (h *httpHandler) serveCompaction(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("topic")
	t, err := h.r.Topic(name)
	if err != nil {
		http.Error(w, err.Error(), httpStatus(err))
		return
	}
	policy := t.Configs["cleanup.policy"]
	if policy == "" {
		s, _ := topiccfg.Lookup("cleanup.policy")
		policy = s.Default
	}
	rep := CompactionReport{Topic: name, CleanupPolicy: policy}
	for p := int32(0); p < t.Partitions; p++ {
		tp := metadata.TP{Topic: name, Partition: p}
		st, err := h.r.meta.Compaction(req.Context(), tp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		ps, err := h.r.meta.PartitionState(req.Context(), tp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rep.Partitions = append(rep.Partitions, PartitionCompaction{Partition: p, HighWatermark: ps.DurableOffset, LogStartOffset: ps.LogStartOffset, CompactionState: st})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}
