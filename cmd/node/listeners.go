package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/strata-io/strata/ingest"
	"github.com/strata-io/strata/ingest/auth"
)

// Security is a node's listener and authentication configuration, with
// Kafka's names (listeners, advertised.listeners,
// listener.security.protocol.map, sasl.enabled.mechanisms).
type Security struct {
	// Listeners is "NAME://host:port,..."; empty means one PLAINTEXT
	// listener on Config.KafkaAddr.
	Listeners string
	// AdvertisedListeners is "NAME://host:port,..." for the names whose
	// advertised address differs from the bound one.
	AdvertisedListeners string
	// ProtocolMap is "NAME:PROTOCOL,..."; PLAINTEXT, SSL, SASL_PLAINTEXT
	// and SASL_SSL map to themselves without being listed.
	ProtocolMap string
	// InterNodeListener names the listener nodes use among themselves
	// (transaction markers) and the console's client; default the first.
	// It must be PLAINTEXT: keep it on a private network.
	InterNodeListener string
	// TLS is the certificate of SSL and SASL_SSL listeners.
	TLS auth.TLSFiles
	// SASLMechanisms are the mechanisms SASL listeners offer; default
	// SCRAM-SHA-256 and SCRAM-SHA-512, plus PLAIN with PlainUsersFile and
	// OAUTHBEARER with OAuthJWKS.
	SASLMechanisms []string
	// PlainUsersFile holds "user:password" lines for PLAIN.
	PlainUsersFile string
	// OAuthJWKS is a JWKS file or URL for OAUTHBEARER tokens, with the
	// issuer and audience they must carry and the claim naming the user.
	OAuthJWKS, OAuthIssuer, OAuthAudience, OAuthSubjectClaim string
	// Authorizer is "" or "none" (everything allowed, the laptop
	// default) or "acl" (ACLs in etcd decide, as Kafka's authorizer).
	Authorizer string
	// SuperUsers are principals allowed everything, "User:admin;User:ops"
	// (Kafka's super.users).
	SuperUsers string
	// AllowEveryoneIfNoACLFound allows resources no ACL mentions.
	AllowEveryoneIfNoACLFound bool
	// MaxConnections and MaxConnectionsPerIP bound client connections
	// (0: no bound); IdleTimeout closes connections idle that long
	// (default 10m, negative never).
	MaxConnections, MaxConnectionsPerIP int
	IdleTimeout                         time.Duration
	// MaxFetchBytesInFlight bounds the fetch response bytes the node
	// holds at once, shared fairly among fetches (default 256 MiB).
	MaxFetchBytesInFlight int64
	// HTTPTLS serves the HTTP API, console and metrics, and Arrow Flight,
	// over TLS with the --tls-cert-file certificate (client certificates
	// verified when sent, with --tls-client-ca-file).
	HTTPTLS bool
	// CAFile holds the CAs the node trusts as a client of other nodes'
	// HTTPS servers (default: the system's).
	CAFile string
	// EtcdTLS and ObjectStoreTLS are the node's client TLS settings for
	// etcd and the S3 endpoint: a CA file and a client certificate.
	EtcdTLS, ObjectStoreTLS ClientTLS
}

// ClientTLS names PEM files for a TLS client; all optional.
type ClientTLS struct{ CAFile, CertFile, KeyFile string }

// config returns the TLS configuration, nil when nothing is set.
func (c ClientTLS) config() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	return auth.ClientConfig(c.CAFile, c.CertFile, c.KeyFile)
}

// httpTLS is the TLS server configuration of the HTTP and Flight servers:
// client certificates are verified when a client sends one (browsers and
// curl with a password need none).
func (sec Security) httpTLS(logger *slog.Logger) (*tls.Config, error) {
	if !sec.HTTPTLS {
		return nil, nil
	}
	files := sec.TLS
	files.ClientAuth = "none"
	if files.ClientCAFile != "" {
		files.ClientAuth = "requested"
	}
	return files.ServerConfig(func(err error) { logger.Error("TLS certificate reload failed; keeping the previous one", "err", err) })
}

// authorizer turns the Security settings into the server's.
func (sec Security) authorizer() (ingest.Authorizer, error) {
	var a ingest.Authorizer
	switch strings.ToLower(sec.Authorizer) {
	case "", "none":
		if sec.SuperUsers != "" {
			return a, fmt.Errorf("node: --super-users needs --authorizer acl")
		}
		return a, nil
	case "acl":
		a.Enabled = true
	default:
		return a, fmt.Errorf("node: --authorizer %q: want none or acl", sec.Authorizer)
	}
	for _, u := range strings.Split(sec.SuperUsers, ";") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if typ, name, ok := strings.Cut(u, ":"); !ok || typ == "" || name == "" {
			return a, fmt.Errorf("node: --super-users %q: want Type:name entries separated by ;, such as User:admin;User:ANONYMOUS", u)
		}
		a.SuperUsers = append(a.SuperUsers, u)
	}
	a.AllowEveryoneIfNoACLFound = sec.AllowEveryoneIfNoACLFound
	return a, nil
}

type listenerPlan struct {
	l    ingest.Listener
	bind string
}

// planListeners resolves the listener flags into listeners to bind, with
// their protocols, TLS and advertised addresses (filled in once bound), and
// the SASL configuration.
func planListeners(ctx context.Context, cfg Config, logger *slog.Logger) (plans []listenerPlan, sasl ingest.SASL, inter int, err error) {
	sec := cfg.Security
	spec := sec.Listeners
	if spec == "" {
		spec = "PLAINTEXT://" + cfg.KafkaAddr
	}
	names, addrs, err := ingest.ParseListeners(spec)
	if err != nil {
		return nil, sasl, 0, fmt.Errorf("node: --listeners: %w", err)
	}
	protocols := map[string]string{}
	for _, p := range []string{ingest.ProtocolPlaintext, ingest.ProtocolSSL, ingest.ProtocolSASLPlaintext, ingest.ProtocolSASLSSL} {
		protocols[p] = p
	}
	if sec.ProtocolMap != "" {
		for _, kv := range strings.Split(sec.ProtocolMap, ",") {
			name, proto, ok := strings.Cut(strings.TrimSpace(kv), ":")
			proto = strings.ToUpper(strings.TrimSpace(proto))
			if !ok || name == "" {
				return nil, sasl, 0, fmt.Errorf("node: --listener-security-protocol-map %q: want NAME:PROTOCOL pairs", kv)
			}
			if _, known := map[string]bool{ingest.ProtocolPlaintext: true, ingest.ProtocolSSL: true, ingest.ProtocolSASLPlaintext: true, ingest.ProtocolSASLSSL: true}[proto]; !known {
				return nil, sasl, 0, fmt.Errorf("node: --listener-security-protocol-map: %s: unknown protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", name, proto)
			}
			protocols[strings.ToUpper(name)] = proto
		}
	}
	advertised := map[string]string{}
	if sec.AdvertisedListeners != "" {
		an, aa, err := ingest.ParseListeners(sec.AdvertisedListeners)
		if err != nil {
			return nil, sasl, 0, fmt.Errorf("node: --advertised-listeners: %w", err)
		}
		for i, n := range an {
			advertised[n] = aa[i]
		}
	}
	for n := range advertised {
		if !contains(names, n) {
			return nil, sasl, 0, fmt.Errorf("node: --advertised-listeners names %s, which is not in --listeners", n)
		}
	}
	inter = 0
	if sec.InterNodeListener != "" {
		inter = -1
		for i, n := range names {
			if n == strings.ToUpper(sec.InterNodeListener) {
				inter = i
			}
		}
		if inter < 0 {
			return nil, sasl, 0, fmt.Errorf("node: --inter-node-listener %s is not in --listeners", sec.InterNodeListener)
		}
	}
	var tlsCfg = sec.TLS
	needTLS, needSASL := false, false
	for i, n := range names {
		proto, ok := protocols[n]
		if !ok {
			return nil, sasl, 0, fmt.Errorf("node: listener %s has no security protocol: add %s:PROTOCOL to --listener-security-protocol-map", n, n)
		}
		l := ingest.Listener{Name: n, Protocol: proto}
		needTLS = needTLS || proto == ingest.ProtocolSSL || proto == ingest.ProtocolSASLSSL
		needSASL = needSASL || proto == ingest.ProtocolSASLPlaintext || proto == ingest.ProtocolSASLSSL
		adv := advertised[n]
		plans = append(plans, listenerPlan{l: l, bind: addrs[i]})
		if adv != "" {
			plans[i].l.Host = adv // resolved to host and port once bound
		}
	}
	if p := plans[inter].l.Protocol; p != ingest.ProtocolPlaintext {
		return nil, sasl, 0, fmt.Errorf("node: the inter-node listener %s is %s; it must be PLAINTEXT (nodes and the console talk to each other over it): add a PLAINTEXT listener on a private address and name it with --inter-node-listener", plans[inter].l.Name, p)
	}
	if needTLS {
		// As in Kafka, --tls-client-auth applies to SSL listeners; SASL_SSL
		// listeners authenticate with SASL and ask for no certificate.
		onErr := func(err error) { logger.Error("TLS certificate reload failed; keeping the previous one", "err", err) }
		sslCfg, err := tlsCfg.ServerConfig(onErr)
		if err != nil {
			return nil, sasl, 0, fmt.Errorf("node: %w", err)
		}
		saslFiles := tlsCfg
		saslFiles.ClientAuth = "none"
		saslCfg, err := saslFiles.ServerConfig(onErr)
		if err != nil {
			return nil, sasl, 0, fmt.Errorf("node: %w", err)
		}
		for i := range plans {
			switch plans[i].l.Protocol {
			case ingest.ProtocolSSL:
				plans[i].l.TLS = sslCfg
			case ingest.ProtocolSASLSSL:
				plans[i].l.TLS = saslCfg
			}
		}
	}
	if needSASL {
		mechs := sec.SASLMechanisms
		if len(mechs) == 0 {
			mechs = []string{auth.ScramSHA256, auth.ScramSHA512}
			if sec.PlainUsersFile != "" {
				mechs = append(mechs, "PLAIN")
			}
			if sec.OAuthJWKS != "" {
				mechs = append(mechs, "OAUTHBEARER")
			}
		}
		for _, m := range mechs {
			switch m {
			case auth.ScramSHA256, auth.ScramSHA512:
			case "PLAIN":
				if sec.PlainUsersFile == "" {
					return nil, sasl, 0, fmt.Errorf("node: SASL PLAIN needs --sasl-plain-users-file")
				}
				if sasl.Plain, err = auth.LoadPlainUsers(sec.PlainUsersFile); err != nil {
					return nil, sasl, 0, fmt.Errorf("node: %w", err)
				}
			case "OAUTHBEARER":
				if sec.OAuthJWKS == "" {
					return nil, sasl, 0, fmt.Errorf("node: SASL OAUTHBEARER needs --sasl-oauthbearer-jwks")
				}
				sasl.OAuth = &auth.JWTValidator{JWKS: sec.OAuthJWKS, Issuer: sec.OAuthIssuer, Audience: sec.OAuthAudience, SubjectClaim: sec.OAuthSubjectClaim}
				if err := sasl.OAuth.Check(ctx); err != nil {
					return nil, sasl, 0, fmt.Errorf("node: %w", err)
				}
			default:
				return nil, sasl, 0, fmt.Errorf("node: SASL mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", m)
			}
		}
		sasl.Mechanisms = mechs
	} else if tlsCfg.Enabled() && !needTLS {
		logger.Warn("--tls-cert-file is set but no listener is SSL or SASL_SSL")
	}
	return plans, sasl, inter, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// bindListeners listens on every planned listener and fills in the
// advertised addresses: the --advertised-listeners one, else the bound
// address (loopback for an unspecified host, as before).
func bindListeners(plans []listenerPlan) (lns []net.Listener, ls []ingest.Listener, err error) {
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	for _, p := range plans {
		ln, err := net.Listen("tcp", p.bind)
		if err != nil {
			return lns, nil, fmt.Errorf("node: listener %s: %w", p.l.Name, err)
		}
		lns = append(lns, ln)
		host, port, err := advertised(p.l.Host, ln.Addr().String())
		if err != nil {
			return lns, nil, err
		}
		l := p.l
		l.Host, l.Port = host, port
		ls = append(ls, l)
	}
	return lns, ls, nil
}
