package ingest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/auth"
)

// SaslHandshake (17) v1 and SaslAuthenticate (36) v0-v2: Kafka's SASL
// framing. v0 of SaslHandshake (raw tokens after it, outside Kafka's
// framing) is not served: every current client speaks v1 once ApiVersions
// lists SaslAuthenticate. On a SASL listener a connection may send only
// ApiVersions, SaslHandshake and SaslAuthenticate until it authenticated;
// anything else closes it, as Kafka does. A failed login is answered with
// SASL_AUTHENTICATION_FAILED and the connection is closed.

// anonymous is the principal of an unauthenticated connection.
const anonymous = "User:ANONYMOUS"

// connAuth is a connection's listener and authentication state, touched
// only by its reader goroutine.
type connAuth struct {
	listener Listener
	// principal is who the connection acts as: "User:ANONYMOUS", the
	// client certificate's subject (mTLS) or the SASL user.
	principal string
	// authenticated is true once SASL succeeded, and from the start on
	// listeners without SASL.
	authenticated bool
	mech          string // chosen by SaslHandshake, "" before
	scram         *auth.ScramServer
}

// saslAllowedBefore lists the requests a SASL listener takes before
// authentication.
func saslAllowedBefore(key int16) bool {
	return key == int16(kmsg.ApiVersions) || key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate)
}

// tlsHandshakeTimeout bounds a TLS handshake: a client that opens a
// connection and sends nothing holds only a goroutine, for this long.
const tlsHandshakeTimeout = 10 * time.Second

// handshake completes TLS on a TLS listener and takes the principal from
// the client certificate, if one was sent (verified by the listener's
// configuration). false: the handshake failed; close.
func (c *conn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Debug("closing connection: TLS handshake failed", "err", err)
		return false
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.auth.principal = auth.CertPrincipal(certs[0])
	}
	return true
}

func (c *conn) saslHandshake(req *kmsg.SASLHandshakeRequest) *kmsg.SASLHandshakeResponse {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = append([]string(nil), c.s.cfg.SASL.Mechanisms...)
	switch {
	case !c.auth.listener.usesSASL():
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.SupportedMechanisms = nil
	case c.auth.mech != "" || c.auth.authenticated:
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !c.s.cfg.SASL.enabled(req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	default:
		c.auth.mech = req.Mechanism
	}
	return resp
}

// saslAuthenticate runs one step of the chosen mechanism. fatal: the
// answer is the last thing written on the connection.
func (c *conn) saslAuthenticate(req *kmsg.SASLAuthenticateRequest) (resp *kmsg.SASLAuthenticateResponse, fatal bool) {
	resp = req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	fail := func(code int16, msg string, reason error) (*kmsg.SASLAuthenticateResponse, bool) {
		resp.ErrorCode = code
		resp.ErrorMessage = kmsg.StringPtr(msg)
		resp.SASLAuthBytes = nil
		c.log.Info("SASL authentication failed", "mechanism", c.auth.mech, "listener", c.auth.listener.Name, "reason", reason)
		return resp, true
	}
	if c.auth.mech == "" || c.auth.authenticated {
		return fail(kerr.IllegalSaslState.Code, "SaslAuthenticate before SaslHandshake, or after authentication", errors.New("illegal SASL state"))
	}
	authFailed := func(err error) (*kmsg.SASLAuthenticateResponse, bool) {
		return fail(kerr.SaslAuthenticationFailed.Code,
			"Authentication failed during authentication due to invalid credentials with SASL mechanism "+c.auth.mech, err)
	}
	done := func(user string) {
		c.auth.authenticated = true
		c.auth.principal = "User:" + user
		c.log.Debug("SASL authenticated", "principal", c.auth.principal, "mechanism", c.auth.mech)
	}
	switch c.auth.mech {
	case "PLAIN":
		authz, user, pass, err := auth.ParsePlain(req.SASLAuthBytes)
		if err != nil {
			return authFailed(err)
		}
		if authz != "" && authz != user {
			return authFailed(fmt.Errorf("user %q asked to act as %q", user, authz))
		}
		if c.s.cfg.SASL.Plain == nil {
			return authFailed(errors.New("PLAIN has no users file"))
		}
		if err := c.s.cfg.SASL.Plain.Check(user, pass); err != nil {
			return authFailed(err)
		}
		done(user)
	case auth.ScramSHA256, auth.ScramSHA512:
		if c.auth.scram == nil {
			srv, err := auth.NewScramServer(c.auth.mech, c.s.scramLookup)
			if err != nil {
				return authFailed(err)
			}
			c.auth.scram = srv
		}
		answer, finished, err := c.auth.scram.Step(req.SASLAuthBytes)
		if err != nil {
			return authFailed(err)
		}
		resp.SASLAuthBytes = answer
		if finished {
			done(c.auth.scram.User())
			c.auth.scram = nil
		}
	case "OAUTHBEARER":
		token, err := auth.ParseOAuthBearer(req.SASLAuthBytes)
		if err != nil {
			return authFailed(err)
		}
		if c.s.cfg.SASL.OAuth == nil {
			return authFailed(errors.New("OAUTHBEARER has no JWKS"))
		}
		sub, expires, err := c.s.cfg.SASL.OAuth.Validate(c.ctx, token)
		if err != nil {
			return authFailed(err)
		}
		if req.Version >= 1 {
			resp.SessionLifetimeMillis = max(time.Until(expires).Milliseconds(), 1)
		}
		done(sub)
	default:
		return authFailed(fmt.Errorf("mechanism %q not served", c.auth.mech))
	}
	return resp, false
}

// scramLookup reads a user's SCRAM credential from etcd.
func (s *Server) scramLookup(user, mech string) (auth.ScramCredential, bool, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	v, found, err := s.meta.ScramCredential(ctx, user, mech)
	if err != nil || !found {
		return auth.ScramCredential{}, found, err
	}
	var cred auth.ScramCredential
	if err := json.Unmarshal(v, &cred); err != nil {
		return auth.ScramCredential{}, false, fmt.Errorf("stored credential of %q: %w", user, err)
	}
	return cred, true, nil
}
