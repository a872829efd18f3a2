package auth_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strata-io/strata/ingest/auth"
	"github.com/strata-io/strata/ingest/auth/authtest"
)

// exchange runs a franz-go client mechanism against a server step function
// and reports whether the client authenticated.
func exchange(t *testing.T, mech sasl.Mechanism, step func([]byte) ([]byte, bool, error)) error {
	t.Helper()
	sess, msg, err := mech.Authenticate(context.Background(), "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		answer, done, err := step(msg)
		if err != nil {
			return err
		}
		clientDone, next, err := sess.Challenge(answer)
		if err != nil {
			t.Fatalf("the client refused the server's answer: %v", err)
		}
		if done {
			if !clientDone {
				t.Fatal("server done, client not")
			}
			return nil
		}
		msg = next
	}
	t.Fatal("exchange did not finish")
	return nil
}

func scramUsers(t *testing.T, users map[string]string, mech string) auth.ScramLookup {
	creds := map[string]auth.ScramCredential{}
	for u, p := range users {
		salt := auth.NewSalt()
		sp, err := auth.SaltPassword(mech, p, salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		c, err := auth.NewScramCredential(mech, salt, sp, 4096)
		if err != nil {
			t.Fatal(err)
		}
		creds[u] = c
	}
	return func(user, m string) (auth.ScramCredential, bool, error) {
		c, ok := creds[user]
		return c, ok && m == mech, nil
	}
}

func TestScramWithFranzGosClient(t *testing.T) {
	for _, mech := range []string{auth.ScramSHA256, auth.ScramSHA512} {
		lookup := scramUsers(t, map[string]string{"alice": "s3cret", "bob,=odd": "pw"}, mech)
		client := func(user, pass string) sasl.Mechanism {
			a := scram.Auth{User: user, Pass: pass}
			if mech == auth.ScramSHA256 {
				return a.AsSha256Mechanism()
			}
			return a.AsSha512Mechanism()
		}
		run := func(user, pass string) error {
			srv, err := auth.NewScramServer(mech, lookup)
			if err != nil {
				t.Fatal(err)
			}
			err = exchange(t, client(user, pass), srv.Step)
			if err == nil && srv.User() != user {
				t.Fatalf("authenticated as %q, want %q", srv.User(), user)
			}
			return err
		}
		if err := run("alice", "s3cret"); err != nil {
			t.Fatalf("%s: right password refused: %v", mech, err)
		}
		if err := run("bob,=odd", "pw"); err != nil {
			t.Fatalf("%s: a user name with , and = refused: %v", mech, err)
		}
		for _, c := range [][2]string{{"alice", "Tr0ub4dor&3"}, {"carol", "s3cret"}, {"alice", "s3cret!"}} {
			err := run(c[0], c[1])
			if !errors.Is(err, auth.ErrAuthFailed) {
				t.Fatalf("%s: %q/%q: err %v, want ErrAuthFailed", mech, c[0], c[1], err)
			}
			if strings.Contains(err.Error(), "s3cret") || (c[1] != "" && strings.Contains(err.Error(), c[1])) {
				t.Fatalf("the error shows the password: %v", err)
			}
		}
	}
}

func TestScramRefusesMalformedMessages(t *testing.T) {
	lookup := scramUsers(t, map[string]string{"alice": "pw"}, auth.ScramSHA256)
	for _, first := range []string{"", "p=tls-unique,,n=alice,r=abc", "n,,", "n,,n=alice", "n,,n=alice,r=x,m=ext", "n,a=bob,n=alice,r=abc", "n,,n=al=ZZice,r=abc", "n,,garbage"} {
		srv, _ := auth.NewScramServer(auth.ScramSHA256, lookup)
		if _, _, err := srv.Step([]byte(first)); err == nil {
			t.Errorf("first message %q accepted", first)
		}
	}
	srv, _ := auth.NewScramServer(auth.ScramSHA256, lookup)
	if _, _, err := srv.Step([]byte("n,,n=alice,r=abc")); err != nil {
		t.Fatal(err)
	}
	for _, final := range []string{"c=biws,r=wrong,p=AAAA", "c=biws", "garbage"} {
		s2 := *srv
		if _, _, err := s2.Step([]byte(final)); err == nil {
			t.Errorf("final message %q accepted", final)
		}
	}
	if _, err := auth.NewScramServer("SCRAM-MD5", lookup); err == nil {
		t.Fatal("unknown mechanism accepted")
	}
	if _, err := auth.NewScramCredential(auth.ScramSHA256, []byte("salt"), make([]byte, 32), 100); err == nil {
		t.Fatal("100 iterations accepted")
	}
}

func TestPlainUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	os.WriteFile(path, []byte("# users\nalice:pa:ss\n\nbob:hunter2\n"), 0o600)
	p, err := auth.LoadPlainUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	sess, msg, _ := plain.Auth{User: "alice", Pass: "pa:ss"}.AsMechanism().Authenticate(context.Background(), "")
	_ = sess
	authz, user, pass, err := auth.ParsePlain(msg)
	if err != nil || authz != "" || user != "alice" || pass != "pa:ss" {
		t.Fatalf("ParsePlain = %q %q %q %v", authz, user, pass, err)
	}
	if err := p.Check(user, pass); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := p.Check("alice", "nope"); !errors.Is(err, auth.ErrAuthFailed) || strings.Contains(err.Error(), "nope") {
		t.Fatalf("wrong password: %v", err)
	}
	// The file is read again when it changes.
	time.Sleep(1100 * time.Millisecond)
	os.WriteFile(path, []byte("carol:new\n"), 0o600)
	if err := p.Check("carol", "new"); err != nil {
		t.Fatalf("a user added to the file is refused: %v", err)
	}
	if err := p.Check("bob", "hunter2"); err == nil {
		t.Fatal("a user removed from the file still logs in")
	}
	for _, bad := range []string{"", "alice", "\x00alice", "a\x00b\x00c\x00d"} {
		if _, _, _, err := auth.ParsePlain([]byte(bad)); err == nil {
			t.Errorf("ParsePlain(%q) accepted", bad)
		}
	}
	os.WriteFile(path, []byte("no colon here\n"), 0o600)
	if _, err := auth.LoadPlainUsers(path); err == nil {
		t.Fatal("a malformed file was loaded")
	}
}

func TestOAuthBearerTokens(t *testing.T) {
	is := authtest.NewIssuer(t, t.TempDir())
	v := &auth.JWTValidator{JWKS: is.JWKSFile, Issuer: "https://issuer.test", Audience: "strata"}
	if err := v.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	good := map[string]any{"sub": "svc-orders", "iss": "https://issuer.test", "aud": []string{"other", "strata"}, "exp": now + 600}
	tok := is.Token(t, good)
	_, msg, _ := oauth.Auth{Token: tok}.AsMechanism().Authenticate(context.Background(), "")
	got, err := auth.ParseOAuthBearer(msg)
	if err != nil || got != tok {
		t.Fatalf("ParseOAuthBearer: %v", err)
	}
	sub, exp, err := v.Validate(context.Background(), tok)
	if err != nil || sub != "svc-orders" || exp.Unix() != now+600 {
		t.Fatalf("Validate = %q %v %v", sub, exp, err)
	}
	with := func(k string, val any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	for name, claims := range map[string]map[string]any{
		"expired":      with("exp", now-600),
		"no exp":       with("exp", nil),
		"wrong issuer": with("iss", "https://evil.test"),
		"wrong aud":    with("aud", "other"),
		"not yet":      with("nbf", now+600),
		"no subject":   with("sub", nil),
	} {
		if _, _, err := v.Validate(context.Background(), is.Token(t, claims)); !errors.Is(err, auth.ErrAuthFailed) {
			t.Errorf("%s: err %v, want ErrAuthFailed", name, err)
		}
	}
	// Another key's signature, a tampered payload, junk.
	other := authtest.NewIssuer(t, t.TempDir())
	parts := strings.Split(tok, ".")
	for name, bad := range map[string]string{
		"other key": other.Token(t, good),
		"tampered":  parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2],
		"junk":      "not.a.jwt",
		"two parts": parts[0] + "." + parts[1],
		"alg none":  "eyJhbGciOiJub25lIn0." + parts[1] + ".",
	} {
		if _, _, err := v.Validate(context.Background(), bad); err == nil {
			t.Errorf("%s token accepted", name)
		}
	}
	for _, bad := range []string{"", "n,,\x01auth=Basic x\x01\x01", "n,,\x01\x01", "auth=Bearer x"} {
		if _, err := auth.ParseOAuthBearer([]byte(bad)); err == nil {
			t.Errorf("ParseOAuthBearer(%q) accepted", bad)
		}
	}
}

// A rotated certificate is served to the next handshake without a restart.
func TestTLSCertificateReloads(t *testing.T) {
	pki := authtest.NewPKI(t)
	cert, key := pki.Issue(t, "server", "first", "", true)
	cfg, err := auth.TLSFiles{CertFile: cert, KeyFile: key}.ServerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf := c.Certificates[0].Leaf
		return leaf.Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("serving %q", cn)
	}
	time.Sleep(1100 * time.Millisecond)
	c2, k2 := pki.Issue(t, "server2", "second", "", true)
	os.Rename(c2, cert)
	os.Rename(k2, key)
	if cn := served(); cn != "second" {
		t.Fatalf("after rotation serving %q, want the new certificate", cn)
	}
	if _, err := (auth.TLSFiles{CertFile: cert, KeyFile: key, ClientAuth: "required"}).ServerConfig(nil); err == nil {
		t.Fatal("required client certificates without a CA accepted")
	}
	if _, err := (auth.TLSFiles{CertFile: cert, KeyFile: "/nope"}).ServerConfig(nil); err == nil {
		t.Fatal("a missing key file accepted")
	}
}
