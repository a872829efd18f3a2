package chaos

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what a Proxy does with the bytes it carries.
type Mode int

// Proxy modes.
const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Cut closes every open connection and closes new ones as soon as they
	// are accepted: the upstream looks down.
	Cut
	// Blackhole accepts connections and holds every byte (in both
	// directions) until the mode changes: the upstream looks hung.
	Blackhole
	// Delay forwards bytes after Proxy's delay, in both directions.
	Delay
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	case Delay:
		return "delay"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Proxy is a TCP proxy on 127.0.0.1 in front of one upstream address whose
// behaviour the checker switches at run time (SetMode). Each node reaches
// etcd and the object store through proxies of its own, so a fault can
// isolate one node from one upstream while clients still reach the node.
type Proxy struct {
	name     string
	upstream string
	ln       net.Listener

	mu      sync.Mutex
	mode    Mode
	delay   time.Duration
	changed chan struct{} // closed and replaced on every mode change
	conns   map[net.Conn]struct{}
	closed  bool
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and forwards to upstream.
func NewProxy(name, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy %s: %w", name, err)
	}
	p := &Proxy{
		name:     name,
		upstream: upstream,
		ln:       ln,
		changed:  make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
		done:     make(chan struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Name is the proxy's label, e.g. "node1->etcd".
func (p *Proxy) Name() string { return p.name }

// Addr is the proxy's listen address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode switches the proxy to m; delay matters only for Delay. Cut also
// closes every open connection.
func (p *Proxy) SetMode(m Mode, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.delay = m, delay
	close(p.changed)
	p.changed = make(chan struct{})
	if m == Cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *Proxy) state() (Mode, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay, p.changed
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// track registers c so Cut and Close can close it; false if the proxy is
// closed (c is then closed).
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			// A transient accept error (e.g. too many files): back off a bit.
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// gate waits until bytes may pass: true to forward them now, false to drop
// the connection (Cut, or the proxy closed).
func (p *Proxy) gate() bool {
	for {
		mode, delay, changed := p.state()
		switch mode {
		case Pass:
			return true
		case Cut:
			return false
		case Delay:
			select {
			case <-time.After(delay):
				return true
			case <-p.done:
				return false
			}
		case Blackhole:
			select {
			case <-changed:
			case <-p.done:
				return false
			}
		}
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	// A new connection waits out a blackhole before it is connected
	// upstream: the client sees a connection that never answers.
	if !p.gate() {
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c); done <- struct{}{} }()
	go func() { p.pipe(c, up); done <- struct{}{} }()
	<-done
	// One direction ended: end the other too.
	c.Close()
	up.Close()
	<-done
}

func (p *Proxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
