package console

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest"
	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier"
	"github.com/strata-io/strata/tier/objstore"
)

//go:embed static
var static embed.FS

// Config is what the console reads and talks to. Every field is required
// but Logger.
type Config struct {
	NodeID int32
	Meta   *metadata.Store
	Server *ingest.Server
	Tier   *tier.Tier
	Reader *query.Reader
	Bucket objstore.BucketReader
	// KafkaAddr is this node's Kafka listener; the console's admin and
	// produce requests go there.
	KafkaAddr string
	Logger    *slog.Logger
	// PeerTLS is the TLS client configuration for other nodes' HTTPS
	// servers (their registered address starts with https://).
	PeerTLS *tls.Config
	// Authorize decides whether the request's caller may do op on a
	// resource (the node's ACLs); nil allows everything.
	Authorize func(r *http.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool
}

// Console serves the web console and its API.
type Console struct {
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	http *http.Client

	clMu   sync.Mutex
	cl     *kgo.Client
	closed bool

	storeMu      sync.Mutex
	storeChecked time.Time
	storeStatus  storeStatus
}

// New returns the console for one node.
func New(cfg Config) *Console {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.PeerTLS
	c := &Console{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), http: &http.Client{Timeout: 2 * time.Second, Transport: tr}}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sub, _ := fs.Sub(static, "static")
	files := http.FileServer(http.FS(sub))
	c.mux.Handle("GET /{$}", files)
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	c.mux.HandleFunc("GET /console/api/cluster", c.api(c.cluster))
	c.mux.HandleFunc("GET /console/api/topics", c.api(c.topics))
	c.mux.HandleFunc("POST /console/api/topics", c.api(c.createTopic))
	c.mux.HandleFunc("GET /console/api/topics/{topic}", c.api(c.topic))
	c.mux.HandleFunc("DELETE /console/api/topics/{topic}", c.api(c.deleteTopic))
	c.mux.HandleFunc("PUT /console/api/topics/{topic}/configs", c.api(c.alterConfigs))
	c.mux.HandleFunc("GET /console/api/topics/{topic}/records", c.api(c.records))
	c.mux.HandleFunc("POST /console/api/topics/{topic}/records", c.api(c.produce))
	c.mux.HandleFunc("GET /console/api/groups", c.api(c.groups))
	c.mux.HandleFunc("GET /console/api/groups/{group}", c.api(c.group))
	c.mux.HandleFunc("POST /console/api/groups/{group}/reset", c.api(c.reset))
	c.mux.HandleFunc("GET /console/api/node/partitions", c.api(c.nodePartitions))
	c.mux.HandleFunc("GET /console/api/node/lag/{group}", c.api(c.nodeLag))
	c.mux.HandleFunc("/console/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such console API: " + r.Method + " " + r.URL.Path})
	})
	return c
}

// ServeHTTP serves the page, its files and the API.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// Close closes the console's Kafka client.
func (c *Console) Close() {
	c.clMu.Lock()
	defer c.clMu.Unlock()
	c.closed = true
	if c.cl != nil {
		c.cl.Close()
		c.cl = nil
	}
}

// client is the console's Kafka client to its own node, made on first use.
func (c *Console) client() (*kgo.Client, error) {
	c.clMu.Lock()
	defer c.clMu.Unlock()
	if c.closed {
		return nil, errors.New("the node is shutting down")
	}
	if c.cl == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seed()), kgo.ClientID("strata-console"), kgo.RequestRetries(3),
			kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(20*time.Second))
		if err != nil {
			return nil, err
		}
		c.cl = cl
	}
	return c.cl, nil
}

// apiError is every API error's body.
type apiError struct {
	Error string `json:"error"`
}

// httpErr is an error with the status the API answers it with.
type httpErr struct {
	status int
	msg    string
}

func (e *httpErr) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpErr{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpErr{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// api wraps a handler returning a value (answered as JSON) or an error
// (answered as {"error": ...} with a status that fits it).
func (c *Console) api(h func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		v, err := h(r.WithContext(ctx))
		if err != nil {
			status := http.StatusBadGateway
			var he *httpErr
			var ke *kerr.Error
			switch {
			case errors.As(err, &he):
				status = he.status
			case errors.Is(err, ErrGroupNotEmpty):
				status = http.StatusConflict
			case errors.Is(err, ErrGroupNotFound), errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.GroupIDNotFound), errors.Is(err, query.ErrUnknownTopic):
				status = http.StatusNotFound
			case errors.As(err, &ke) && !ke.Retriable:
				status = http.StatusBadRequest
			case errors.Is(err, context.DeadlineExceeded):
				status = http.StatusGatewayTimeout
			}
			if status >= 500 {
				c.log.Warn("console: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeJSON(w, status, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

// decodeBody reads a JSON request body of at most 1 MiB into v.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad request body: %v", err)
	}
	return nil
}

// ---- cluster ----

type nodeView struct {
	ID    int32    `json:"id"`
	Kafka string   `json:"kafka"`
	HTTP  string   `json:"http,omitempty"`
	Self  bool     `json:"self"`
	Leads []string `json:"leads"` // "topic/partition"
	// Ready is the node's /readyz answer ("ready", or why not), or why it
	// could not be asked.
	Ready string `json:"ready"`
}

type storeStatus struct {
	OK        bool    `json:"ok"`
	Error     string  `json:"error,omitempty"`
	LatencyMs float64 `json:"latency_ms"`
	Checked   string  `json:"checked"`
}

type clusterView struct {
	NodeID     int32      `json:"node_id"`
	Nodes      []nodeView `json:"nodes"`
	Topics     int        `json:"topics"`
	Partitions int        `json:"partitions"`
	Leaderless []string   `json:"leaderless"`
	Etcd       struct {
		OK          bool     `json:"ok"`
		Error       string   `json:"error,omitempty"`
		DBSize      int64    `json:"db_size"`
		DBSizeInUse int64    `json:"db_size_in_use"`
		Alarms      []string `json:"alarms"`
		Checked     string   `json:"checked"`
	} `json:"etcd"`
	ObjectStore storeStatus `json:"object_store"`
}

func (c *Console) cluster(r *http.Request) (any, error) {
	if !c.may(r, kmsg.ACLOperationDescribe, clusterRes, clusterID) {
		return nil, forbidden(r, "DESCRIBE the cluster")
	}
	var v clusterView
	v.NodeID = c.cfg.NodeID
	nodes := c.cfg.Meta.Nodes()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	idx := map[int32]int{}
	for _, n := range nodes {
		idx[n.ID] = len(v.Nodes)
		v.Nodes = append(v.Nodes, nodeView{ID: n.ID, Kafka: net.JoinHostPort(n.Host, strconv.Itoa(int(n.Port))), HTTP: n.HTTP,
			Self: n.ID == c.cfg.NodeID, Leads: []string{}})
	}
	v.Leaderless = []string{}
	for _, t := range c.cfg.Meta.Topics() {
		v.Topics++
		for p := int32(0); p < t.Partitions; p++ {
			v.Partitions++
			name := fmt.Sprintf("%s/%d", t.Name, p)
			l, ok := c.cfg.Meta.Leader(metadata.TP{Topic: t.Name, Partition: p})
			if i, live := idx[l.NodeID]; ok && live {
				v.Nodes[i].Leads = append(v.Nodes[i].Leads, name)
			} else {
				v.Leaderless = append(v.Leaderless, name)
			}
		}
	}
	var wg sync.WaitGroup
	for i := range v.Nodes {
		wg.Add(1)
		go func(n *nodeView) {
			defer wg.Done()
			n.Ready = c.ready(r.Context(), n)
		}(&v.Nodes[i])
	}
	h := c.cfg.Meta.EtcdHealth()
	v.Etcd.OK = h.Err == nil && !h.Checked.IsZero() && len(h.Alarms) == 0
	if h.Err != nil {
		v.Etcd.Error = h.Err.Error()
	}
	v.Etcd.DBSize, v.Etcd.DBSizeInUse, v.Etcd.Alarms = h.DBSize, h.DBSizeInUse, append([]string{}, h.Alarms...)
	if !h.Checked.IsZero() {
		v.Etcd.Checked = h.Checked.UTC().Format(time.RFC3339)
	}
	v.ObjectStore = c.checkStore(r.Context())
	wg.Wait()
	return v, nil
}

// ready asks a node's /readyz.
func (c *Console) ready(ctx context.Context, n *nodeView) string {
	if n.HTTP == "" {
		return "unknown: the node has no HTTP address"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(n.HTTP)+"/readyz", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "unreachable: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.TrimSpace(string(b))
}

// checkStore stats a key that does not exist (not found is the healthy
// answer), at most every 5 s.
func (c *Console) checkStore(ctx context.Context) storeStatus {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	if time.Since(c.storeChecked) < 5*time.Second {
		return c.storeStatus
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.cfg.Bucket.Stat(ctx, "strata-console-probe")
	st := storeStatus{OK: err == nil || errors.Is(err, objstore.ErrNotFound), LatencyMs: float64(time.Since(start).Microseconds()) / 1000,
		Checked: time.Now().UTC().Format(time.RFC3339)}
	if !st.OK {
		st.Error = err.Error()
	}
	c.storeChecked, c.storeStatus = time.Now(), st
	return st
}

// baseURL is a registered HTTP address as a URL: "host:port" is plain
// HTTP, a node serving TLS registers "https://host:port".
func baseURL(addr string) string {
	if strings.HasPrefix(addr, "https://") || strings.HasPrefix(addr, "http://") {
		return addr
	}
	return "http://" + addr
}

// ---- per-node figures ----

// NodePartition is one partition a node leads, with its traffic there.
type NodePartition struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	LeaderEpoch    int32  `json:"leader_epoch"`
	LogStartOffset int64  `json:"log_start"`
	HighWatermark  int64  `json:"high_watermark"`
	LastStable     int64  `json:"last_stable"`
	LogEnd         int64  `json:"log_end"`
	HotBytes       int64  `json:"hot_bytes"`
	HotSegments    int    `json:"hot_segments"`
	OpenTxns       int    `json:"open_txns"`
	BytesIn        int64  `json:"bytes_in"`
	RecordsIn      int64  `json:"records_in"`
	BytesOut       int64  `json:"bytes_out"`
	RecordsOut     int64  `json:"records_out"`
}

type nodePartitions struct {
	NodeID     int32           `json:"node_id"`
	Time       int64           `json:"time_ms"`
	Partitions []NodePartition `json:"partitions"`
}

func (c *Console) local(topic string) nodePartitions {
	out := nodePartitions{NodeID: c.cfg.NodeID, Time: time.Now().UnixMilli(), Partitions: []NodePartition{}}
	traffic := map[metadata.TP]ingest.PartitionCounts{}
	for _, t := range c.cfg.Server.Traffic() {
		traffic[t.TP] = t
	}
	for _, s := range c.cfg.Tier.Stats() {
		if topic != "" && s.TP.Topic != topic {
			continue
		}
		t := traffic[s.TP]
		out.Partitions = append(out.Partitions, NodePartition{Topic: s.TP.Topic, Partition: s.TP.Partition, LeaderEpoch: s.LeaderEpoch,
			LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark, LastStable: s.LastStable, LogEnd: s.LogEnd,
			HotBytes: s.HotBytes, HotSegments: s.HotSegments, OpenTxns: s.OpenTxns,
			BytesIn: t.BytesIn, RecordsIn: t.RecordsIn, BytesOut: t.BytesOut, RecordsOut: t.RecordsOut})
	}
	return out
}

func (c *Console) nodePartitions(r *http.Request) (any, error) {
	topic := r.URL.Query().Get("topic")
	if c.cfg.Authorize != nil && (topic == "" || !c.may(r, kmsg.ACLOperationDescribe, topicRes, topic)) {
		return nil, forbidden(r, "DESCRIBE topic "+topic)
	}
	return c.local(topic), nil
}

func (c *Console) nodeLag(r *http.Request) (any, error) {
	if !c.may(r, kmsg.ACLOperationDescribe, groupRes, r.PathValue("group")) {
		return nil, forbidden(r, "DESCRIBE group "+r.PathValue("group"))
	}
	h, ok := c.cfg.Server.GroupLag(r.PathValue("group"))
	if !ok {
		return nil, notFound("node %d has no lag samples of group %s", c.cfg.NodeID, r.PathValue("group"))
	}
	return h, nil
}

// peerJSON GETs path from node n (or answers locally for this node).
func (c *Console) peerJSON(in *http.Request, n metadata.Node, path string, v any) error {
	if n.HTTP == "" {
		return fmt.Errorf("node %d has no HTTP address", n.ID)
	}
	req, err := http.NewRequestWithContext(in.Context(), http.MethodGet, baseURL(n.HTTP)+path, nil)
	if err != nil {
		return err
	}
	// The other node checks the same caller: pass the credentials on.
	if h := in.Header.Get("Authorization"); h != "" {
		req.Header.Set("Authorization", h)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e apiError
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return fmt.Errorf("node %d: %s: %s", n.ID, resp.Status, e.Error)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
}

// ---- topics ----

type topicSummary struct {
	Name          string            `json:"name"`
	ID            string            `json:"id"`
	Partitions    int32             `json:"partitions"`
	Configs       map[string]string `json:"configs"`
	Records       int64             `json:"records"` // high watermark minus first indexed offset, summed
	ObjectBytes   int64             `json:"object_bytes"`
	IndexEntries  int               `json:"index_entries"`
	HighWatermark int64             `json:"high_watermark"` // summed over partitions
}

func (c *Console) summary(t metadata.Topic) topicSummary {
	s := topicSummary{Name: t.Name, ID: t.ID.String(), Partitions: t.Partitions, Configs: t.Configs}
	if s.Configs == nil {
		s.Configs = map[string]string{}
	}
	for p := int32(0); p < t.Partitions; p++ {
		if sum, ok := c.cfg.Meta.IndexSummary(metadata.TP{Topic: t.Name, Partition: p}); ok {
			s.Records += sum.End - sum.Start
			s.ObjectBytes += sum.Bytes
			s.IndexEntries += sum.Entries
			s.HighWatermark += sum.End
		}
	}
	return s
}

func (c *Console) topics(r *http.Request) (any, error) {
	ts := c.cfg.Meta.Topics()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	out := make([]topicSummary, 0, len(ts))
	for _, t := range ts {
		if c.may(r, kmsg.ACLOperationDescribe, topicRes, t.Name) {
			out = append(out, c.summary(t))
		}
	}
	return out, nil
}

type createTopicBody struct {
	Name       string            `json:"name"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs"`
}

func (c *Console) createTopic(r *http.Request) (any, error) {
	var b createTopicBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if b.Name == "" {
		return nil, badRequest("a topic needs a name")
	}
	if b.Partitions <= 0 {
		return nil, badRequest("partitions must be at least 1, not %d", b.Partitions)
	}
	if !c.may(r, kmsg.ACLOperationCreate, clusterRes, clusterID) && !c.may(r, kmsg.ACLOperationCreate, topicRes, b.Name) {
		return nil, forbidden(r, "CREATE topic "+b.Name)
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = b.Name
	rt.NumPartitions = b.Partitions
	rt.ReplicationFactor = -1
	keys := make([]string, 0, len(b.Configs))
	for k := range b.Configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cc := kmsg.NewCreateTopicsRequestTopicConfig()
		cc.Name = k
		cc.Value = kmsg.StringPtr(b.Configs[k])
		rt.Configs = append(rt.Configs, cc)
	}
	req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
	resp, err := req.RequestWith(r.Context(), cl)
	if err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, kafkaErr(err, t.ErrorMessage)
		}
	}
	return map[string]string{"created": b.Name}, nil
}

// kafkaErr joins a Kafka error code with the broker's message, if any.
func kafkaErr(err error, msg *string) error {
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

func (c *Console) deleteTopic(r *http.Request) (any, error) {
	name := r.PathValue("topic")
	if !c.may(r, kmsg.ACLOperationDelete, topicRes, name) {
		return nil, forbidden(r, "DELETE topic "+name)
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 15000
	req.TopicNames = []string{name}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = []kmsg.DeleteTopicsRequestTopic{rt}
	resp, err := req.RequestWith(r.Context(), cl)
	if err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, kafkaErr(err, t.ErrorMessage)
		}
	}
	return map[string]string{"deleted": name}, nil
}

type configView struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Default   bool   `json:"default"`
	Sensitive bool   `json:"sensitive,omitempty"`
	ReadOnly  bool   `json:"read_only,omitempty"`
}

// PartitionView is one partition on the topic page.
type PartitionView struct {
	Partition     int32          `json:"partition"`
	Leader        int32          `json:"leader"` // -1: none
	LogStart      int64          `json:"log_start"`
	HighWatermark int64          `json:"high_watermark"`
	ObjectBytes   int64          `json:"object_bytes"`
	Objects       int            `json:"objects"`
	IndexEntries  int            `json:"index_entries"`
	Local         *NodePartition `json:"local,omitempty"` // from the leader: hot tier and traffic
	LocalError    string         `json:"local_error,omitempty"`
}

type topicView struct {
	topicSummary
	AllConfigs []configView    `json:"all_configs"`
	Parts      []PartitionView `json:"partition_details"`
	Time       int64           `json:"time_ms"`
}

func (c *Console) topic(r *http.Request) (any, error) {
	name := r.PathValue("topic")
	t, ok := c.cfg.Meta.Topic(name)
	if !c.may(r, kmsg.ACLOperationDescribe, topicRes, name) {
		return nil, forbidden(r, "DESCRIBE topic "+name)
	}
	if !ok {
		return nil, notFound("no topic %q", name)
	}
	v := topicView{topicSummary: c.summary(t), Time: time.Now().UnixMilli(), Parts: []PartitionView{}, AllConfigs: []configView{}}
	// Per partition from the index, then each leader's own figures.
	leaders := map[int32][]int{}
	for p := int32(0); p < t.Partitions; p++ {
		tp := metadata.TP{Topic: name, Partition: p}
		pv := PartitionView{Partition: p, Leader: -1}
		if l, ok := c.cfg.Meta.Leader(tp); ok && c.cfg.Meta.NodeLive(l.NodeID) {
			pv.Leader = l.NodeID
			leaders[l.NodeID] = append(leaders[l.NodeID], len(v.Parts))
		}
		if sum, ok := c.cfg.Meta.IndexSummary(tp); ok {
			pv.LogStart, pv.HighWatermark = sum.Start, sum.End
			pv.ObjectBytes, pv.Objects, pv.IndexEntries = sum.Bytes, sum.Objects, sum.Entries
		}
		v.Parts = append(v.Parts, pv)
	}
	nodes := map[int32]metadata.Node{}
	for _, n := range c.cfg.Meta.Nodes() {
		nodes[n.ID] = n
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, idxs := range leaders {
		wg.Add(1)
		go func(id int32, idxs []int) {
			defer wg.Done()
			var np nodePartitions
			var err error
			if id == c.cfg.NodeID {
				np = c.local(name)
			} else {
				err = c.peerJSON(r, nodes[id], "/console/api/node/partitions?topic="+urlQueryEscape(name), &np)
			}
			byPart := map[int32]NodePartition{}
			for _, p := range np.Partitions {
				byPart[p.Partition] = p
			}
			mu.Lock()
			defer mu.Unlock()
			for _, i := range idxs {
				pv := &v.Parts[i]
				if err != nil {
					pv.LocalError = err.Error()
					continue
				}
				if lp, ok := byPart[pv.Partition]; ok {
					lp := lp
					pv.Local = &lp
					// The leader knows the latest high watermark and log
					// start; the index may trail it by a watch event.
					pv.HighWatermark, pv.LogStart = lp.HighWatermark, lp.LogStartOffset
				}
			}
		}(id, idxs)
	}
	wg.Wait()
	if !c.may(r, kmsg.ACLOperationDescribeConfigs, topicRes, name) {
		// The configs stay hidden; the rest of the page is there.
	} else if cfgs, err := c.describeConfigs(r.Context(), name); err == nil {
		v.AllConfigs = cfgs
	} else {
		c.log.Debug("console: describe configs", "topic", name, "err", err)
	}
	return v, nil
}

func (c *Console) describeConfigs(ctx context.Context, topic string) ([]configView, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeTopic
	rr.ResourceName = topic
	req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var out []configView
	for _, res := range resp.Resources {
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			return nil, kafkaErr(err, res.ErrorMessage)
		}
		for _, cf := range res.Configs {
			cv := configView{Name: cf.Name, Sensitive: cf.IsSensitive, ReadOnly: cf.ReadOnly,
				Default: cf.Source == kmsg.ConfigSourceDefaultConfig || cf.Source == kmsg.ConfigSourceStaticBrokerConfig}
			if cf.Value != nil {
				cv.Value = *cf.Value
			}
			out = append(out, cv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type alterConfigsBody struct {
	// Set maps config names to new values; Delete lists configs to
	// return to their defaults.
	Set    map[string]string `json:"set"`
	Delete []string          `json:"delete"`
}

func (c *Console) alterConfigs(r *http.Request) (any, error) {
	name := r.PathValue("topic")
	if !c.may(r, kmsg.ACLOperationAlterConfigs, topicRes, name) {
		return nil, forbidden(r, "ALTER_CONFIGS of topic "+name)
	}
	var b alterConfigsBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if len(b.Set)+len(b.Delete) == 0 {
		return nil, badRequest("nothing to change: give set or delete")
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeTopic
	rr.ResourceName = name
	keys := make([]string, 0, len(b.Set))
	for k := range b.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cf := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cf.Name, cf.Value, cf.Op = k, kmsg.StringPtr(b.Set[k]), kmsg.IncrementalAlterConfigOpSet
		rr.Configs = append(rr.Configs, cf)
	}
	for _, k := range b.Delete {
		cf := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cf.Name, cf.Op = k, kmsg.IncrementalAlterConfigOpDelete
		rr.Configs = append(rr.Configs, cf)
	}
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{rr}
	resp, err := req.RequestWith(r.Context(), cl)
	if err != nil {
		return nil, err
	}
	for _, res := range resp.Resources {
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			return nil, kafkaErr(err, res.ErrorMessage)
		}
	}
	return map[string]string{"altered": name}, nil
}

// ---- records ----

// Record is one record as the live tail shows it. Key and Value are text
// when they are valid UTF-8, else base64 with the Base64 flag set.
type Record struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp_ms"`
	Key       *string  `json:"key"`
	Value     *string  `json:"value"`
	Binary    bool     `json:"binary,omitempty"`
	Headers   []header `json:"headers"`
}

type header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type recordsView struct {
	Records []Record `json:"records"`
	// Next is, per partition, the offset to ask for next.
	Next map[string]int64 `json:"next"`
}

// records reads committed records straight from the object store index:
// ?from=P:O,P:O (per partition; a partition not named starts at its high
// watermark minus ?last, default 0) and at most ?limit records (default 100,
// at most 1000) in all.
func (c *Console) records(r *http.Request) (any, error) {
	name := r.PathValue("topic")
	if !c.may(r, kmsg.ACLOperationRead, topicRes, name) {
		return nil, forbidden(r, "READ topic "+name)
	}
	t, ok := c.cfg.Meta.Topic(name)
	if !ok {
		return nil, notFound("no topic %q", name)
	}
	q := r.URL.Query()
	limit, last := 100, int64(0)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 1000 {
			return nil, badRequest("limit %q: want 1 to 1000", s)
		}
		limit = n
	}
	if s := q.Get("last"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 1000 {
			return nil, badRequest("last %q: want 0 to 1000", s)
		}
		last = n
	}
	from := map[int32]int64{}
	if s := q.Get("from"); s != "" {
		for _, part := range strings.Split(s, ",") {
			ps, os, ok := strings.Cut(part, ":")
			p, err1 := strconv.ParseInt(ps, 10, 32)
			o, err2 := strconv.ParseInt(os, 10, 64)
			if !ok || err1 != nil || err2 != nil || o < 0 || p < 0 || int32(p) >= t.Partitions {
				return nil, badRequest("from %q: want partition:offset pairs of partitions 0 to %d", part, t.Partitions-1)
			}
			from[int32(p)] = o
		}
	}
	out := recordsView{Records: []Record{}, Next: map[string]int64{}}
	for p := int32(0); p < t.Partitions; p++ {
		tp := metadata.TP{Topic: name, Partition: p}
		start, ok := from[p]
		if !ok {
			b, err := c.cfg.Reader.Resolve(r.Context(), tp, query.Range{})
			if err != nil {
				return nil, err
			}
			start = max(b.HighWatermark-last, b.LogStartOffset)
		}
		next := start
		if len(out.Records) < limit {
			stop := errors.New("enough")
			_, err := c.cfg.Reader.Scan(r.Context(), tp, query.Range{From: start}, func(rec *kbatch.Record) error {
				out.Records = append(out.Records, toRecord(p, rec))
				next = rec.Offset + 1
				if len(out.Records) >= limit {
					return stop
				}
				return nil
			})
			if err != nil && !errors.Is(err, stop) {
				return nil, err
			}
		}
		out.Next[strconv.Itoa(int(p))] = next
	}
	return out, nil
}

func text(b []byte) (*string, bool) {
	if b == nil {
		return nil, false
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, false
	}
	s := base64Std(b)
	return &s, true
}

func toRecord(p int32, rec *kbatch.Record) Record {
	out := Record{Partition: p, Offset: rec.Offset, Timestamp: rec.Timestamp, Headers: []header{}}
	var bk, bv bool
	out.Key, bk = text(rec.Key)
	out.Value, bv = text(rec.Value)
	out.Binary = bk || bv
	for _, h := range rec.Headers {
		v, _ := text(h.Value)
		hv := ""
		if v != nil {
			hv = *v
		}
		out.Headers = append(out.Headers, header{Key: h.Key, Value: hv})
	}
	return out
}

type produceBody struct {
	Key       *string           `json:"key"`
	Value     *string           `json:"value"`
	Headers   map[string]string `json:"headers"`
	Partition *int32            `json:"partition"`
}

func (c *Console) produce(r *http.Request) (any, error) {
	name := r.PathValue("topic")
	if !c.may(r, kmsg.ACLOperationWrite, topicRes, name) {
		return nil, forbidden(r, "WRITE to topic "+name)
	}
	t, ok := c.cfg.Meta.Topic(name)
	if !ok {
		return nil, notFound("no topic %q", name)
	}
	var b produceBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	rec := &kgo.Record{Topic: name}
	if b.Key != nil {
		rec.Key = []byte(*b.Key)
	}
	if b.Value != nil {
		rec.Value = []byte(*b.Value)
	}
	for k, v := range b.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	sort.Slice(rec.Headers, func(i, j int) bool { return rec.Headers[i].Key < rec.Headers[j].Key })
	if b.Partition != nil {
		if *b.Partition < 0 || *b.Partition >= t.Partitions {
			return nil, badRequest("partition %d: topic %s has partitions 0 to %d", *b.Partition, name, t.Partitions-1)
		}
		rec.Partition = *b.Partition
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	if b.Partition != nil {
		// The shared client hashes keys; a fixed partition needs its own.
		pc, err := kgo.NewClient(kgo.SeedBrokers(c.seed()), kgo.ClientID("strata-console"), kgo.ProducerLinger(0),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(20*time.Second))
		if err != nil {
			return nil, err
		}
		defer pc.Close()
		cl = pc
	}
	res := cl.ProduceSync(r.Context(), rec)
	if err := res.FirstErr(); err != nil {
		return nil, err
	}
	got := res[0].Record
	return map[string]any{"partition": got.Partition, "offset": got.Offset}, nil
}

// seed is the address of this node's Kafka listener to dial (loopback when
// it listens on every interface).
func (c *Console) seed() string {
	addr := c.cfg.KafkaAddr
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	return addr
}

// ---- groups ----

type groupSummary struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func (c *Console) groups(r *http.Request) (any, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListGroupsRequest()
	shards := cl.RequestSharded(r.Context(), req)
	out := []groupSummary{}
	for _, sh := range shards {
		if sh.Err != nil {
			return nil, sh.Err
		}
		resp := sh.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, err
		}
		for _, g := range resp.Groups {
			if c.may(r, kmsg.ACLOperationDescribe, groupRes, g.Group) {
				out = append(out, groupSummary{Name: g.Group, State: g.GroupState, ProtocolType: g.ProtocolType})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type groupView struct {
	Group
	// History is the group's lag over the last hour, from the node that
	// coordinates it (sampled every 10 s by default).
	History      []ingest.LagSample `json:"history"`
	HistoryError string             `json:"history_error,omitempty"`
	Coordinator  int32              `json:"coordinator"`
}

func (c *Console) group(r *http.Request) (any, error) {
	name := r.PathValue("group")
	if !c.may(r, kmsg.ACLOperationDescribe, groupRes, name) {
		return nil, forbidden(r, "DESCRIBE group "+name)
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	g, err := DescribeGroup(r.Context(), cl, name)
	if err != nil {
		return nil, err
	}
	v := groupView{Group: g, History: []ingest.LagSample{}, Coordinator: -1}
	if g.Members == nil {
		v.Members = []Member{}
	}
	if g.Partitions == nil {
		v.Partitions = []GroupPartition{}
	}
	if n, ok := c.cfg.Meta.AssignedNodeFor("group/" + name); ok {
		v.Coordinator = n.ID
		var h []ingest.LagSample
		if n.ID == c.cfg.NodeID {
			h, _ = c.cfg.Server.GroupLag(name)
		} else if err := c.peerJSON(r, n, "/console/api/node/lag/"+urlPathEscape(name), &h); err != nil {
			v.HistoryError = err.Error()
		}
		for i := range h {
			if i < len(h)-1 {
				h[i].Partitions = nil
			}
		}
		if h != nil {
			v.History = h
		}
	}
	return v, nil
}

type resetBody struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
	ResetTarget
}

func (c *Console) reset(r *http.Request) (any, error) {
	name := r.PathValue("group")
	var b resetBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if b.Topic == "" {
		return nil, badRequest("name the topic whose offsets to reset")
	}
	if _, ok := c.cfg.Meta.Topic(b.Topic); !ok {
		return nil, notFound("no topic %q", b.Topic)
	}
	if !c.may(r, kmsg.ACLOperationRead, groupRes, name) || !c.may(r, kmsg.ACLOperationRead, topicRes, b.Topic) {
		return nil, forbidden(r, "reset group "+name+"'s offsets of topic "+b.Topic+" (it needs READ on both)")
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	offsets, err := ResetOffsets(r.Context(), cl, name, b.Topic, b.Partitions, b.ResetTarget)
	if err != nil {
		var ke *kerr.Error
		if errors.Is(err, ErrGroupNotEmpty) || errors.As(err, &ke) {
			return nil, err
		}
		return nil, badRequest("%v", err)
	}
	// The coordinator samples lag again soon; the page shows offsets now.
	out := map[string]int64{}
	for p, o := range offsets {
		out[strconv.Itoa(int(p))] = o
	}
	return map[string]any{"group": name, "topic": b.Topic, "offsets": out}, nil
}
