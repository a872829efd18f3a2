package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

// validFrames returns one encoded request per served key and version, with
// default bodies, plus ApiVersions at versions we do not serve.
func validFrames() [][]byte {
	var frames [][]byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("seed"))
	for key, r := range served {
		for v := r.min; v <= r.max; v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			frames = append(frames, f.AppendRequest(nil, req, int32(v))[4:])
		}
	}
	for _, v := range []int16{5, 99, -1} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		frames = append(frames, f.AppendRequest(nil, req, 1)[4:])
	}
	return frames
}

func TestParseRequestServedVersions(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("me"))
	for key, r := range served {
		for v := r.advertisedMin - 1; v <= r.max+1; v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			frame := f.AppendRequest(nil, req, 42)[4:]
			got, err := parseRequest(frame)
			wantServed := v >= r.min && v <= r.max
			switch {
			case wantServed && err != nil:
				t.Errorf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			case wantServed && (got.body == nil || got.corr != 42 || got.clientID == nil || *got.clientID != "me"):
				t.Errorf("%s v%d: parsed %+v", kmsg.NameForKey(key), v, got)
			case !wantServed && key == int16(kmsg.ApiVersions):
				if err != nil || got.body != nil {
					t.Errorf("ApiVersions v%d: err %v, body %v; want a bodiless request for the v0 downgrade", v, err, got.body)
				}
			case !wantServed && !errors.Is(err, errUnsupportedVersion):
				t.Errorf("%s v%d: err %v, want errUnsupportedVersion", kmsg.NameForKey(key), v, err)
			}
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	header := func(key, version int16, idLen int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 7)
		return binary.BigEndian.AppendUint16(b, uint16(idLen))
	}
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, errShortHeader},
		{"short header", []byte{0, 18, 0, 0, 0, 0, 0}, errShortHeader},
		{"client id past the end", header(18, 0, 5), errShortHeader},
		{"client id length below -1", header(18, 0, -2), errShortHeader},
		{"unknown key", header(1000, 0, -1), errUnknownKey},
		{"key we do not serve", header(int16(kmsg.ControlledShutdown), 3, -1), errUnknownKey},
		{"produce v2 (advertised, refused as in Kafka 4.0)", header(0, 2, -1), errUnsupportedVersion},
		{"metadata above max", header(3, 14, -1), errUnsupportedVersion},
		{"flexible header without tags", header(3, 12, -1), errShortHeader},
		{"flexible header, tag past the end", append(header(3, 12, -1), 1, 0, 5, 1), errShortHeader},
		{"huge header tag count", append(header(3, 12, -1), 0xff, 0xff, 0xff, 0xff, 0x0f), errShortHeader},
		{"truncated body", append(header(3, 1, -1), 0, 0, 0, 5), errBadBody},
		{"ApiVersions v3 tag-count spin", append(header(18, 3, -1), 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f), errBadBody},
		{"array count larger than the body", append(header(3, 1, -1), 0x7f, 0xff, 0xff, 0xff), errBadBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := parseRequest(tt.frame)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	frame := func(size int32, body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(size)), body...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"ok", frame(3, []byte{1, 2, 3}), nil},
		{"empty input", nil, io.EOF},
		{"negative size", frame(-1, nil), errFrameSize},
		{"too large", frame(101, make([]byte, 101)), errFrameSize},
		{"truncated body", frame(10, []byte{1}), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tt.in), 100)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// Frames larger than the first chunk are read whole, byte for byte,
	// and one cut short is an error.
	for _, size := range []int{frameChunk - 1, frameChunk, frameChunk + 1, 3*frameChunk + 17} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		got, err := readFrame(bytes.NewReader(frame(int32(size), body)), 1<<30)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: err %v, equal %v", size, err, bytes.Equal(got, body))
		}
		if _, err := readFrame(bytes.NewReader(frame(int32(size), body[:size-1])), 1<<30); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("size %d cut short: err %v", size, err)
		}
	}
}

// FuzzReadRequest feeds arbitrary bytes to the framing and header parser:
// it must never panic or spin, and return either an error or a request
// whose body is set (ApiVersions at an unserved version excepted).
func FuzzReadRequest(f *testing.F) {
	for _, fr := range validFrames() {
		f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(fr))), fr...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			frame, err := readFrame(r, 1<<20)
			if err != nil {
				return
			}
			req, err := parseRequest(frame)
			if err != nil {
				continue
			}
			if req.body == nil && (req.key != int16(kmsg.ApiVersions) || isServed(req.key, req.version)) {
				t.Fatalf("no body and no error for key %d v%d", req.key, req.version)
			}
		}
	})
}

// FuzzSkim checks skim against kmsg on arbitrary bodies of every served
// key and version: skim never panics, and whatever it accepts kmsg parses
// quickly.
func FuzzSkim(f *testing.F) {
	for _, fr := range validFrames() {
		key, v := int16(binary.BigEndian.Uint16(fr)), int16(binary.BigEndian.Uint16(fr[2:]))
		if !isServed(key, v) {
			continue
		}
		req, err := parseRequest(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(key, v, req.body.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, v int16, body []byte) {
		if !isServed(key, v) {
			return
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(v)
		if !skimBody(req, body) {
			return
		}
		start := time.Now()
		_ = req.ReadFrom(body)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("kmsg took %v on a skimmed %s v%d body", d, kmsg.NameForKey(key), v)
		}
	})
}

// TestSkimAcceptsWhatKmsgEncodes fills requests of every served key and
// version with random values (tagged fields included), encodes them with
// kmsg and checks skim walks each exactly to its end: skim must never refuse
// a body a client could send.
func TestSkimAcceptsWhatKmsgEncodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for key := range int16(93) {
		probe := kmsg.RequestForKey(key)
		if probe == nil || !skimWith(&skimmer{}, probe) {
			if _, ok := served[key]; ok {
				t.Errorf("%s is served but has no skim", kmsg.NameForKey(key))
			}
			continue
		}
		r, ok := served[key]
		if !ok { // skimmed ahead of being served: check every version
			r = versionRange{min: 0, max: probe.MaxVersion()}
		}
		for v := r.min; v <= r.max; v++ {
			for i := range 200 {
				req := kmsg.RequestForKey(key)
				fill(rng, reflect.ValueOf(req).Elem(), 0)
				req.SetVersion(v)
				body := req.AppendTo(nil)
				s := &skimmer{b: body, flex: req.IsFlexible()}
				skimWith(s, req)
				if s.bad || len(s.b) != 0 {
					t.Fatalf("%s v%d case %d: skim bad=%v with %d of %d bytes left", kmsg.NameForKey(key), v, i, s.bad, len(s.b), len(body))
				}
				again := kmsg.RequestForKey(key)
				again.SetVersion(v)
				if err := again.ReadFrom(body); err != nil {
					t.Fatalf("%s v%d: kmsg cannot read its own encoding: %v", kmsg.NameForKey(key), v, err)
				}
			}
		}
	}
}

var tagsType = reflect.TypeFor[kmsg.Tags]()

// fill sets v to random values: small arrays, short strings, nil or set
// pointers, and a few unknown tagged fields on every struct.
func fill(rng *rand.Rand, v reflect.Value, depth int) {
	if v.Type() == tagsType {
		tags := v.Addr().Interface().(*kmsg.Tags)
		for range rng.IntN(3) {
			tags.Set(uint32(100+rng.IntN(1000)), randBytes(rng))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() && v.Type().Field(i).Name != "Version" {
				fill(rng, f, depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if rng.IntN(4) > 0 {
				v.SetBytes(randBytes(rng))
			}
			return
		}
		n := 0
		if depth < 6 {
			n = rng.IntN(4)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(rng, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(rng, v.Index(i), depth+1)
		}
	case reflect.Pointer:
		if rng.IntN(3) > 0 {
			p := reflect.New(v.Type().Elem())
			fill(rng, p.Elem(), depth+1)
			v.Set(p)
		}
	case reflect.String:
		v.SetString(string(randBytes(rng)))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(rng.Uint64()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rng.Uint64())
	}
}

func randBytes(rng *rand.Rand) []byte {
	b := make([]byte, rng.IntN(40))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Connections over --max-connections-per-ip (or --max-connections) are
// closed at once; a connection that sends nothing for --connections-max-idle
// is closed; the others go on.
func TestConnectionLimitsAndIdleTimeout(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.MaxConnectionsPerIP = 2
		c.IdleTimeout = 500 * time.Millisecond
	})
	closed := func(c net.Conn, within time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(within))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	a, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := n.dial() // a working client
	third, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if !closed(third, 5*time.Second) {
		t.Fatal("a third connection from the same IP was kept")
	}
	// b keeps talking (each request resets its idle clock); a, silent, is
	// closed after the idle timeout.
	for i := 0; i < 4; i++ {
		roundTrip[*kmsg.ApiVersionsResponse](b, kmsg.NewPtrApiVersionsRequest())
		time.Sleep(200 * time.Millisecond)
	}
	if !closed(a, 5*time.Second) {
		t.Fatal("an idle connection was not closed")
	}
	// With a's slot free, a new connection is taken.
	c := n.dial()
	roundTrip[*kmsg.ApiVersionsResponse](c, kmsg.NewPtrApiVersionsRequest())
}

// The node's fetch budget is shared: a client that pipelines huge fetches
// and reads nothing holds at most its grant, another client still gets
// data (at least the floor), every grant is given back once written or the
// connection closes, and the total held stays within the budget plus a
// floor per fetching connection.
func TestFetchBudgetIsSharedAndGivenBack(t *testing.T) {
	const budget = 2 << 20
	n := startNode(t, func(c *Config) { c.MaxFetchBytesInFlight = budget })
	topic := n.createTopic("budget", 1)
	c := n.dial()
	big := batch(t, string(make([]byte, 1000)), 100, kbatch.BuildOptions{}) // ~100 KB
	for i := 0; i < 40; i++ {
		resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "budget", 0, big))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	// The hog: eight pipelined 50 MB fetches, never read.
	hog := n.dial()
	for i := 0; i < 8; i++ {
		req := fetchReq(12, "budget", topic.ID, 0, 0, 100, 1)
		req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 50<<20, 50<<20
		hog.send(req)
	}
	waitFor(t, func() bool { b, _ := n.srv.fetchBudget.inUse(); return b > 0 })
	// Another client gets data beside it, within its grant.
	req := fetchReq(12, "budget", topic.ID, 0, 0, 100, 1)
	req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 50<<20, 50<<20
	resp := roundTrip[*kmsg.FetchResponse](c, req)
	got := len(resp.Topics[0].Partitions[0].RecordBatches)
	if got == 0 {
		t.Fatal("a client got no data beside a reader that stopped reading")
	}
	if got > budget+len(big) {
		t.Fatalf("a fetch answered with %d bytes, more than the whole budget", got)
	}
	if b, a := n.srv.fetchBudget.inUse(); b > budget+a*(1<<20)+int64(len(big)) {
		t.Fatalf("%d bytes held by %d fetches: over the budget plus a floor each", b, a)
	}
	// The hog goes away: everything is given back.
	hog.nc.Close()
	waitFor(t, func() bool { b, a := n.srv.fetchBudget.inUse(); return b == 0 && a == 0 })
}
