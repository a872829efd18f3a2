package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process: started in its own process group (so a
// terminal's Ctrl-C reaches only the checker, which then kills it) and
// with Pdeathsig (so it dies with the checker even when the checker is
// killed without running its clean-up).
type proc struct {
	name string
	log  *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs bin args with env, appending output to p.log.
func (p *proc) start(bin string, args, env []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("chaos: %s is already running (pid %d)", p.name, p.cmd.Process.Pid)
		}
	}
	fmt.Fprintf(p.log, "\n===== strata-chaos: %s start %s: %s %s\n",
		time.Now().Format(time.RFC3339Nano), p.name, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(p.log, "\n===== strata-chaos: %s %s exited: %v\n", time.Now().Format(time.RFC3339Nano), p.name, err)
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

// running returns the process and its exit channel, or nil.
func (p *proc) running() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil, nil
	}
	select {
	case <-p.exited:
		return nil, nil
	default:
		return p.cmd, p.exited
	}
}

// Pid is the running process's pid, or 0.
func (p *proc) Pid() int {
	cmd, _ := p.running()
	if cmd == nil {
		return 0
	}
	return cmd.Process.Pid
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) error {
	cmd, _ := p.running()
	if cmd == nil {
		return fmt.Errorf("chaos: %s is not running", p.name)
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("chaos: signal %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// stop sends sig (SIGKILL or SIGTERM) to the process group and waits up to
// limit for the process to exit; then it kills it.
func (p *proc) stop(sig syscall.Signal, limit time.Duration) error {
	cmd, exited := p.running()
	if cmd == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	if sig != syscall.SIGKILL {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT) // a stopped process must wake to die
	}
	select {
	case <-exited:
		return nil
	case <-time.After(limit):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("chaos: %s (pid %d) still running 10s after SIGKILL", p.name, cmd.Process.Pid)
	}
}

// exitedCh returns a channel closed when the current process exits (an
// already closed one when none runs).
func (p *proc) exitedCh() <-chan struct{} {
	_, ch := p.running()
	if ch == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return ch
}

// waitHTTP polls url until it answers 200 (and, if want is not empty, a
// body containing want), the process exits, ctx ends or limit passes.
func (p *proc) waitHTTP(ctx context.Context, url, want string, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	exited := p.exitedCh()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), want) {
				return nil
			}
			last = resp.Status + " " + strings.TrimSpace(string(body))
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return fmt.Errorf("chaos: %s exited before it was ready (log: %s)", p.name, p.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling a condition
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s not ready after %v (last %s: %s; log: %s)", p.name, limit, url, last, p.log.Name())
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Etcd is a single-member etcd server process (Debian's etcd-server) on
// 127.0.0.1 with its data in a folder that survives restarts.
type Etcd struct {
	proc
	bin        string
	dataDir    string
	clientAddr string
	peerAddr   string
}

// EtcdBinary finds etcd: $STRATA_ETCD_BIN, else PATH (Debian's
// /usr/bin/etcd from the etcd-server package).
func EtcdBinary() (string, error) {
	if p := os.Getenv("STRATA_ETCD_BIN"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", errors.New("chaos: etcd not found (apt-get install etcd-server, or set STRATA_ETCD_BIN)")
	}
	return p, nil
}

// StartEtcd starts etcd with its data and log under dir.
func StartEtcd(ctx context.Context, bin, dir string) (*Etcd, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	e := &Etcd{proc: proc{name: "etcd", log: logf}, bin: bin, dataDir: filepath.Join(dir, "data")}
	var lastErr error
	for range 3 { // a free port can be taken before etcd binds it
		if e.clientAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if e.peerAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if lastErr = e.Start(ctx); lastErr == nil {
			return e, nil
		}
		e.stop(syscall.SIGKILL, time.Second)
		os.RemoveAll(e.dataDir)
		if ctx.Err() != nil {
			break
		}
	}
	logf.Close()
	return nil, lastErr
}

// Start (re)starts the server on its data folder and ports and waits until
// /health reports healthy.
func (e *Etcd) Start(ctx context.Context) error {
	peer := "http://" + e.peerAddr
	client := "http://" + e.clientAddr
	args := []string{
		"--name", "chaos",
		"--data-dir", e.dataDir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "chaos=" + peer,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "strata-chaos",
		"--logger", "zap",
		"--log-outputs", "stderr",
		"--log-level", "info",
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	if err := e.start(e.bin, args, env); err != nil {
		return err
	}
	return e.waitHTTP(ctx, client+"/health", `"health":"true"`, 30*time.Second)
}

// ClientAddr is etcd's client "127.0.0.1:PORT".
func (e *Etcd) ClientAddr() string { return e.clientAddr }

// Stop stops etcd with sig (SIGKILL or SIGTERM).
func (e *Etcd) Stop(sig syscall.Signal) error { return e.stop(sig, 10*time.Second) }

// Close kills etcd and closes its log.
func (e *Etcd) Close() error {
	err := e.stop(syscall.SIGKILL, time.Second)
	e.log.Close()
	return err
}

// Node is one `strata serve` process. Its Kafka and HTTP addresses stay the
// same across restarts; its data folder may change (an empty one).
type Node struct {
	proc
	ID        int
	KafkaAddr string
	HTTPAddr  string

	bin      string
	baseDir  string
	args     []string // everything but --data-dir
	env      []string
	dataDir  string
	restarts int
}

// DataDir is the node's current data folder.
func (n *Node) DataDir() string { return n.dataDir }

// Start starts the node on its current data folder and waits for /readyz.
func (n *Node) Start(ctx context.Context) error {
	if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	args := append([]string{"serve", "--data-dir", n.dataDir}, n.args...)
	if err := n.start(n.bin, args, n.env); err != nil {
		return err
	}
	return n.waitHTTP(ctx, "http://"+n.HTTPAddr+"/readyz", "", 90*time.Second)
}

// NewDataDir points the node at a new, empty data folder for its next
// start.
func (n *Node) NewDataDir() {
	n.restarts++
	n.dataDir = filepath.Join(n.baseDir, "data-"+strconv.Itoa(n.restarts))
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() error { return n.stop(syscall.SIGKILL, 10*time.Second) }

// Pause sends SIGSTOP; Resume sends SIGCONT.
func (n *Node) Pause() error  { return n.signal(syscall.SIGSTOP) }
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT) }

// Close kills the node and closes its log.
func (n *Node) Close() error {
	err := n.stop(syscall.SIGKILL, time.Second)
	n.log.Close()
	return err
}

// logTail returns the last n bytes of the node's log.
func (n *Node) logTail(size int64) string {
	f, err := os.Open(n.log.Name())
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > size {
		f.Seek(fi.Size()-size, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// LogPath is the node's log file (every start appends to it).
func (n *Node) LogPath() string { return n.log.Name() }

// childPID finds a child process of this process whose command name is
// comm (from /proc), or 0: MinIO is started by bench.StartMinIO, which does
// not expose its pid, and the MinIO fault needs it to SIGSTOP the server.
func childPID(comm string) int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || s[open+1:close] != comm {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self {
			return pid
		}
	}
	return 0
}
