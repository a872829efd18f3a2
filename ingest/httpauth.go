package ingest

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/auth"
)

// HTTP authentication with the Kafka listeners' users: a client
// certificate (mTLS), HTTP Basic with a PLAIN or SCRAM user's password, or
// a Bearer JWT checked as OAUTHBEARER tokens are.

// ErrNoCredentials: the HTTP request carries no credentials.
var ErrNoCredentials = errors.New("no credentials")

// AuthorizerEnabled reports whether ACLs are enforced.
func (s *Server) AuthorizerEnabled() bool { return s.authz.cfg.Enabled }

// AuthenticateHTTP returns the principal an HTTP request authenticates as.
// An error wrapping auth.ErrAuthFailed means bad credentials;
// ErrNoCredentials that there were none.
func (s *Server) AuthenticateHTTP(r *http.Request) (string, error) {
	var certs []*x509.Certificate
	if r.TLS != nil {
		certs = r.TLS.PeerCertificates
	}
	return s.Authenticate(r.Context(), r.Header.Get("Authorization"), certs)
}

// Authenticate returns the principal of a caller that presented a client
// certificate (verified by TLS) or an Authorization header value ("Basic
// ..." or "Bearer ..."): for HTTP and for Flight's gRPC metadata.
func (s *Server) Authenticate(ctx context.Context, authorization string, certs []*x509.Certificate) (string, error) {
	if len(certs) > 0 {
		return auth.CertPrincipal(certs[0]), nil
	}
	h := authorization
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return "", ErrNoCredentials
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := parseBasic(cred)
		if !ok || user == "" {
			return "", fmt.Errorf("%w: malformed Basic credentials", auth.ErrAuthFailed)
		}
		if p := s.cfg.SASL.Plain; p != nil && p.Has(user) {
			if err := p.Check(user, pass); err != nil {
				return "", err
			}
			return "User:" + user, nil
		}
		for _, mech := range []string{auth.ScramSHA512, auth.ScramSHA256} {
			c, found, err := s.scramLookup(user, mech)
			if err != nil {
				return "", err
			}
			if found {
				if c.CheckPassword(pass) {
					return "User:" + user, nil
				}
				break
			}
		}
		return "", fmt.Errorf("%w: user %q: unknown user or wrong password", auth.ErrAuthFailed, user)
	case strings.EqualFold(scheme, "Bearer"):
		if s.cfg.SASL.OAuth == nil {
			return "", fmt.Errorf("%w: bearer tokens are not configured (--sasl-oauthbearer-jwks)", auth.ErrAuthFailed)
		}
		sub, _, err := s.cfg.SASL.OAuth.Validate(ctx, strings.TrimSpace(cred))
		if err != nil {
			return "", err
		}
		return "User:" + sub, nil
	}
	return "", fmt.Errorf("%w: unsupported Authorization scheme %q", auth.ErrAuthFailed, scheme)
}

// Allowed reports whether principal, calling from the request's address,
// may do op on the resource, by the node's ACLs.
func (s *Server) Allowed(r *http.Request, principal string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return s.AllowedFrom(r.RemoteAddr, principal, op, rt, name)
}

// AllowedFrom is Allowed for a caller at remoteAddr (host:port).
func (s *Server) AllowedFrom(remoteAddr, principal string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	host, _, _ := net.SplitHostPort(remoteAddr)
	return s.authz.allowed(caller{principal: principal, host: host}, op, rt, name)
}

// parseBasic decodes HTTP Basic credentials (base64 of user:password).
func parseBasic(b64 string) (user, pass string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}
