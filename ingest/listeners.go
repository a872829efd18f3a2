package ingest

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/auth"
	"github.com/strata-io/strata/metadata"
)

// Security protocols, as Kafka names them.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// Listener is one of a node's Kafka listeners: a name (PLAINTEXT, INTERNAL,
// EXTERNAL, ...), its security protocol and the address clients are told.
// Metadata, FindCoordinator and DescribeCluster answer a client with every
// node's address on the listener the client came in on.
type Listener struct {
	Name     string
	Protocol string
	Host     string
	Port     int32
	// TLS serves SSL and SASL_SSL listeners.
	TLS *tls.Config
}

// usesTLS and usesSASL say what the listener's protocol asks for.
func (l Listener) usesTLS() bool {
	return l.Protocol == ProtocolSSL || l.Protocol == ProtocolSASLSSL
}

func (l Listener) usesSASL() bool {
	return l.Protocol == ProtocolSASLPlaintext || l.Protocol == ProtocolSASLSSL
}

// SASL configures the SASL mechanisms the SASL listeners offer.
type SASL struct {
	// Mechanisms are the enabled mechanism names: PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512, OAUTHBEARER.
	Mechanisms []string
	// Plain checks PLAIN logins; required when PLAIN is enabled.
	Plain *auth.PlainUsers
	// OAuth validates OAUTHBEARER tokens; required when OAUTHBEARER is
	// enabled.
	OAuth *auth.JWTValidator
}

func (s SASL) enabled(mech string) bool {
	for _, m := range s.Mechanisms {
		if m == mech {
			return true
		}
	}
	return false
}

// ListenersString encodes listeners as node registration keeps them:
// "NAME://host:port,NAME2://host:port".
func ListenersString(ls []Listener) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "://" + net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
	}
	return strings.Join(parts, ",")
}

// ParseListeners parses "NAME://host:port,..." (as --listeners takes it)
// into name and address pairs, in order. Names are upper-cased as Kafka
// does; each must be unique.
func ParseListeners(s string) (names, addrs []string, err error) {
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "://")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("listener %q: want NAME://host:port", part)
		}
		name = strings.ToUpper(name)
		if seen[name] {
			return nil, nil, fmt.Errorf("listener %s given twice", name)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, nil, fmt.Errorf("listener %s: address %q: %v", name, addr, err)
		}
		seen[name] = true
		names, addrs = append(names, name), append(addrs, addr)
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("no listeners in %q", s)
	}
	return names, addrs, nil
}

// addrOn returns node id's advertised address on listener name; ok false
// when the node has no such listener.
func (s *Server) addrOn(name string, id int32, nodes []metadata.Node) (string, int32, bool) {
	if id == s.cfg.NodeID {
		for _, l := range s.cfg.Listeners {
			if l.Name == name {
				return l.Host, l.Port, true
			}
		}
		return s.cfg.AdvertisedHost, s.cfg.AdvertisedPort, len(s.cfg.Listeners) == 0
	}
	for _, n := range nodes {
		if n.ID != id {
			continue
		}
		if n.Listeners == "" { // registered without listeners: one address
			return n.Host, n.Port, true
		}
		names, addrs, err := ParseListeners(n.Listeners)
		if err != nil {
			return "", 0, false
		}
		for i, nm := range names {
			if nm == name {
				h, p, _ := net.SplitHostPort(addrs[i])
				port, err := strconv.ParseInt(p, 10, 32)
				return h, int32(port), err == nil
			}
		}
		return "", 0, false
	}
	return "", 0, false
}

// onListener rewrites the node addresses in a response to the ones of
// the listener the request came in on. Responses without addresses are
// left alone.
func (s *Server) onListener(name string, resp kmsg.Response) {
	if len(s.cfg.Listeners) < 2 {
		return // one listener: the registered addresses are its own
	}
	nodes := s.meta.Nodes()
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		r.Brokers = onListenerNodes(s, name, nodes, r.Brokers, func(b *kmsg.MetadataResponseBroker) (int32, *string, *int32) {
			return b.NodeID, &b.Host, &b.Port
		})
	case *kmsg.DescribeClusterResponse:
		r.Brokers = onListenerNodes(s, name, nodes, r.Brokers, func(b *kmsg.DescribeClusterResponseBroker) (int32, *string, *int32) {
			return b.NodeID, &b.Host, &b.Port
		})
	case *kmsg.ShareFetchResponse:
		r.NodeEndpoints = onListenerNodes(s, name, nodes, r.NodeEndpoints, func(b *kmsg.ShareFetchResponseNodeEndpoint) (int32, *string, *int32) {
			return b.NodeID, &b.Host, &b.Port
		})
	case *kmsg.ShareAcknowledgeResponse:
		r.NodeEndpoints = onListenerNodes(s, name, nodes, r.NodeEndpoints, func(b *kmsg.ShareAcknowledgeResponseNodeEndpoint) (int32, *string, *int32) {
			return b.NodeID, &b.Host, &b.Port
		})
	case *kmsg.FindCoordinatorResponse:
		if r.Version < 4 {
			if r.ErrorCode == 0 {
				if h, p, ok := s.addrOn(name, r.NodeID, nodes); ok {
					r.Host, r.Port = h, p
				}
			}
			return
		}
		for i := range r.Coordinators {
			c := &r.Coordinators[i]
			if c.ErrorCode == 0 {
				if h, p, ok := s.addrOn(name, c.NodeID, nodes); ok {
					c.Host, c.Port = h, p
				}
			}
		}
	}
}

// onListenerNodes keeps the nodes of a response that have an address on
// listener name, with that address; field gives a node's id and where its
// host and port are.
func onListenerNodes[T any](s *Server, name string, nodes []metadata.Node, in []T, field func(*T) (int32, *string, *int32)) []T {
	kept := in[:0]
	for i := range in {
		b := in[i]
		id, host, port := field(&b)
		if h, p, ok := s.addrOn(name, id, nodes); ok {
			*host, *port = h, p
			kept = append(kept, b)
		}
	}
	return kept
}
