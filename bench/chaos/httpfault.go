package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// PutFaults is an HTTP reverse proxy in front of MinIO that can make PUT
// requests slow and failing: each PUT waits a random time up to MaxDelay
// and then, with probability FailRate, is answered 503 SlowDown without
// reaching MinIO. Other requests always pass.
type PutFaults struct {
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	rng      *rand.Rand
	maxDelay time.Duration
	failRate float64

	// Delayed and Failed count the PUTs that were delayed and answered 503.
	Delayed, Failed atomic.Int64
}

// NewPutFaults serves on a free 127.0.0.1 port and forwards to upstream
// ("http://127.0.0.1:PORT"). The Host header is kept, so S3 signatures made
// for the proxy's address stay valid.
func NewPutFaults(upstream string, seed uint64) (*PutFaults, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("chaos: put-fault proxy: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: put-fault proxy: %w", err)
	}
	f := &PutFaults{ln: ln, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusBadGateway)
	}
	f.srv = &http.Server{
		Handler:           f.wrap(rp),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go f.srv.Serve(ln)
	return f, nil
}

// Addr is the proxy's "127.0.0.1:PORT".
func (f *PutFaults) Addr() string { return f.ln.Addr().String() }

// Set turns the faults on (maxDelay > 0 or failRate > 0) or off (both 0).
func (f *PutFaults) Set(maxDelay time.Duration, failRate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxDelay, f.failRate = maxDelay, failRate
}

// decide draws one PUT's fate.
func (f *PutFaults) decide() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d time.Duration
	if f.maxDelay > 0 {
		d = time.Duration(f.rng.Int64N(int64(f.maxDelay)))
	}
	return d, f.failRate > 0 && f.rng.Float64() < f.failRate
}

func (f *PutFaults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			d, fail := f.decide()
			if d > 0 {
				f.Delayed.Add(1)
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return
				}
			}
			if fail {
				f.Failed.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`+
					`<Error><Code>SlowDown</Code><Message>strata-chaos: injected PUT failure</Message></Error>`)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Close stops the proxy.
func (f *PutFaults) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		f.srv.Close()
	}
}
