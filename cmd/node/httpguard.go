package node

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/strata-io/strata/cmd/node/console"
	"github.com/strata-io/strata/ingest"
)

// httpGuard puts the HTTP server behind the Kafka listeners' users and
// ACLs once --authorizer acl is on: every path but /healthz and /readyz
// needs credentials (a client certificate, HTTP Basic with a PLAIN or SCRAM
// user, or a Bearer JWT); /v1/topics/T/... needs READ on T, /metrics
// DESCRIBE on the cluster; the console checks each action itself with the
// caller's principal (console.PrincipalFrom). Without the authorizer, it
// lets everything through (the laptop default).
func httpGuard(srv *ingest.Server, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !srv.AuthorizerEnabled() || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		principal, err := srv.AuthenticateHTTP(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="strata", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="strata"`)
			msg := "authentication required: HTTP Basic with a Strata user, a Bearer token, or a client certificate"
			if !errors.Is(err, ingest.ErrNoCredentials) {
				logger.Info("HTTP authentication failed", "remote", r.RemoteAddr, "path", r.URL.Path, "reason", err)
				msg = "authentication failed"
			}
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
		deny := func(what string) {
			logger.Info("HTTP request refused by the authorizer", "principal", principal, "path", r.URL.Path)
			http.Error(w, principal+" may not "+what, http.StatusForbidden)
		}
		switch {
		case r.URL.Path == "/metrics":
			if !srv.Allowed(r, principal, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, ingest.ClusterName) {
				deny("DESCRIBE the cluster (needed for /metrics)")
				return
			}
		case strings.HasPrefix(r.URL.Path, "/v1/topics/"):
			topic, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/topics/"), "/")
			if !srv.Allowed(r, principal, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, topic) {
				deny("READ topic " + topic)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(console.WithPrincipal(r.Context(), principal)))
	})
}

// flightAuthorizer checks Flight calls as httpGuard checks HTTP ones: the
// caller's client certificate or the "authorization" gRPC metadata (Basic
// or Bearer), and READ on the topic. nil without the authorizer.
func flightAuthorizer(srv *ingest.Server) func(ctx context.Context, topic string) error {
	if !srv.AuthorizerEnabled() {
		return nil
	}
	return func(ctx context.Context, topic string) error {
		var certs []*x509.Certificate
		remote := ""
		if p, ok := peer.FromContext(ctx); ok {
			remote = p.Addr.String()
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				certs = ti.State.PeerCertificates
			}
		}
		authz := ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				authz = v[0]
			}
		}
		principal, err := srv.Authenticate(ctx, authz, certs)
		if err != nil {
			return status.Error(codes.Unauthenticated, "authentication required: an authorization header (Basic or Bearer) or a client certificate")
		}
		if !srv.AllowedFrom(remote, principal, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, topic) {
			return status.Errorf(codes.PermissionDenied, "%s may not READ topic %s", principal, topic)
		}
		return nil
	}
}
