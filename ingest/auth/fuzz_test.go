package auth_test

import (
	"context"
	"testing"

	"github.com/strata-io/strata/ingest/auth"
	"github.com/strata-io/strata/ingest/auth/authtest"
)

// FuzzScramServer feeds arbitrary client messages to the SCRAM server: it
// never panics, and never reports success for a client that did not prove
// the password.
func FuzzScramServer(f *testing.F) {
	salt := []byte("0123456789abcdef")
	sp, _ := auth.SaltPassword(auth.ScramSHA256, "pw", salt, 4096)
	cred, _ := auth.NewScramCredential(auth.ScramSHA256, salt, sp, 4096)
	lookup := func(user, mech string) (auth.ScramCredential, bool, error) { return cred, user == "alice", nil }
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=alice,n=alice,r=x"), []byte("c=eSws,r=x,p="))
	f.Add([]byte("n,,n=al=2Cice,r=a,b=c"), []byte("p=,p="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		srv, _ := auth.NewScramServer(auth.ScramSHA256, lookup)
		if _, done, err := srv.Step(first); err != nil || done {
			return
		}
		if _, done, err := srv.Step(final); err == nil && done {
			t.Fatalf("authenticated without the password: %q then %q", first, final)
		}
	})
}

// FuzzOAuthBearer parses arbitrary OAUTHBEARER messages and validates
// whatever token they hold: no panic, and nothing unsigned passes.
func FuzzOAuthBearer(f *testing.F) {
	is := authtest.NewIssuer(f, f.TempDir())
	v := &auth.JWTValidator{JWKS: is.JWKSFile}
	f.Add([]byte("n,,\x01auth=Bearer eyJhbGciOiJub25lIn0.e30.\x01\x01"))
	f.Add([]byte("n,,\x01auth=Bearer a.b.c\x01host=x\x01\x01"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		tok, err := auth.ParseOAuthBearer(msg)
		if err != nil {
			return
		}
		if _, _, err := v.Validate(context.Background(), tok); err == nil {
			t.Fatalf("an unsigned token passed: %q", tok)
		}
	})
}
