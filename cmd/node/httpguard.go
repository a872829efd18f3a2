package node

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

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
