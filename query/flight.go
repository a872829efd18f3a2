package query

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials"
	"log/slog"
	"net"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-io/strata/metadata"
)

// DefaultFlightBatchBytes is the Flight server's default byte bound per
// batch. Each batch travels as one gRPC message and gRPC clients refuse
// messages over 4 MiB unless told otherwise, so batches stay below that.
const DefaultFlightBatchBytes = 3 << 20

// FlightConfig configures a FlightServer.
type FlightConfig struct {
	// Location is the URI endpoints point at, e.g. grpc+tcp://127.0.0.1:9645:
	// this server's own address, because any node serves any partition
	// (reads come from the object store).
	Location string
	// Batch bounds the batches DoGet sends; MaxBytes 0 means
	// DefaultFlightBatchBytes.
	Batch BatchOptions
	// TLS serves Flight over TLS (grpc+tls://) when set.
	TLS *tls.Config
	// Authorize, when set, decides whether the caller of ctx may read
	// topic; it returns a gRPC status error (Unauthenticated,
	// PermissionDenied) to refuse. GetFlightInfo, GetSchema and DoGet
	// call it; ListFlights lists only the topics it allows.
	Authorize func(ctx context.Context, topic string) error
}

// FlightServer serves topics over Arrow Flight:
//
//   - GetFlightInfo takes a descriptor that is either a path [topic] or a
//     JSON command (FlightCommand) and answers with one endpoint per
//     selected partition, each with a ticket for that partition's offsets as
//     resolved now (so reading the tickets later reads exactly the records
//     that were durable when the flight was planned) and TotalRecords when no
//     time bound makes the count unknowable in advance.
//   - DoGet streams the ticket's record batches (Schema).
//   - ListFlights lists every topic as path descriptor with open-ended
//     tickets, which read up to the high watermark at DoGet time.
//   - GetSchema returns Schema for a valid descriptor.
type FlightServer struct {
	flight.BaseFlightServer
	r      *Reader
	cfg    FlightConfig
	logger *slog.Logger
	grpc   *grpc.Server
	schema []byte // Schema serialized once
	// closing is cancelled by Close so running DoGet streams end at once
	// instead of holding GracefulStop.
	closing context.Context
	stop    context.CancelFunc
}

// FlightCommand is the JSON a CMD descriptor carries, e.g.
//
//	{"topic":"orders","partitions":[0,2],"from":100,"to":200}
//	{"topic":"orders","start_time":"2026-01-02T00:00:00Z","end_time":1767398400000}
//
// Times are RFC 3339 strings or milliseconds since the epoch.
type FlightCommand struct {
	Topic      string          `json:"topic"`
	Partition  *int32          `json:"partition,omitempty"`
	Partitions []int32         `json:"partitions,omitempty"`
	From       int64           `json:"from,omitempty"`
	To         int64           `json:"to,omitempty"`
	StartTime  json.RawMessage `json:"start_time,omitempty"`
	EndTime    json.RawMessage `json:"end_time,omitempty"`
	// Decode "json" adds typed columns inferred from JSON values when the
	// flight is planned; every endpoint then carries that schema.
	Decode string `json:"decode,omitempty"`
}

// ticket is what a Flight ticket holds: one partition's range. To nil means
// the high watermark when DoGet runs.
type ticket struct {
	V         int    `json:"v"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	To        *int64 `json:"to,omitempty"`
	StartMs   *int64 `json:"start_ms,omitempty"`
	EndMs     *int64 `json:"end_ms,omitempty"`
	// JSON describes the JSON columns, when decoding.
	JSON []*jsonCol `json:"json,omitempty"`
}

const ticketVersion = 1

// NewFlightServer returns a Flight server reading through r. Serve it on a
// listener; Close stops it. A nil logger discards.
func NewFlightServer(r *Reader, cfg FlightConfig, logger *slog.Logger) *FlightServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Batch.MaxBytes <= 0 {
		cfg.Batch.MaxBytes = DefaultFlightBatchBytes
	}
	s := &FlightServer{r: r, cfg: cfg, logger: logger, schema: flight.SerializeSchema(Schema, memory.DefaultAllocator)}
	s.closing, s.stop = context.WithCancel(context.Background())
	var opts []grpc.ServerOption
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	flight.RegisterFlightServiceServer(s.grpc, s)
	return s
}

// authorize applies cfg.Authorize, if any.
func (s *FlightServer) authorize(ctx context.Context, topic string) error {
	if s.cfg.Authorize == nil {
		return nil
	}
	return s.cfg.Authorize(ctx, topic)
}

// Serve accepts Flight connections on ln until Close; it returns nil after
// Close.
func (s *FlightServer) Serve(ln net.Listener) error {
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Close stops accepting, ends running DoGet streams (their clients see
// Canceled), lets other calls finish until ctx is done, then cuts them off.
// It returns once every call has ended.
func (s *FlightServer) Close(ctx context.Context) error {
	s.stop()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return nil
	}
}

// grpcError turns a read error into a gRPC status.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	var c codes.Code
	switch {
	case errors.Is(err, ErrInvalidRange):
		c = codes.InvalidArgument
	case errors.Is(err, ErrUnknownTopic), errors.Is(err, ErrUnknownPartition):
		c = codes.NotFound
	case errors.Is(err, ErrIndexBehind):
		c = codes.Unavailable
	case errors.Is(err, context.Canceled):
		c = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		c = codes.DeadlineExceeded
	default:
		c = codes.Internal
	}
	return status.Error(c, err.Error())
}

// ParseFlightDescriptor turns a descriptor (a path [topic] or a JSON
// FlightCommand) into a Request.
func ParseFlightDescriptor(d *flight.FlightDescriptor) (Request, error) {
	if d == nil {
		return Request{}, fmt.Errorf("%w: no flight descriptor", ErrInvalidRange)
	}
	switch d.Type {
	case flight.DescriptorPATH:
		if len(d.Path) != 1 || d.Path[0] == "" {
			return Request{}, fmt.Errorf("%w: a path descriptor is [topic], got %q", ErrInvalidRange, d.Path)
		}
		return Request{Topic: d.Path[0]}, nil
	case flight.DescriptorCMD:
		return parseCommand(d.Cmd)
	default:
		return Request{}, fmt.Errorf("%w: unsupported descriptor type %v", ErrInvalidRange, d.Type)
	}
}

func parseCommand(b []byte) (Request, error) {
	var cmd FlightCommand
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		return Request{}, fmt.Errorf("%w: command is not a JSON object of topic, partition(s), from, to, start_time, end_time: %v", ErrInvalidRange, err)
	}
	if cmd.Topic == "" {
		return Request{}, fmt.Errorf("%w: command has no topic", ErrInvalidRange)
	}
	req := Request{Topic: cmd.Topic, Partitions: cmd.Partitions, Range: Range{From: cmd.From, To: cmd.To}}
	var err error
	if req.Decode, err = parseDecode(cmd.Decode); err != nil {
		return Request{}, err
	}
	if cmd.Partition != nil {
		req.Partitions = append(req.Partitions, *cmd.Partition)
	}
	for _, p := range req.Partitions {
		if p < 0 {
			return Request{}, fmt.Errorf("%w: partition %d is negative", ErrInvalidRange, p)
		}
	}
	if req.Range.StartTime, err = commandTime("start_time", cmd.StartTime); err != nil {
		return Request{}, err
	}
	if req.Range.EndTime, err = commandTime("end_time", cmd.EndTime); err != nil {
		return Request{}, err
	}
	return req, req.Range.Validate()
}

// commandTime parses a JSON time: an RFC 3339 string or a number of ms.
func commandTime(name string, raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %v", ErrInvalidRange, name, err)
		}
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// partitionsOf lists the partitions a request selects.
func (s *FlightServer) partitionsOf(req Request) ([]int32, error) {
	if err := s.r.checkRequest(req); err != nil {
		return nil, err
	}
	if len(req.Partitions) > 0 {
		return req.Partitions, nil
	}
	t, err := s.r.Topic(req.Topic)
	if err != nil {
		return nil, err
	}
	ps := make([]int32, t.Partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	return ps, nil
}

func (s *FlightServer) endpoint(t ticket) (*flight.FlightEndpoint, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	ep := &flight.FlightEndpoint{Ticket: &flight.Ticket{Ticket: b}}
	if s.cfg.Location != "" {
		ep.Location = []*flight.Location{{Uri: s.cfg.Location}}
	}
	return ep, nil
}

func msPtr(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// GetFlightInfo plans a read: one endpoint per partition, with the
// partition's offsets resolved against its committed state now.
func (s *FlightServer) GetFlightInfo(ctx context.Context, d *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	req, err := ParseFlightDescriptor(d)
	if err != nil {
		return nil, grpcError(err)
	}
	if err := s.authorize(ctx, req.Topic); err != nil {
		return nil, err
	}
	parts, err := s.partitionsOf(req)
	if err != nil {
		return nil, grpcError(err)
	}
	timed := !req.Range.StartTime.IsZero() || !req.Range.EndTime.IsZero()
	info := &flight.FlightInfo{Schema: s.schema, FlightDescriptor: d, TotalBytes: -1}
	var jsonCols []*jsonCol
	if req.Decode == "json" {
		fields, err := s.inferJSON(ctx, req, parts)
		if err != nil {
			return nil, grpcError(err)
		}
		info.Schema = flight.SerializeSchema(SchemaWithJSON(fields), memory.DefaultAllocator)
		jsonCols = ticketJSON(fields)
	}
	for _, p := range parts {
		b, err := s.r.Resolve(ctx, metadata.TP{Topic: req.Topic, Partition: p}, req.Range)
		if err != nil {
			return nil, grpcError(err)
		}
		to := max(b.To, b.From)
		ep, err := s.endpoint(ticket{V: ticketVersion, Topic: req.Topic, Partition: p, From: b.From, To: &to,
			StartMs: msPtr(req.Range.StartTime), EndMs: msPtr(req.Range.EndTime), JSON: jsonCols})
		if err != nil {
			return nil, grpcError(err)
		}
		info.Endpoint = append(info.Endpoint, ep)
		info.TotalRecords += to - b.From
	}
	if timed {
		info.TotalRecords = -1
	}
	return info, nil
}

// inferJSON samples the planned partitions' values for the JSON columns.
func (s *FlightServer) inferJSON(ctx context.Context, req Request, parts []int32) ([]arrow.Field, error) {
	sample, err := s.r.SampleValues(ctx, req.Topic, parts, req.Range, DefaultJSONSample)
	if err != nil {
		return nil, err
	}
	return InferJSON(sample), nil
}

// GetSchema returns the schema GetFlightInfo would plan for the descriptor:
// Schema, plus the inferred JSON columns when the command asks to decode.
func (s *FlightServer) GetSchema(ctx context.Context, d *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	req, err := ParseFlightDescriptor(d)
	if err != nil {
		return nil, grpcError(err)
	}
	if err := s.authorize(ctx, req.Topic); err != nil {
		return nil, err
	}
	parts, err := s.partitionsOf(req)
	if err != nil {
		return nil, grpcError(err)
	}
	if req.Decode == "json" {
		fields, err := s.inferJSON(ctx, req, parts)
		if err != nil {
			return nil, grpcError(err)
		}
		return &flight.SchemaResult{Schema: flight.SerializeSchema(SchemaWithJSON(fields), memory.DefaultAllocator)}, nil
	}
	return &flight.SchemaResult{Schema: s.schema}, nil
}

// ListFlights lists every topic with one open-ended endpoint per partition.
// Criteria, when given, is a topic-name prefix.
func (s *FlightServer) ListFlights(c *flight.Criteria, stream flight.FlightService_ListFlightsServer) error {
	prefix := ""
	if c != nil {
		prefix = string(c.Expression)
	}
	for _, t := range s.r.Topics() {
		if len(t.Name) < len(prefix) || t.Name[:len(prefix)] != prefix {
			continue
		}
		if err := s.authorize(stream.Context(), t.Name); err != nil {
			if status.Code(err) == codes.Unauthenticated {
				return err
			}
			continue // not allowed: not listed
		}
		info := &flight.FlightInfo{
			Schema:           s.schema,
			FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{t.Name}},
			TotalRecords:     -1,
			TotalBytes:       -1,
		}
		for p := range t.Partitions {
			ep, err := s.endpoint(ticket{V: ticketVersion, Topic: t.Name, Partition: p})
			if err != nil {
				return grpcError(err)
			}
			info.Endpoint = append(info.Endpoint, ep)
		}
		if err := stream.Send(info); err != nil {
			return err
		}
	}
	return nil
}

// parseTicket decodes and checks a ticket from GetFlightInfo or
// ListFlights.
func parseTicket(b []byte) (ticket, Range, error) {
	var t ticket
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, Range{}, fmt.Errorf("%w: ticket is not one this server issued: %v", ErrInvalidRange, err)
	}
	if t.V != ticketVersion || t.Topic == "" || t.Partition < 0 || t.From < 0 || t.To != nil && *t.To < 0 {
		return t, Range{}, fmt.Errorf("%w: ticket is not one this server issued", ErrInvalidRange)
	}
	rg := Range{From: t.From}
	if t.To != nil {
		rg.To = *t.To
	}
	if t.StartMs != nil {
		rg.StartTime = time.UnixMilli(*t.StartMs).UTC()
	}
	if t.EndMs != nil {
		rg.EndTime = time.UnixMilli(*t.EndMs).UTC()
	}
	return t, rg, nil
}

// DoGet streams one ticket's partition range.
func (s *FlightServer) DoGet(tk *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	start := time.Now()
	t, rg, err := parseTicket(tk.GetTicket())
	if err != nil {
		return grpcError(err)
	}
	if err := s.authorize(stream.Context(), t.Topic); err != nil {
		return err
	}
	req := Request{Topic: t.Topic, Partitions: []int32{t.Partition}}
	if err := s.r.checkRequest(req); err != nil {
		return grpcError(err)
	}
	opts := s.cfg.Batch
	if len(t.JSON) > 0 {
		if opts.JSON, err = jsonFieldsFromTicket(t.JSON); err != nil {
			return grpcError(err)
		}
	}
	w := flight.NewRecordWriter(stream, ipc.WithSchema(SchemaWithJSON(opts.JSON)))
	var rows int64
	// A planned range that was empty (To == From) has nothing to read; Range
	// would read it as open-ended.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	if t.To == nil || *t.To > t.From {
		_, err = s.r.ScanArrow(ctx, t.Topic, req.Partitions, rg, opts, func(rec arrow.RecordBatch) error {
			rows += rec.NumRows()
			return w.Write(rec)
		})
		if err != nil {
			s.logger.Warn("query: flight DoGet failed", "topic", t.Topic, "partition", t.Partition, "rows", rows, "err", err)
			return grpcError(err)
		}
	}
	s.logger.Debug("query: flight DoGet served", "topic", t.Topic, "partition", t.Partition, "rows", rows, "took", time.Since(start))
	return w.Close()
}

// jsonCol describes one JSON column inside a ticket. Tickets come back from
// clients, so the description is plain JSON checked on the way in (Arrow's
// own schema decoder trusts its input's lengths).
type jsonCol struct {
	Name string    `json:"n"`
	Key  string    `json:"k,omitempty"` // the JSON key, when not Name
	Type *jsonDesc `json:"t"`
}

// jsonDesc is a column type: bool, int64, float64, utf8, struct (F) or
// list (E).
type jsonDesc struct {
	T string     `json:"t"`
	F []*jsonCol `json:"f,omitempty"`
	E *jsonDesc  `json:"e,omitempty"`
}

func describeJSON(t arrow.DataType) *jsonDesc {
	switch t := t.(type) {
	case *arrow.BooleanType:
		return &jsonDesc{T: "bool"}
	case *arrow.Int64Type:
		return &jsonDesc{T: "int64"}
	case *arrow.Float64Type:
		return &jsonDesc{T: "float64"}
	case *arrow.StructType:
		d := &jsonDesc{T: "struct"}
		for _, f := range t.Fields() {
			d.F = append(d.F, &jsonCol{Name: f.Name, Type: describeJSON(f.Type)})
		}
		return d
	case *arrow.ListType:
		return &jsonDesc{T: "list", E: describeJSON(t.Elem())}
	}
	return &jsonDesc{T: "utf8"}
}

func (d *jsonDesc) arrowType(depth int) (arrow.DataType, error) {
	if d == nil || depth > maxJSONDepth+1 {
		return nil, fmt.Errorf("%w: ticket's JSON columns are malformed", ErrInvalidRange)
	}
	switch d.T {
	case "bool":
		return arrow.FixedWidthTypes.Boolean, nil
	case "int64":
		return arrow.PrimitiveTypes.Int64, nil
	case "float64":
		return arrow.PrimitiveTypes.Float64, nil
	case "utf8":
		return arrow.BinaryTypes.String, nil
	case "list":
		et, err := d.E.arrowType(depth + 1)
		if err != nil {
			return nil, err
		}
		return arrow.ListOf(et), nil
	case "struct":
		if len(d.F) == 0 || len(d.F) > maxJSONColumns {
			return nil, fmt.Errorf("%w: ticket's JSON columns are malformed", ErrInvalidRange)
		}
		fs := make([]arrow.Field, len(d.F))
		for i, c := range d.F {
			if c == nil {
				return nil, fmt.Errorf("%w: ticket's JSON columns are malformed", ErrInvalidRange)
			}
			ct, err := c.Type.arrowType(depth + 1)
			if err != nil {
				return nil, err
			}
			fs[i] = arrow.Field{Name: c.Name, Type: ct, Nullable: true}
		}
		return arrow.StructOf(fs...), nil
	}
	return nil, fmt.Errorf("%w: ticket's JSON columns have unknown type %q", ErrInvalidRange, d.T)
}

// ticketJSON describes JSON columns for a ticket.
func ticketJSON(fields []arrow.Field) []*jsonCol {
	out := make([]*jsonCol, len(fields))
	for i, f := range fields {
		c := &jsonCol{Name: f.Name, Type: describeJSON(f.Type)}
		if k := jsonKey(f); k != f.Name {
			c.Key = k
		}
		out[i] = c
	}
	return out
}

// jsonFieldsFromTicket rebuilds the JSON columns a ticket describes.
func jsonFieldsFromTicket(cols []*jsonCol) ([]arrow.Field, error) {
	if len(cols) > maxJSONColumns {
		return nil, fmt.Errorf("%w: ticket has %d JSON columns", ErrInvalidRange, len(cols))
	}
	seen := map[string]bool{}
	for _, f := range Schema.Fields() {
		seen[f.Name] = true
	}
	out := make([]arrow.Field, len(cols))
	for i, c := range cols {
		if c == nil || seen[c.Name] {
			return nil, fmt.Errorf("%w: ticket's JSON columns are malformed", ErrInvalidRange)
		}
		seen[c.Name] = true
		t, err := c.Type.arrowType(0)
		if err != nil {
			return nil, err
		}
		key := c.Key
		if key == "" {
			key = c.Name
		}
		out[i] = arrow.Field{Name: c.Name, Type: t, Nullable: true,
			Metadata: arrow.NewMetadata([]string{jsonKeyMeta}, []string{key})}
	}
	return out, nil
}
