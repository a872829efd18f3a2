package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-io/strata/ingest/auth"
	"github.com/strata-io/strata/ingest/auth/authtest"
)

// Listener settings that cannot work are refused at start-up with a
// message that says what to change.
func TestListenerConfigErrors(t *testing.T) {
	pki := authtest.NewPKI(t)
	cert, key := pki.Issue(t, "server", "node", "", true)
	tlsFiles := auth.TLSFiles{CertFile: cert, KeyFile: key}
	for _, c := range []struct {
		name string
		sec  Security
		want string
	}{
		{"unknown protocol", Security{Listeners: "A://127.0.0.1:0", ProtocolMap: "A:SASL_TLS"}, "unknown protocol"},
		{"unmapped name", Security{Listeners: "EXTERNAL://127.0.0.1:0"}, "add EXTERNAL:PROTOCOL"},
		{"duplicate", Security{Listeners: "PLAINTEXT://127.0.0.1:0,plaintext://127.0.0.1:0"}, "given twice"},
		{"bad address", Security{Listeners: "PLAINTEXT://nowhere"}, "address"},
		{"SSL without a certificate", Security{Listeners: "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"}, "--tls-cert-file"},
		{"secure inter-node listener", Security{Listeners: "SSL://127.0.0.1:0", TLS: tlsFiles}, "must be PLAINTEXT"},
		{"unknown inter-node listener", Security{Listeners: "PLAINTEXT://127.0.0.1:0", InterNodeListener: "INTERNAL"}, "not in --listeners"},
		{"advertised unknown name", Security{Listeners: "PLAINTEXT://127.0.0.1:0", AdvertisedListeners: "OTHER://h:1"}, "not in --listeners"},
		{"PLAIN without a file", Security{Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", SASLMechanisms: []string{"PLAIN"}}, "--sasl-plain-users-file"},
		{"OAUTHBEARER without keys", Security{Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", SASLMechanisms: []string{"OAUTHBEARER"}}, "--sasl-oauthbearer-jwks"},
		{"unknown mechanism", Security{Listeners: "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", SASLMechanisms: []string{"GSSAPI"}}, "GSSAPI"},
		{"client auth without CA", Security{Listeners: "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", TLS: auth.TLSFiles{CertFile: cert, KeyFile: key, ClientAuth: "required"}}, "--tls-client-ca-file"},
	} {
		cfg := DefaultConfig()
		cfg.Security = c.sec
		_, _, _, err := planListeners(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	// The defaults: one PLAINTEXT listener on KafkaAddr.
	plans, sasl, inter, err := planListeners(context.Background(), DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil || len(plans) != 1 || plans[0].l.Name != "PLAINTEXT" || plans[0].bind != "127.0.0.1:9092" || inter != 0 || len(sasl.Mechanisms) != 0 {
		t.Fatalf("defaults: %+v %+v %d %v", plans, sasl, inter, err)
	}
}
