package ingest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/auth"
)

// FuzzSASL runs a SASL exchange of arbitrary client messages, for each
// mechanism, through a connection's handshake and authenticate steps:
// nothing panics, every answer encodes, a failure ends the exchange, and
// PLAIN authenticates only with the right password.
func FuzzSASL(f *testing.F) {
	dir := f.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice:right\n"), 0o600)
	plain, err := auth.LoadPlainUsers(users)
	if err != nil {
		f.Fatal(err)
	}
	n := startNode(f, func(c *Config) {
		c.SASL = SASL{Mechanisms: []string{"PLAIN", auth.ScramSHA256, auth.ScramSHA512, "OAUTHBEARER"}, Plain: plain,
			OAuth: &auth.JWTValidator{JWKS: filepath.Join(dir, "missing-jwks.json")}}
	})
	salt := auth.NewSalt()
	sp, _ := auth.SaltPassword(auth.ScramSHA256, "pw", salt, 4096)
	cred, _ := auth.NewScramCredential(auth.ScramSHA256, salt, sp, 4096)
	if err := n.meta.PutScramCredential(context.Background(), "alice", auth.ScramSHA256, mustMarshal(cred)); err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), []byte("\x00alice\x00right"), []byte{}, []byte{})
	f.Add(uint8(0), []byte("\x00alice\x00wrong"), []byte{}, []byte{})
	f.Add(uint8(1), []byte("n,,n=alice,r=abcdef"), []byte("c=biws,r=abcdef,p=AAAA"), []byte("x"))
	f.Add(uint8(2), []byte("n,a=alice,n=alice,r=x"), []byte{}, []byte{})
	f.Add(uint8(3), []byte("n,,\x01auth=Bearer a.b.c\x01\x01"), []byte{}, []byte{})
	mechs := []string{"PLAIN", auth.ScramSHA256, auth.ScramSHA512, "OAUTHBEARER", "GSSAPI"}
	f.Fuzz(func(t *testing.T, mech uint8, m1, m2, m3 []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := &conn{s: n.srv, ctx: ctx, log: slog.New(slog.DiscardHandler),
			auth: connAuth{listener: Listener{Name: "SASL", Protocol: ProtocolSASLPlaintext}, principal: anonymous}}
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.SetVersion(1)
		hs.Mechanism = mechs[int(mech)%len(mechs)]
		if resp := c.saslHandshake(hs); resp.ErrorCode != 0 {
			if hs.Mechanism != "GSSAPI" {
				t.Fatalf("handshake for %s: %d", hs.Mechanism, resp.ErrorCode)
			}
			return
		}
		for i, msg := range [][]byte{m1, m2, m3} {
			req := kmsg.NewPtrSASLAuthenticateRequest()
			req.SetVersion(int16(i % 3))
			req.SASLAuthBytes = msg
			resp, last := c.saslAuthenticate(req)
			appendResponse(nil, 1, resp)
			if last {
				if resp.ErrorCode == 0 || c.auth.authenticated {
					t.Fatalf("a fatal answer without an error (%d) or after authenticating", resp.ErrorCode)
				}
				return
			}
			if c.auth.authenticated {
				if hs.Mechanism == "PLAIN" && string(m1) != "\x00alice\x00right" && string(m1) != "alice\x00alice\x00right" {
					t.Fatalf("PLAIN authenticated with %q", m1)
				}
				return
			}
		}
	})
}
