package ingest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of the framing layer. Each closes the connection: Kafka has no way
// to answer a request it could not parse.
var (
	errFrameSize          = errors.New("ingest: request size out of range")
	errShortHeader        = errors.New("ingest: truncated request header")
	errUnknownKey         = errors.New("ingest: unknown api key")
	errUnsupportedVersion = errors.New("ingest: unsupported api version")
	errBadBody            = errors.New("ingest: malformed request body")
)

// request is one parsed request.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID *string
	// body is the parsed request; nil only for an ApiVersions request at a
	// version we do not serve, whose body we never parse (KIP-511: the
	// client may have used a layout we do not know).
	body kmsg.Request
	// size is the frame size including its 4-byte length, for metrics.
	size int
	// arrived is when the frame was read: produce and fetch deadlines
	// count from here, as Kafka's do.
	arrived time.Time
	// remote is the client's address (host:port), for DescribeGroups.
	remote string
	// who sent it, for the authorizer (set only when it is enabled).
	who caller
	// listener is the name of the listener it came in on (KIP-951 node
	// addresses); fetchTopics are a Fetch's topics before the authorizer
	// took the denied ones out (fetch sessions keep those too).
	listener    string
	fetchTopics []kmsg.FetchRequestTopic
	// budgeted is set once a Fetch holds a reservation of the fetch
	// budget, reserved bytes of it, until its response is written (see
	// byteBudget).
	budgeted bool
	reserved int64
}

// keepFetchBytes trims a fetch's reservation to what its response holds.
func (c *conn) keepFetchBytes(r *request, resp kmsg.Response) {
	if !r.budgeted {
		return
	}
	held := int64(fetchBytes(resp))
	c.s.fetchBudget.release(r.reserved-held, false)
	r.reserved = held
}

// endFetch gives a fetch's reservation back.
func (c *conn) endFetch(r *request) {
	if r.budgeted {
		c.s.fetchBudget.release(r.reserved, true)
		r.budgeted, r.reserved = false, 0
	}
}

// readFrame reads one size-prefixed frame from r. A size below zero or above
// max is errFrameSize: the body is not read, the connection must close.
func readFrame(r io.Reader, max int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sz[:]))
	if size < 0 || size > max {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", errFrameSize, size, max)
	}
	// Grow the buffer as bytes arrive rather than trusting the size: a
	// client announcing MaxRequestBytes and sending nothing must not cost
	// that much memory per connection.
	frame := make([]byte, 0, min(int(size), frameChunk))
	for len(frame) < int(size) {
		if len(frame) == cap(frame) {
			frame = slices.Grow(frame, min(int(size), 2*cap(frame))-len(frame))
		}
		n, err := io.ReadFull(r, frame[len(frame):min(cap(frame), int(size))])
		frame = frame[:len(frame)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return frame, nil
}

// frameChunk is the first allocation for a request frame; larger frames
// double it as their bytes arrive.
const frameChunk = 256 << 10

// parseRequest parses a request header (v1, or v2 when the version is
// flexible) and, for a key and version we serve, the body with kmsg. The
// returned request's body aliases nothing of frame that kmsg copies, but
// record batches (Produce) do alias frame: frame must not be reused.
func parseRequest(frame []byte) (*request, error) {
	if len(frame) < 10 { // key, version, correlation id, client id length
		return nil, errShortHeader
	}
	be := binary.BigEndian
	r := &request{
		key:     int16(be.Uint16(frame[0:])),
		version: int16(be.Uint16(frame[2:])),
		corr:    int32(be.Uint32(frame[4:])),
		size:    len(frame) + 4,
	}
	rest := frame[8:]
	// The client id is a legacy nullable string even in the flexible
	// header v2, so that any broker can read it.
	idLen := int16(be.Uint16(rest))
	rest = rest[2:]
	switch {
	case idLen == -1:
	case idLen < -1 || int(idLen) > len(rest):
		return nil, fmt.Errorf("%w: client id length %d", errShortHeader, idLen)
	default:
		id := string(rest[:idLen])
		r.clientID = &id
		rest = rest[idLen:]
	}

	if _, known := served[r.key]; !known {
		return r, fmt.Errorf("%w %d (version %d)", errUnknownKey, r.key, r.version)
	}
	body := kmsg.RequestForKey(r.key)
	body.SetVersion(r.version)

	if r.key == int16(kmsg.ApiVersions) && !isServed(r.key, r.version) {
		// KIP-511: answer with a v0 body whatever the client sent, so the
		// client learns our range and retries. Kafka parses the header as
		// v2 for versions >= 3; we skip its tags if they parse and ignore
		// them otherwise, since the body is never read.
		return r, nil
	}
	if !isServed(r.key, r.version) {
		return r, fmt.Errorf("%w: %s v%d", errUnsupportedVersion, kmsg.NameForKey(r.key), r.version)
	}
	if body.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return r, err
		}
	}
	if !skimBody(body, rest) {
		return r, fmt.Errorf("%w: %s v%d: malformed or oversized lengths, counts or tagged fields", errBadBody, kmsg.NameForKey(r.key), r.version)
	}
	if err := body.ReadFrom(rest); err != nil {
		return r, fmt.Errorf("%w: %s v%d: %v", errBadBody, kmsg.NameForKey(r.key), r.version, err)
	}
	r.body = body
	return r, nil
}

// skipTags skips a tagged-field section (KIP-482) and returns what follows.
// Unlike kmsg.SkipTags it stops at the first malformed tag, so a huge tag
// count in a short header cannot spin.
func skipTags(b []byte) ([]byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for ; n > 0; n-- {
		if _, b, err = uvarint(b); err != nil { // tag
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tagged field of %d bytes", errShortHeader, size)
		}
		b = b[size:]
	}
	return b, nil
}

// uvarint decodes an unsigned varint of at most 5 bytes (a uint32, as Kafka
// writes them).
func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n > 5 {
		return 0, nil, fmt.Errorf("%w: bad varint in tagged fields", errShortHeader)
	}
	return v, b[n:], nil
}

// appendResponse appends a framed response (size, correlation id, header
// tags, body) to dst. ApiVersions responses never carry header tags, even
// when flexible: clients parse them before they know what we speak.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0) // size, filled below
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		dst = append(dst, 0) // empty tagged-field section
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// pending is a response owed to the client, in request order. Either resp
// is ready, or later computes it (waiting for durability or for fetchable
// data) on the connection's writer goroutine.
type pending struct {
	req   *request
	resp  kmsg.Response
	later func(ctx context.Context) kmsg.Response
	// last: close the connection once this response is written (a
	// failed SASL authentication).
	last bool
}

// conn is one client connection. The reader goroutine parses requests and
// runs their synchronous part in order (so a partition's appends keep the
// order the client sent them in); the writer goroutine resolves and writes
// responses in the same order. inflight bounds the requests between the two.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	log    *slog.Logger

	// ctx is cancelled when the client is gone or Close gives up waiting:
	// handlers stop waiting and nothing more is written.
	ctx    context.Context
	cancel context.CancelFunc

	queue    chan *pending // reader → writer, in request order
	inflight chan struct{} // one token per request not yet answered

	// auth is the listener and authentication state (reader only).
	auth connAuth
	// mutedUntil (unix nanoseconds) is when the reader may read again
	// after a quota throttle.
	mutedUntil atomic.Int64

	closeOnce sync.Once
}

func newConn(s *Server, nc net.Conn, l Listener) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	remote := nc.RemoteAddr().String()
	n := s.cfg.MaxInFlightPerConn
	return &conn{
		auth:     connAuth{listener: l, principal: anonymous, authenticated: !l.usesSASL()},
		s:        s,
		nc:       nc,
		remote:   remote,
		log:      s.log.With("remote", remote),
		ctx:      ctx,
		cancel:   cancel,
		queue:    make(chan *pending, n),
		inflight: make(chan struct{}, n),
	}
}

// close tears the connection down at once: used when the client is gone,
// a write failed, or Close stopped waiting.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

// stopReading makes a blocked read return so the reader notices the server
// is draining; requests already read are still answered.
func (c *conn) stopReading() {
	_ = c.nc.SetReadDeadline(time.Now())
}

// readLoop reads, parses and dispatches requests until the client goes
// away, sends something we cannot serve, or the server drains.
func (c *conn) readLoop() {
	defer close(c.queue) // the writer answers what was queued, then closes
	if !c.handshake() {
		c.close()
		return
	}
	br := bufio.NewReaderSize(c.nc, 32<<10)
	for {
		select {
		case <-c.s.draining:
			return
		default:
		}
		// Take a token before reading so at most MaxInFlightPerConn
		// requests are held in memory, parsed or not.
		select {
		case c.inflight <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		if d := c.s.cfg.IdleTimeout; d > 0 && br.Buffered() == 0 {
			// Until the next request starts; the drain's own deadline
			// (stopReading) may replace it.
			_ = c.nc.SetReadDeadline(time.Now().Add(d))
			select {
			case <-c.s.draining: // Close began meanwhile: its deadline wins
				_ = c.nc.SetReadDeadline(time.Now())
			default:
			}
		}
		if until := c.mutedUntil.Load(); until > 0 {
			// Throttled for a quota: read nothing more until then.
			if d := time.Until(time.Unix(0, until)); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.ctx.Done():
				case <-c.s.draining:
				}
				t.Stop()
			}
		}
		frame, err := readFrame(br, c.s.cfg.MaxRequestBytes)
		if err != nil {
			c.readFailed(err)
			return
		}
		arrived := time.Now()
		c.s.m.bytesIn.Add(float64(len(frame) + 4))
		req, err := parseRequest(frame)
		if err != nil {
			c.log.Info("closing connection: unparseable request", "err", err, "client_id", clientID(req))
			return
		}
		req.arrived = arrived
		req.remote = c.remote
		req.listener = c.auth.listener.Name
		c.s.m.requested(req.key)
		if !c.auth.authenticated && !saslAllowedBefore(req.key) {
			c.log.Info("closing connection: request before SASL authentication", "api", kmsg.NameForKey(req.key), "listener", c.auth.listener.Name, "client_id", clientID(req))
			return
		}
		var (
			resp  kmsg.Response
			later func(context.Context) kmsg.Response
			last  bool
		)
		switch body := req.body.(type) {
		case *kmsg.SASLHandshakeRequest:
			resp = c.saslHandshake(body)
		case *kmsg.SASLAuthenticateRequest:
			resp, last = c.saslAuthenticate(body)
		default:
			if c.s.authz.cfg.Enabled {
				req.who = c.caller()
				if f, ok := req.body.(*kmsg.FetchRequest); ok {
					req.fetchTopics = f.Topics
				}
			}
			resp, later, err = c.s.dispatchAuthorized(c.ctx, req)
			if err != nil {
				c.log.Error("closing connection", "err", err)
				return
			}
			if resp != nil {
				c.s.onListener(c.auth.listener.Name, resp)
			}
		}
		if resp == nil && later == nil { // acks=0 produce: never answered
			c.s.m.answered(req.key, arrived)
			<-c.inflight
			continue
		}
		select {
		case c.queue <- &pending{req: req, resp: resp, later: later, last: last}:
		case <-c.ctx.Done():
			return
		}
		if last {
			return // nothing after it is read; the writer closes
		}
	}
}

// readFailed logs why reading stopped and decides whether the queued
// responses can still be delivered.
func (c *conn) readFailed(err error) {
	select {
	case <-c.s.draining:
		return // Close: answer what was read, then close
	default:
	}
	switch {
	case errors.Is(err, errFrameSize):
		c.log.Warn("closing connection: request frame too large", "err", err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		// The client closed the connection: nobody reads our answers.
		c.close()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("closing connection: idle", "timeout", c.s.cfg.IdleTimeout)
		c.close()
	default:
		c.log.Debug("closing connection: read failed", "err", err)
		c.close()
	}
}

// writeLoop resolves queued responses in order and writes them. It returns
// once the reader has stopped and every queued response is written or
// abandoned, and closes the connection.
func (c *conn) writeLoop() {
	defer c.close()
	bufp := c.s.bufs.Get().(*[]byte)
	defer func() { c.s.putBuf(bufp) }()
	for p := range c.queue {
		if c.ctx.Err() != nil {
			<-c.inflight
			continue // the client is gone: drain so the reader is not stuck
		}
		resp := p.resp
		if p.later != nil {
			resp = p.later(c.ctx)
		}
		if resp == nil || c.ctx.Err() != nil {
			c.endFetch(p.req)
			<-c.inflight
			continue
		}
		// Until written, a fetch holds only what its response holds.
		c.keepFetchBytes(p.req, resp)
		if d := c.throttle(p.req, resp); d > 0 {
			c.mutedUntil.Store(time.Now().Add(d).UnixNano())
		}
		// A fetch response is mostly its record bytes: one allocation of
		// about the right size, not a doubling per megabyte (growing it
		// was a tenth of a profile of consumers on the hot tier).
		if n := fetchBytes(resp); n > 0 {
			*bufp = slices.Grow((*bufp)[:0], n+fetchOverhead(resp))
		}
		*bufp = appendResponse((*bufp)[:0], p.req.corr, resp)
		if d := c.s.cfg.IdleTimeout; d > 0 {
			// A client that takes nothing for that long is gone or
			// hostile: it must not hold its buffer (and fetch budget).
			_ = c.nc.SetWriteDeadline(time.Now().Add(d))
		}
		_, err := c.nc.Write(*bufp)
		c.endFetch(p.req)
		c.s.m.answered(p.req.key, p.req.arrived)
		if err != nil {
			c.log.Debug("closing connection: write failed", "err", err)
			c.close()
		} else {
			c.s.m.bytesOut.Add(float64(len(*bufp)))
			if p.last {
				c.close()
			}
		}
		// Do not let one huge fetch response pin its buffer for the
		// life of an idle connection.
		if cap(*bufp) > maxKeptBuffer {
			c.s.putBuf(bufp)
			bufp = c.s.bufs.Get().(*[]byte)
		}
		<-c.inflight
	}
}

// maxKeptBuffer is the largest response buffer a connection keeps between
// responses or returns to the pool.
const maxKeptBuffer = 1 << 20

// clientHost is the client's address as Kafka shows it in DescribeGroups:
// "/" and the IP.
func clientHost(r *request) string {
	if r == nil || r.remote == "" {
		return ""
	}
	host, _, err := net.SplitHostPort(r.remote)
	if err != nil {
		return ""
	}
	return "/" + host
}

// clientID formats a request's client id for logs.
func clientID(r *request) string {
	if r == nil || r.clientID == nil {
		return ""
	}
	return *r.clientID
}

// fetchBytes is the record bytes a Fetch response holds (0 for others).
func fetchBytes(resp kmsg.Response) int {
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 0
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches)
		}
	}
	return n
}

// fetchOverhead bounds what a Fetch response holds besides its record
// bytes: per topic its name or id, per partition its fixed fields and
// aborted transactions.
func fetchOverhead(resp kmsg.Response) int {
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 256
	for _, t := range fr.Topics {
		n += 64 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 96 + 16*len(p.AbortedTransactions)
		}
	}
	return n
}
