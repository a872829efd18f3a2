package ingest

// ApiVersions: v0-v4 served
// * The ApiKeys list is built from served (versions.go), so what we
//   advertise and what we accept cannot drift apart. Produce is advertised
//   from v0 for librdkafka's feature checks (see versions.go).
// * A version we do not serve (v5+, or negative) is answered with a v0 body,
//   UNSUPPORTED_VERSION and an ApiKeys list holding only key 18 with our
//   range, as Kafka does (KIP-511); the client retries at our max. Its body
//   is never parsed.
// * v3+: ClientSoftwareName and ClientSoftwareVersion must match Kafka's
//   pattern [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?, else INVALID_REQUEST.
// * No features (KIP-584) are advertised: nothing we serve depends on one.
// * The response header never carries tagged fields (conn.go), even at v3+.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleApiVersions(r *request) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	if r.body == nil {
		rng := served[r.key]
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey = r.key
		k.MinVersion = rng.advertisedMin
		k.MaxVersion = rng.max
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
		return resp
	}
	req := r.body.(*kmsg.ApiVersionsRequest)
	resp.Version = req.Version
	if req.Version >= 3 && (!validSoftwareName(req.ClientSoftwareName) || !validSoftwareName(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	resp.ApiKeys = advertisedKeys()
	return resp
}

// validSoftwareName reports whether s matches the pattern Kafka requires of
// ApiVersions' client software name and version.
func validSoftwareName(s string) bool {
	alnum := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if s == "" || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
