package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of a TLS server (or client) and how client
// certificates are asked for.
type TLSFiles struct {
	CertFile, KeyFile string
	// ClientCAFile holds the CAs client certificates must chain to; with
	// it, ClientAuth defaults to "required".
	ClientCAFile string
	// ClientAuth is "none", "requested" (verified if sent) or "required".
	ClientAuth string
}

// Enabled reports whether a certificate is configured.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" }

// ServerConfig returns a TLS server configuration that reads the
// certificate, key and client CAs again whenever one of the files changes
// (checked at most once a second, on handshakes), so certificates rotate
// without a restart. A file that cannot be read at start-up is an error;
// later, a bad rotation keeps the last good files and is reported by
// onReloadError.
func (f TLSFiles) ServerConfig(onReloadError func(error)) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tls: a certificate needs both --tls-cert-file and --tls-key-file")
	}
	auth := tls.NoClientCert
	switch f.ClientAuth {
	case "", "none":
		if f.ClientCAFile != "" && f.ClientAuth == "" {
			auth = tls.RequireAndVerifyClientCert
		}
	case "requested":
		auth = tls.VerifyClientCertIfGiven
	case "required":
		auth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tls: client auth %q: want none, requested or required", f.ClientAuth)
	}
	if auth != tls.NoClientCert && f.ClientCAFile == "" {
		return nil, errors.New("tls: client certificates need --tls-client-ca-file")
	}
	r := &reloader{files: f, onErr: onReloadError}
	if err := r.load(); err != nil {
		return nil, err
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: auth}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := r.current()
			c := base.Clone()
			c.Certificates = []tls.Certificate{*cert}
			c.ClientCAs = pool
			return c, nil
		},
	}, nil
}

// reloader keeps the last good certificate and CA pool.
type reloader struct {
	files TLSFiles
	onErr func(error)

	mu      sync.Mutex
	checked time.Time
	stamp   string
	cert    *tls.Certificate
	pool    *x509.CertPool
}

func fileStamp(paths ...string) string {
	s := ""
	for _, p := range paths {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", p, st.ModTime().UnixNano(), st.Size())
		}
	}
	return s
}

func (r *reloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	var pool *x509.CertPool
	if r.files.ClientCAFile != "" {
		pem, err := os.ReadFile(r.files.ClientCAFile)
		if err != nil {
			return fmt.Errorf("tls: client CA file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: client CA file %s holds no PEM certificates", r.files.ClientCAFile)
		}
	}
	r.mu.Lock()
	r.cert, r.pool = &cert, pool
	r.stamp = fileStamp(r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile)
	r.checked = time.Now()
	r.mu.Unlock()
	return nil
}

func (r *reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	stale := time.Since(r.checked) > time.Second
	if stale {
		r.checked = time.Now()
		stale = fileStamp(r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile) != r.stamp
	}
	r.mu.Unlock()
	if stale {
		if err := r.load(); err != nil && r.onErr != nil {
			r.onErr(err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, r.pool
}

// ClientConfig returns a TLS client configuration trusting the CAs in
// caFile (the system's when empty) and presenting certFile/keyFile when
// given: for etcd, S3 endpoints and the node's own clients.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificates", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// CertPrincipal names a client certificate's owner as Kafka's default SSL
// principal builder does: "User:" and the subject's distinguished name.
func CertPrincipal(cert *x509.Certificate) string {
	return "User:" + cert.Subject.String()
}
