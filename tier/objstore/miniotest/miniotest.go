package miniotest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Region is the region the test server claims; pass it to S3 clients.
const Region = "us-east-1"

// startDeadline bounds how long a MinIO start may take to answer its health
// check; a cold start on a loaded 2-core machine takes a few seconds.
const startDeadline = 30 * time.Second

// Server is one MinIO process and the state needed to restart it on the same
// port and data directory.
type Server struct {
	// Endpoint is the S3 API base URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string

	bin         string
	addr        string
	consoleAddr string
	dataDir     string
	certsDir    string
	logPath     string

	// tls is the client configuration trusting the server's certificate,
	// nil for plain HTTP (StartTLS sets it).
	tls *tls.Config

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited and been reaped
	waitErr error         // cmd.Wait's result, valid once exited is closed
}

// Binary returns the MinIO binary the tests will use, or an error saying how
// to install one.
func Binary() (string, error) {
	if p := os.Getenv("STRATA_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("minio not installed: STRATA_MINIO_BIN=%s: %v (run bash .ci/install-minio)", p, err)
		}
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "strata", "bin", "minio")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("minio not installed: run bash .ci/install-minio")
}

// Start starts a MinIO server and registers its shutdown with t.Cleanup. It
// fails the test (never skips) if MinIO is not installed or does not come up
// within 30s.
func Start(t testing.TB) *Server { return start(t, nil) }

// StartTLS starts MinIO serving HTTPS with the PEM certificate and key in
// certFile and keyFile (put into its --certs-dir); clients trust it through
// caFile. Endpoint is then "https://127.0.0.1:PORT".
func StartTLS(t testing.TB, certFile, keyFile, caFile string) *Server {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return start(t, &tlsFiles{cert: certFile, key: keyFile, cfg: &tls.Config{RootCAs: pool}})
}

type tlsFiles struct {
	cert, key string
	cfg       *tls.Config
}

func start(t testing.TB, tf *tlsFiles) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := &Server{
		AccessKey: "strata-test",
		SecretKey: "strata-test-secret-key",
		bin:       bin,
		dataDir:   t.TempDir(),
		certsDir:  t.TempDir(),
	}
	scheme := "http://"
	if tf != nil {
		for src, dst := range map[string]string{tf.cert: "public.crt", tf.key: "private.key"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.certsDir, dst), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s.tls, scheme = tf.cfg, "https://"
	}
	s.logPath = filepath.Join(t.TempDir(), "minio.log")
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("minio log (%s):\n%s", s.logPath, s.logTail(40))
		}
	})
	// A port found free can be taken before MinIO binds it; try fresh ports
	// a few times before calling it a failure.
	var lastErr error
	for range 3 {
		s.addr, s.consoleAddr = freeAddr(t), freeAddr(t)
		s.Endpoint = scheme + s.addr
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		s.kill()
	}
	t.Fatalf("miniotest: start minio: %v\n%s", lastErr, s.logTail(40))
	return nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start launches the process and waits for it to answer health checks.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(s.bin, "server",
		"--address", s.addr,
		"--console-address", s.consoleAddr,
		"--certs-dir", s.certsDir,
		s.dataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_UPDATE=off",
		"MINIO_REGION="+Region,
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// If the test binary dies without running cleanups, take MinIO with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logf, "--- miniotest: starting %s on %s (console %s)\n", s.bin, s.addr, s.consoleAddr)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	return s.waitHealthy(exited)
}

// waitHealthy polls /minio/health/live and /minio/health/ready until both
// answer 200, the process exits, or the deadline passes.
func (s *Server) waitHealthy(exited <-chan struct{}) error {
	// No keep-alives: nothing of the health checks outlives them.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: s.tls}}
	deadline := time.Now().Add(startDeadline)
	for {
		if healthy(client, s.Endpoint+"/minio/health/live") && healthy(client, s.Endpoint+"/minio/health/ready") {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			err := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("minio exited during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio on %s not healthy after %v", s.addr, startDeadline)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not synchronising
	}
}

func healthy(client *http.Client, u string) bool {
	resp, err := client.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill ends the process (SIGKILL works on a paused one too) and waits for
// it to be reaped. Safe to call when it is not running.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Stop kills the server abruptly (SIGKILL, as a crash or power cut would),
// keeping its port and data directory for Restart. Requests fail with
// connection refused until then.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart starts the server again on the same port and data directory,
// stopping it first if it is running, and waits until it is healthy.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	if err := s.start(); err != nil {
		s.kill()
		t.Fatalf("miniotest: restart minio on %s: %v\n%s", s.addr, err, s.logTail(40))
	}
}

// Pause freezes the server (SIGSTOP): connections are accepted by the kernel
// but never answered, like a hung or partitioned store. Resume undoes it.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("miniotest: %v: minio is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("miniotest: send %v to minio: %v", sig, err)
	}
}

// Client returns a minio-go client for the server: an independent S3
// implementation to set up buckets and check what Strata wrote. Its idle
// connections are closed when the test ends.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = s.tls
	t.Cleanup(tr.CloseIdleConnections)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:    s.tls != nil,
		Region:    Region,
		Transport: tr,
	})
	if err != nil {
		t.Fatalf("miniotest: minio client: %v", err)
	}
	return c
}

// Bucket creates the bucket name (if it does not exist) and returns name.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region})
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
		default:
			t.Fatalf("miniotest: create bucket %q: %v", name, err)
		}
	}
	return name
}

// URL returns the objstore URL of bucket/prefix on this server, for
// objstore.Open (credentials go in objstore.Options, not the URL).
func (s *Server) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + strings.Trim(prefix, "/")
	}
	return u + "?" + url.Values{
		"endpoint":   {s.Endpoint},
		"region":     {Region},
		"path_style": {"true"},
	}.Encode()
}

// logTail returns the last n lines of the server log, for failure messages.
func (s *Server) logTail(n int) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no minio log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
