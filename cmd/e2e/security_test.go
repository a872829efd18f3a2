package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/ingest/auth"
	"github.com/strata-io/strata/ingest/auth/authtest"
)

// secureBroker is a node with four listeners: INTERNAL (PLAINTEXT, for
// nodes and admin), SECURE (SASL_SSL), SASLPT (SASL_PLAINTEXT) and MTLS
// (SSL, client certificates required), with SCRAM, PLAIN and OAUTHBEARER.
type secureBroker struct {
	n      *node.Node
	pki    *authtest.PKI
	issuer *authtest.Issuer
	admin  *kgo.Client // on INTERNAL
}

func startSecureBroker(t *testing.T, mods ...func(*node.Config)) *secureBroker {
	t.Helper()
	pki := authtest.NewPKI(t)
	cert, key := pki.Issue(t, "server", "strata-node", "", true)
	issuer := authtest.NewIssuer(t, pki.Dir)
	plainFile := filepath.Join(pki.Dir, "plain-users")
	if err := os.WriteFile(plainFile, []byte("plainuser:plain-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = ""
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.AutoCreateTopics = true
	cfg.Security = node.Security{
		Listeners:      "INTERNAL://127.0.0.1:0,SECURE://127.0.0.1:0,SASLPT://127.0.0.1:0,MTLS://127.0.0.1:0",
		ProtocolMap:    "INTERNAL:PLAINTEXT,SECURE:SASL_SSL,SASLPT:SASL_PLAINTEXT,MTLS:SSL",
		TLS:            auth.TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: pki.CAFile, ClientAuth: "required"},
		SASLMechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN", "OAUTHBEARER"},
		PlainUsersFile: plainFile,
		OAuthJWKS:      issuer.JWKSFile, OAuthIssuer: "https://issuer.test", OAuthAudience: "strata",
	}
	for _, m := range mods {
		m(&cfg)
	}
	logs := &tailBuffer{max: 256 << 10}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("start node: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
		if t.Failed() {
			t.Logf("node log (tail):\n%s", logs.String())
		}
	})
	return &secureBroker{n: n, pki: pki, issuer: issuer, admin: newClient(t, n.ListenerAddr("INTERNAL"))}
}

func (b *secureBroker) caPool(t *testing.T) *x509.CertPool {
	pem, err := os.ReadFile(b.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// addScramUser stores a SCRAM user through AlterUserScramCredentials on the
// INTERNAL listener, salting the password here as `strata user create` does.
func (b *secureBroker) addScramUser(t *testing.T, user, pass string) {
	t.Helper()
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, m := range []string{auth.ScramSHA256, auth.ScramSHA512} {
		salt := auth.NewSalt()
		sp, err := auth.SaltPassword(m, pass, salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = user, auth.ScramMechanismCode(m), 4096, salt, sp
		req.Upsertions = append(req.Upsertions, u)
	}
	resp, err := req.RequestWith(testContext(t), b.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.ErrorCode != 0 {
			t.Fatalf("alter SCRAM %s: %v", r.User, kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

// roundTrip produces n records with cl and reads them back with a second
// client of the same options, failing on any error.
func secureRoundTrip(t *testing.T, addr, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	ctx := testContext(t)
	cl := newClient(t, addr, opts...)
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-%d", topic, i)})
	}
	want := produceAll(t, ctx, cl, topic, rs)
	got := consumeN(t, ctx, addr, topic, n, opts...)
	checkSame(t, want, got, true)
}

func TestSecurityListenersTLSAndSASL(t *testing.T) {
	b := startSecureBroker(t)
	b.addScramUser(t, "alice", "alice-secret")
	secure, saslpt, mtls := b.n.ListenerAddr("SECURE"), b.n.ListenerAddr("SASLPT"), b.n.ListenerAddr("MTLS")
	tlsCfg := &tls.Config{RootCAs: b.caPool(t), ServerName: "127.0.0.1"}

	t.Run("metadata advertises each listener's own addresses", func(t *testing.T) {
		cl := newClient(t, secure, kgo.DialTLSConfig(tlsCfg), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()))
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Brokers) != 1 || net.JoinHostPort(resp.Brokers[0].Host, fmt.Sprint(resp.Brokers[0].Port)) != secure {
			t.Fatalf("brokers on SECURE: %+v, want %s", resp.Brokers, secure)
		}
	})
	t.Run("franz-go SCRAM-SHA-256 over SASL_SSL", func(t *testing.T) {
		secureRoundTrip(t, secure, "sec-scram256", 200, kgo.DialTLSConfig(tlsCfg),
			kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()))
	})
	t.Run("franz-go SCRAM-SHA-512 over SASL_PLAINTEXT", func(t *testing.T) {
		secureRoundTrip(t, saslpt, "sec-scram512", 200, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()))
	})
	t.Run("franz-go OAUTHBEARER", func(t *testing.T) {
		tok := b.issuer.Token(t, map[string]any{"sub": "svc-billing", "iss": "https://issuer.test", "aud": "strata", "exp": time.Now().Add(time.Hour).Unix()})
		secureRoundTrip(t, secure, "sec-oauth", 100, kgo.DialTLSConfig(tlsCfg), kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()))
	})
	t.Run("franz-go PLAIN", func(t *testing.T) {
		secureRoundTrip(t, secure, "sec-plain", 100, kgo.DialTLSConfig(tlsCfg), kgo.SASL(plain.Auth{User: "plainuser", Pass: "plain-pass"}.AsMechanism()))
	})
	t.Run("refusals", func(t *testing.T) {
		expired := b.issuer.Token(t, map[string]any{"sub": "svc", "iss": "https://issuer.test", "aud": "strata", "exp": time.Now().Add(-time.Hour).Unix()})
		for name, mech := range map[string]sasl.Mechanism{
			"wrong SCRAM password": scram.Auth{User: "alice", Pass: "not-it"}.AsSha512Mechanism(),
			"unknown SCRAM user":   scram.Auth{User: "mallory", Pass: "x"}.AsSha256Mechanism(),
			"wrong PLAIN password": plain.Auth{User: "plainuser", Pass: "nope"}.AsMechanism(),
			"expired token":        oauth.Auth{Token: expired}.AsMechanism(),
		} {
			cl, err := kgo.NewClient(kgo.SeedBrokers(secure), kgo.DialTLSConfig(tlsCfg), kgo.SASL(mech), kgo.RequestRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			cancel()
			cl.Close()
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s: err %v, want SASL_AUTHENTICATION_FAILED", name, err)
			}
		}
		// A request before authenticating closes the connection.
		c, err := net.Dial("tcp", saslpt)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(1)
		// Request header v1: key, version, correlation id, client id.
		body := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
		body = binary.BigEndian.AppendUint16(body, 1)
		body = binary.BigEndian.AppendUint32(body, 1)
		body = binary.BigEndian.AppendUint16(body, 3)
		body = append(body, "raw"...)
		body = req.AppendTo(body)
		c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("Metadata before SASL: read %d bytes, err %v; want the connection closed", n, err)
		}
		// The MTLS listener wants a client certificate.
		cl, _ := kgo.NewClient(kgo.SeedBrokers(mtls), kgo.DialTLSConfig(tlsCfg), kgo.RequestRetries(0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err == nil {
			t.Error("MTLS listener answered a client without a certificate")
		}
		cl.Close()
	})
	t.Run("kcat SASL_SSL SCRAM-SHA-512 and PLAIN", func(t *testing.T) {
		kcat := requireTool(t, "kcat")
		ctx := testContext(t)
		for _, c := range []struct{ mech, user, pass string }{{"SCRAM-SHA-512", "alice", "alice-secret"}, {"PLAIN", "plainuser", "plain-pass"}} {
			topic := "sec-kcat-" + strings.ToLower(c.mech)
			args := []string{"-b", secure, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=" + c.mech,
				"-X", "sasl.username=" + c.user, "-X", "sasl.password=" + c.pass, "-X", "ssl.ca.location=" + b.pki.CAFile}
			runCmd(t, ctx, []byte("a:one\nb:two\nc:three\n"), nil, kcat, append(args, "-P", "-t", topic, "-K:")...)
			out, _ := runCmd(t, ctx, nil, nil, kcat, append(args, "-C", "-t", topic, "-e", "-q", "-o", "beginning", "-f", "%o %k:%s\\n")...)
			if out != "0 a:one\n1 b:two\n2 c:three\n" {
				t.Fatalf("kcat %s read back %q", c.mech, out)
			}
		}
		// A wrong password fails.
		cmd := []string{"-b", secure, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=alice", "-X", "sasl.password=wrong", "-X", "ssl.ca.location=" + b.pki.CAFile, "-L", "-m", "5"}
		if out, err := runCmdErr(ctx, kcat, cmd...); err == nil {
			t.Fatalf("kcat with a wrong password listed metadata:\n%s", out)
		}
	})
	t.Run("kafkajs SCRAM over TLS", func(t *testing.T) {
		nodeBin := requireTool(t, "node")
		ctx := testContext(t)
		env := []string{"NODE_PATH=" + nodePath(t)}
		run := func(pass string) map[string]any {
			cfg, _ := json.Marshal(map[string]any{"broker": secure, "topic": "sec-kafkajs", "group": "sec-kafkajs-g", "count": 50,
				"caFile": b.pki.CAFile, "mechanism": "scram-sha-256", "username": "alice", "password": pass,
				"timeoutMs": int(testTimeout.Milliseconds()), "retries": 0})
			out, _ := runCmd(t, ctx, nil, env, nodeBin, "testdata/kafkajs/sasl_tls.js", string(cfg))
			var res map[string]any
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("sasl_tls.js output is not JSON (%v):\n%s", err, tail(out))
			}
			return res
		}
		res := run("alice-secret")
		if res["error"] != nil || res["produced"].(float64) != 50 || len(res["consumed"].([]any)) != 50 {
			t.Fatalf("kafkajs: %v", res)
		}
		if res := run("wrong"); res["error"] == nil || !strings.Contains(fmt.Sprint(res["message"]), "SASL") {
			t.Fatalf("kafkajs with a wrong password: %v", res)
		}
	})
	t.Run("sarama mTLS", func(t *testing.T) {
		cert, key := b.pki.Issue(t, "sarama", "sarama-client", "Strata Tests", false)
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg := sarama.NewConfig()
		cfg.ClientID = "strata-e2e-mtls"
		cfg.Producer.Return.Successes = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = &tls.Config{RootCAs: b.caPool(t), Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1"}
		prod, err := sarama.NewSyncProducer([]string{mtls}, cfg)
		if err != nil {
			t.Fatalf("sarama producer over mTLS: %v", err)
		}
		defer prod.Close()
		for i := 0; i < 20; i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sec-mtls", Value: sarama.StringEncoder(fmt.Sprint("m", i))}); err != nil {
				t.Fatal(err)
			}
		}
		cons, err := sarama.NewConsumer([]string{mtls}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		pc, err := cons.ConsumePartition("sec-mtls", 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		for i := 0; i < 20; i++ {
			select {
			case m := <-pc.Messages():
				if string(m.Value) != fmt.Sprint("m", i) || m.Offset != int64(i) {
					t.Fatalf("sarama read %d:%q at %d", m.Offset, m.Value, i)
				}
			case <-time.After(testTimeout):
				t.Fatalf("sarama consumed %d of 20", i)
			}
		}
	})
	t.Run("SCRAM users are listed and deleted", func(t *testing.T) {
		ctx := testContext(t)
		resp, err := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest().RequestWith(ctx, b.admin)
		if err != nil || len(resp.Results) != 1 || resp.Results[0].User != "alice" || len(resp.Results[0].CredentialInfos) != 2 {
			t.Fatalf("describe: %+v %v", resp, err)
		}
		del := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		for _, m := range []int8{1, 2} {
			d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			d.Name, d.Mechanism = "alice", m
			del.Deletions = append(del.Deletions, d)
		}
		if r, err := del.RequestWith(ctx, b.admin); err != nil || r.Results[0].ErrorCode != 0 {
			t.Fatalf("delete: %+v %v", r, err)
		}
		cl, _ := kgo.NewClient(kgo.SeedBrokers(saslpt), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()), kgo.RequestRetries(0))
		defer cl.Close()
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("a deleted user logged in: %v", err)
		}
		// Deleting again: RESOURCE_NOT_FOUND; a bad upsert: UNACCEPTABLE_CREDENTIAL.
		if r, _ := del.RequestWith(ctx, b.admin); r == nil || r.Results[0].ErrorCode != kerr.ResourceNotFound.Code {
			t.Fatalf("deleting a deleted user: %+v", r)
		}
		bad := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = "bob", 1, 10, []byte("salt"), make([]byte, 32)
		bad.Upsertions = append(bad.Upsertions, u)
		if r, _ := bad.RequestWith(ctx, b.admin); r == nil || r.Results[0].ErrorCode != kerr.UnacceptableCredential.Code {
			t.Fatalf("10 iterations: %+v", r)
		}
	})
}

// runCmdErr runs a command that is expected to fail and returns its
// combined output and error.
func runCmdErr(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// produceErr produces one record and returns the error the client reports.
func produceErr(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// TestACLs runs the authorizer against real clients: WRITE and READ decide
// produce and consume, DESCRIBE decides what Metadata shows, a deny beats
// an allow, prefixed ACLs apply, groups need READ, and only the cluster's
// ALTER may change ACLs.
func TestACLs(t *testing.T) {
	b := startSecureBroker(t, func(cfg *node.Config) {
		cfg.Security.Authorizer = "acl"
		cfg.Security.SuperUsers = "User:admin;User:ANONYMOUS" // ANONYMOUS: the INTERNAL admin client
	})
	for _, u := range []string{"alice", "bob", "admin"} {
		b.addScramUser(t, u, u+"-pw")
	}
	ctx := testContext(t)
	saslpt := b.n.ListenerAddr("SASLPT")
	as := func(user string, opts ...kgo.Opt) *kgo.Client {
		return newClient(t, saslpt, append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism()), kgo.RequestRetries(2)}, opts...)...)
	}
	// The admin (ANONYMOUS on INTERNAL, a super user) makes the topics and
	// the ACLs.
	for _, topic := range []string{"orders-eu", "orders-secret", "invoices"} {
		ensureTopic(t, ctx, b.admin, topic)
	}
	type binding struct {
		rt      kmsg.ACLResourceType
		name    string
		pt      kmsg.ACLResourcePatternType
		who     string
		op      kmsg.ACLOperation
		allowed bool
	}
	create := kmsg.NewPtrCreateACLsRequest()
	for _, bd := range []binding{
		{kmsg.ACLResourceTypeTopic, "orders-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationWrite, true},
		{kmsg.ACLResourceTypeTopic, "orders-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationRead, true},
		{kmsg.ACLResourceTypeTopic, "orders-secret", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationWrite, false},
		{kmsg.ACLResourceTypeGroup, "alice-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationRead, true},
		{kmsg.ACLResourceTypeTopic, "invoices", kmsg.ACLResourcePatternTypeLiteral, "User:bob", kmsg.ACLOperationRead, true},
	} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType, c.Principal, c.Host, c.Operation = bd.rt, bd.name, bd.pt, bd.who, "*", bd.op
		c.PermissionType = kmsg.ACLPermissionTypeDeny
		if bd.allowed {
			c.PermissionType = kmsg.ACLPermissionTypeAllow
		}
		create.Creations = append(create.Creations, c)
	}
	if resp, err := create.RequestWith(ctx, b.admin); err != nil {
		t.Fatal(err)
	} else {
		for _, r := range resp.Results {
			if r.ErrorCode != 0 {
				t.Fatalf("CreateAcls: %v", kerr.ErrorForCode(r.ErrorCode))
			}
		}
	}
	// Every node follows the ACLs through etcd's watch: give it a moment.
	alice := as("alice")
	deadline := time.Now().Add(10 * time.Second)
	for produceErr(t, alice, "orders-eu") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("alice cannot write orders-eu: %v", produceErr(t, alice, "orders-eu"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("deny beats a prefixed allow, and the topic is unchanged", func(t *testing.T) {
		if err := produceErr(t, alice, "orders-secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("alice writing orders-secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		if hw := highWatermarks(t, ctx, b.admin, "orders-secret", 1); hw[0] != 0 {
			t.Fatalf("orders-secret high watermark %d after a refused produce", hw[0])
		}
	})
	t.Run("without WRITE: TOPIC_AUTHORIZATION_FAILED", func(t *testing.T) {
		// Not idempotent: an idempotent producer without WRITE anywhere is
		// refused earlier, at InitProducerId (CLUSTER_AUTHORIZATION_FAILED).
		bob := as("bob", kgo.DisableIdempotentWrite())
		if err := produceErr(t, bob, "orders-eu"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("bob writing orders-eu: %v", err)
		}
		if err := produceErr(t, as("bob"), "invoices"); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("bob's idempotent producer: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
		}
	})
	t.Run("Metadata shows only what the principal may describe", func(t *testing.T) {
		names := func(cl *kgo.Client) []string {
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, tp := range resp.Topics {
				out = append(out, *tp.Topic)
			}
			sort.Strings(out)
			return out
		}
		if got := names(as("bob")); strings.Join(got, ",") != "invoices" {
			t.Fatalf("bob sees %v, want only invoices (READ implies DESCRIBE)", got)
		}
		if got := names(as("alice")); strings.Join(got, ",") != "orders-eu,orders-secret" {
			t.Fatalf("alice sees %v", got)
		}
		// The super user also sees the internal __consumer_offsets, as on Kafka.
		if got := names(as("admin")); strings.Join(got, ",") != "__consumer_offsets,invoices,orders-eu,orders-secret" {
			t.Fatalf("the super user sees %v", got)
		}
	})
	t.Run("consumer groups need READ on the group", func(t *testing.T) {
		got := consumeN(t, ctx, saslpt, "orders-eu", 1, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha512Mechanism()), kgo.ConsumerGroup("alice-readers"))
		if len(got) != 1 {
			t.Fatalf("alice consumed %d", len(got))
		}
		cl := as("alice", kgo.ConsumerGroup("someone-elses"), kgo.ConsumeTopics("orders-eu"))
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		var gerr error
		for gerr == nil && fctx.Err() == nil {
			cl.PollFetches(fctx).EachError(func(_ string, _ int32, err error) { gerr = err })
		}
		if !errors.Is(gerr, kerr.GroupAuthorizationFailed) {
			t.Fatalf("joining a group without READ: %v, want GROUP_AUTHORIZATION_FAILED", gerr)
		}
	})
	t.Run("only the cluster's ALTER changes ACLs", func(t *testing.T) {
		req := kmsg.NewPtrCreateACLsRequest()
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, "*", kmsg.ACLResourcePatternTypeLiteral, "User:bob", "*"
		c.Operation, c.PermissionType = kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
		resp, err := req.RequestWith(ctx, as("bob"))
		if err != nil || resp.Results[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Fatalf("bob granting himself everything: %+v %v", resp, err)
		}
		d := kmsg.NewPtrDescribeACLsRequest()
		d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		dr, err := d.RequestWith(ctx, b.admin)
		if err != nil || dr.ErrorCode != 0 {
			t.Fatalf("describe: %v %v", dr, err)
		}
		n := 0
		for _, r := range dr.Resources {
			n += len(r.ACLs)
		}
		if n != 5 {
			t.Fatalf("%d ACLs stored, want the 5 created (bob's refused one is not)", n)
		}
	})
}

// TestGarbageConnectionsDoNotStopAClient opens 1,000 connections to a TLS
// listener that send garbage, a TLS handshake and then garbage, or nothing
// at all, and keeps them open while a well-behaved franz-go client
// produces and consumes over TLS on the same listener. Everything is on
// loopback and bounded: each bad connection is closed by the node (bad
// handshake, unparseable frame) or by its handshake or idle timeout, or by
// the test at the end.
func TestGarbageConnectionsDoNotStopAClient(t *testing.T) {
	pki := authtest.NewPKI(t)
	cert, key := pki.Issue(t, "server", "strata-node", "", true)
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = ""
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.Security = node.Security{
		Listeners:   "INTERNAL://127.0.0.1:0,TLS://127.0.0.1:0",
		ProtocolMap: "INTERNAL:PLAINTEXT,TLS:SSL",
		TLS:         auth.TLSFiles{CertFile: cert, KeyFile: key},
		IdleTimeout: 5 * time.Second,
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
	addr := n.ListenerAddr("TLS")
	pem, _ := os.ReadFile(pki.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	const bad = 1000
	conns := make(chan net.Conn, bad)
	var opened sync.WaitGroup
	sem := make(chan struct{}, 50) // at most 50 dials at a time
	for i := 0; i < bad; i++ {
		opened.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer opened.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return // the node may refuse under load: fine, it is bad traffic
			}
			conns <- c
			c.SetDeadline(time.Now().Add(20 * time.Second))
			switch i % 4 {
			case 0: // garbage instead of a TLS handshake
				c.Write([]byte("\x16\x03\x01garbage-garbage-garbage"))
			case 1: // nothing at all
			case 2, 3: // a TLS handshake, then garbage or nothing
				tc := tls.Client(c, tlsCfg)
				if tc.Handshake() == nil && i%4 == 2 {
					tc.Write([]byte{0, 0, 0, 12, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8})
				}
			}
		}(i)
	}
	// Every bad connection is open (and has sent what it sends) before the
	// good client starts; the silent ones are still held by the node.
	opened.Wait()
	close(conns)
	start := time.Now()
	secureRoundTrip(t, addr, "garbage-neighbours", 200, kgo.DialTLSConfig(tlsCfg))
	t.Logf("the good client produced and consumed 200 records in %v beside %d bad connections", time.Since(start).Round(time.Millisecond), len(conns))
	for c := range conns {
		c.Close()
	}
}

// kmsgCreateRead is a CreateAcls request allowing principal to READ topic.
func kmsgCreateRead(topic, principal string) *kmsg.CreateACLsRequest {
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, topic, kmsg.ACLResourcePatternTypeLiteral, principal, "*"
	c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, c)
	return req
}
