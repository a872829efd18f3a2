package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/ingest/auth"
	"github.com/strata-io/strata/ingest/auth/authtest"
	"github.com/strata-io/strata/tier/objstore/miniotest"
)

// With --http-tls the HTTP API and Arrow Flight serve TLS with the node's
// certificate, and with --authorizer acl Flight takes the same users as
// HTTP and Kafka: Unauthenticated without credentials, PermissionDenied
// without READ on the topic.
func TestHTTPSAndFlightTLSWithUsers(t *testing.T) {
	pki := authtest.NewPKI(t)
	cert, key := pki.Issue(t, "server", "strata-node", "", true)
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlightAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.Security = node.Security{
		Listeners: "PLAINTEXT://127.0.0.1:0", TLS: auth.TLSFiles{CertFile: cert, KeyFile: key},
		HTTPTLS: true, Authorizer: "acl", SuperUsers: "User:ANONYMOUS", CAFile: pki.CAFile,
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		n.Close(cctx)
	}()
	b := &secureBroker{n: n, pki: pki, admin: newClient(t, n.KafkaAddr())}
	b.addScramUser(t, "alice", "alice-pw")
	ensureTopic(t, ctx, b.admin, "readable")
	ensureTopic(t, ctx, b.admin, "closed")
	produceAll(t, ctx, b.admin, "readable", []*kgo.Record{{Value: []byte("one")}, {Value: []byte("two")}})
	createACL(t, b.admin, "readable", "User:alice")

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(pki.CAFile)
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	// HTTPS, with Basic credentials.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 10 * time.Second}
	get := func(path, user, pass string) int {
		req, _ := http.NewRequest("GET", "https://"+n.HTTPAddr()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("/v1/topics/readable/arrow", "alice", "alice-pw") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("alice cannot read over HTTPS")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := get("/v1/topics/closed/arrow", "alice", "alice-pw"); code != 403 {
		t.Errorf("HTTPS read of a topic without READ: %d", code)
	}
	if resp, err := http.Get("http://" + n.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the HTTP server answered plain HTTP with --http-tls")
		}
	}

	// Flight over TLS.
	fc, err := flight.NewClientWithMiddleware(n.FlightAddr(), nil, nil, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	basic := func(user, pass string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	desc := func(topic string) *flight.FlightDescriptor {
		return &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{topic}}
	}
	if _, err := fc.GetFlightInfo(ctx, desc("readable")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Flight without credentials: %v, want Unauthenticated", err)
	}
	if _, err := fc.GetFlightInfo(basic("alice", "nope"), desc("readable")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Flight with a wrong password: %v, want Unauthenticated", err)
	}
	if _, err := fc.GetFlightInfo(basic("alice", "alice-pw"), desc("closed")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Flight read of a topic without READ: %v, want PermissionDenied", err)
	}
	info, err := fc.GetFlightInfo(basic("alice", "alice-pw"), desc("readable"))
	if err != nil {
		t.Fatalf("Flight GetFlightInfo for alice: %v", err)
	}
	stream, err := fc.DoGet(basic("alice", "alice-pw"), info.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := flight.NewRecordReader(stream)
	if err != nil {
		t.Fatal(err)
	}
	rows := int64(0)
	for rd.Next() {
		rows += rd.RecordBatch().NumRows()
	}
	rd.Release()
	if rows != 2 {
		t.Fatalf("Flight over TLS read %d rows, want 2", rows)
	}
	// DoGet checks too: a server-streaming call reports the refusal at
	// the first receive.
	if s, err := fc.DoGet(ctx, info.Endpoint[0].Ticket); err == nil {
		if _, err = s.Recv(); status.Code(err) != codes.Unauthenticated {
			t.Errorf("DoGet without credentials: %v, want Unauthenticated", err)
		}
	} else if status.Code(err) != codes.Unauthenticated {
		t.Errorf("DoGet without credentials: %v, want Unauthenticated", err)
	}
}

func createACL(t *testing.T, admin *kgo.Client, topic, principal string) {
	t.Helper()
	cl := admin
	req := kmsgCreateRead(topic, principal)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("CreateAcls: %+v %v", resp, err)
	}
}

// TestTLSToEtcd runs a node against an etcd that serves only TLS and
// requires client certificates (Debian's etcd with --client-cert-auth): with
// --etcd-ca-file, --etcd-cert-file and --etcd-key-file it works; without
// the client certificate it fails to start with an error.
func TestTLSToEtcd(t *testing.T) {
	etcdBin := requireTool(t, "etcd")
	pki := authtest.NewPKI(t)
	scert, skey := pki.Issue(t, "etcd-server", "etcd", "", true)
	ccert, ckey := pki.Issue(t, "etcd-client", "strata-node", "", false)
	clientPort, peerPort := freePort(t), freePort(t)
	clientURL := fmt.Sprintf("https://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	cmd := exec.Command(etcdBin, "--name", "tls", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "tls="+peerURL,
		"--cert-file", scert, "--key-file", skey, "--client-cert-auth", "--trusted-ca-file", pki.CAFile)
	logs := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("etcd log:\n%s", logs.String())
		}
	}()
	start := func(withCert bool) (*node.Node, error) {
		cfg := node.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", ""
		cfg.FlushInterval = 10 * time.Millisecond
		cfg.EtcdEndpoints = []string{clientURL}
		cfg.Security.EtcdTLS = node.ClientTLS{CAFile: pki.CAFile}
		if withCert {
			cfg.Security.EtcdTLS.CertFile, cfg.Security.EtcdTLS.KeyFile = ccert, ckey
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return node.Start(ctx, cfg, nil)
	}
	var n *node.Node
	var err error
	deadline := time.Now().Add(30 * time.Second) // etcd takes a moment to serve
	for n, err = start(true); err != nil; n, err = start(true) {
		if time.Now().After(deadline) {
			t.Fatalf("node against TLS etcd with a client certificate: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	cl := newClient(t, n.KafkaAddr())
	produceAll(t, testContext(t), cl, "over-tls-etcd", []*kgo.Record{{Value: []byte("x")}})
	if bad, err := start(false); err == nil {
		bad.Close(context.Background())
		t.Fatal("a node without a client certificate started against etcd requiring one")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTLSToS3 runs a node against MinIO serving only HTTPS with a private
// CA: with --object-store-ca-file it stores and serves records; without it
// the node refuses to start (the certificate is not trusted).
func TestTLSToS3(t *testing.T) {
	pki := authtest.NewPKI(t)
	cert, key := pki.Issue(t, "minio", "minio", "", true)
	m := miniotest.StartTLS(t, cert, key, pki.CAFile)
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	bucket := m.Bucket(t, "strata-tls")
	start := func(ca string) (*node.Node, error) {
		cfg := node.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", ""
		cfg.FlushInterval = 10 * time.Millisecond
		cfg.ObjectStore = m.URL(bucket, "tls")
		cfg.Security.ObjectStoreTLS = node.ClientTLS{CAFile: ca}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return node.Start(ctx, cfg, nil)
	}
	if bad, err := start(""); err == nil {
		bad.Close(context.Background())
		t.Fatal("a node trusting only the system CAs started against MinIO with a private CA")
	}
	n, err := start(pki.CAFile)
	if err != nil {
		t.Fatalf("node against HTTPS MinIO with --object-store-ca-file: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	ctx := testContext(t)
	cl := newClient(t, n.KafkaAddr())
	want := produceAll(t, ctx, cl, "over-tls-s3", testRecords("s3tls", 100, 1))
	checkSame(t, want, consumeN(t, ctx, n.KafkaAddr(), "over-tls-s3", 100), true)
	// The records are in the bucket, read back over TLS by minio-go.
	objs := 0
	for obj := range m.Client(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "tls/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		objs++
	}
	if objs == 0 {
		t.Fatal("no objects in the HTTPS bucket")
	}
}

// TestOAuthBearerWithAJWKSURL checks tokens against keys served over HTTP
// (the JWKS URL form of --sasl-oauthbearer-jwks).
func TestOAuthBearerWithAJWKSURL(t *testing.T) {
	issuer := authtest.NewIssuer(t, t.TempDir())
	jwks, err := os.ReadFile(issuer.JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(jwks) }))
	defer srv.Close()
	v := &auth.JWTValidator{JWKS: srv.URL + "/jwks.json", Audience: "strata"}
	ctx := testContext(t)
	if err := v.Check(ctx); err != nil {
		t.Fatal(err)
	}
	sub, _, err := v.Validate(ctx, issuer.Token(t, map[string]any{"sub": "svc", "aud": "strata", "exp": time.Now().Add(time.Hour).Unix()}))
	if err != nil || sub != "svc" {
		t.Fatalf("Validate = %q, %v", sub, err)
	}
	bad := &auth.JWTValidator{JWKS: srv.URL + "/missing"}
	srv.Config.Handler = http.NotFoundHandler()
	if err := bad.Check(ctx); err == nil {
		t.Fatal("a JWKS URL answering 404 was accepted")
	}
}
