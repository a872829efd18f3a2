package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoMinIO is returned when no MinIO binary can be found.
var ErrNoMinIO = errors.New("bench: minio not installed (run bash .ci/install-minio)")

// MinIO credentials and region of the servers StartMinIO runs. They guard
// nothing: the server listens on loopback only and lives for one run.
const (
	MinIOAccessKey = "strata-bench"
	MinIOSecretKey = "strata-bench-secret-key"
	MinIORegion    = "us-east-1"
)

// MinIOBinary finds the MinIO server binary the same way the tests do
// (tier/objstore/miniotest, which is test-only): $STRATA_MINIO_BIN, else
// $HOME/.cache/strata/bin/minio (what .ci/install-minio builds), else PATH.
func MinIOBinary() (string, error) {
	if p := os.Getenv("STRATA_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: STRATA_MINIO_BIN=%s: %v", ErrNoMinIO, p, err)
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
	return "", ErrNoMinIO
}

// MinIO is a MinIO server process on 127.0.0.1 that Close kills.
type MinIO struct {
	// Endpoint is the S3 API base URL, "http://127.0.0.1:PORT".
	Endpoint string

	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
}

// StartMinIO starts bin serving the folder dir (created if missing) and
// returns once it answers its health checks. Its output goes to
// dir/../minio.log.
func StartMinIO(ctx context.Context, bin, dir string) (*MinIO, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: minio dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bench: minio log: %w", err)
	}
	// A port found free can be taken before MinIO binds it: try fresh ports
	// a few times before calling it a failure.
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			logf.Close()
			return nil, err
		}
		console, err := freeAddr()
		if err != nil {
			logf.Close()
			return nil, err
		}
		m := &MinIO{Endpoint: "http://" + addr, logf: logf}
		if lastErr = m.start(ctx, bin, addr, console, dir); lastErr == nil {
			return m, nil
		}
		m.kill()
		if ctx.Err() != nil {
			break
		}
	}
	logf.Close()
	return nil, fmt.Errorf("bench: start minio: %w (log: %s)", lastErr, logf.Name())
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (m *MinIO) start(ctx context.Context, bin, addr, console, dir string) error {
	cmd := exec.Command(bin, "server", "--address", addr, "--console-address", console, dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+MinIOAccessKey,
		"MINIO_ROOT_PASSWORD="+MinIOSecretKey,
		"MINIO_UPDATE=off",
		"MINIO_REGION="+MinIORegion,
	)
	cmd.Stdout, cmd.Stderr = m.logf, m.logf
	// If the bench dies without running Close, take MinIO with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(m.exited)
	}()

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second) // a cold start on a loaded 2-core machine takes seconds
	for {
		if healthy(ctx, client, m.Endpoint+"/minio/health/live") && healthy(ctx, client, m.Endpoint+"/minio/health/ready") {
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("minio exited during start-up: %v", cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling a condition
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio on %s not healthy after 30s", addr)
		}
	}
}

func healthy(ctx context.Context, client *http.Client, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// URL returns the objstore URL of bucket/prefix on this server.
func (m *MinIO) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?" + url.Values{
		"endpoint":   {m.Endpoint},
		"region":     {MinIORegion},
		"path_style": {"true"},
	}.Encode()
}

func (m *MinIO) kill() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// Close kills the server and waits for it to exit.
func (m *MinIO) Close() error {
	m.kill()
	return m.logf.Close()
}
