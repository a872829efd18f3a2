package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// SCRAM mechanism names, as Kafka spells them.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Kafka's bounds on SCRAM iterations (ScramMechanism.minIterations and the
// broker's maximum).
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// ErrAuthFailed is every authentication failure a client may learn about:
// it does not say whether the user exists.
var ErrAuthFailed = errors.New("authentication failed")

// ScramCredential is what the server keeps of a SCRAM password (RFC 5802):
// enough to check a proof, not enough to log in.
type ScramCredential struct {
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

func scramHash(mech string) (func() hash.Hash, error) {
	switch mech {
	case ScramSHA256:
		return sha256.New, nil
	case ScramSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unknown SCRAM mechanism %q (want %s or %s)", mech, ScramSHA256, ScramSHA512)
}

// ScramMechanismCode is the mechanism's number in Describe- and
// AlterUserScramCredentials (1 SHA-256, 2 SHA-512; 0 unknown).
func ScramMechanismCode(mech string) int8 {
	switch mech {
	case ScramSHA256:
		return 1
	case ScramSHA512:
		return 2
	}
	return 0
}

// ScramMechanismName is the inverse of ScramMechanismCode ("" unknown).
func ScramMechanismName(code int8) string {
	switch code {
	case 1:
		return ScramSHA256
	case 2:
		return ScramSHA512
	}
	return ""
}

// SaltPassword derives SCRAM's SaltedPassword (PBKDF2 with the mechanism's
// hash), as a client does before AlterUserScramCredentials.
func SaltPassword(mech, password string, salt []byte, iterations int) ([]byte, error) {
	h, err := scramHash(mech)
	if err != nil {
		return nil, err
	}
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// NewSalt returns a random salt of the mechanism's hash size.
func NewSalt() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// NewScramCredential turns a salted password into the keys the server keeps.
func NewScramCredential(mech string, salt, saltedPassword []byte, iterations int) (ScramCredential, error) {
	h, err := scramHash(mech)
	if err != nil {
		return ScramCredential{}, err
	}
	if iterations < MinScramIterations || iterations > MaxScramIterations {
		return ScramCredential{}, fmt.Errorf("iterations %d out of range [%d, %d]", iterations, MinScramIterations, MaxScramIterations)
	}
	if len(salt) == 0 || len(saltedPassword) != h().Size() {
		return ScramCredential{}, fmt.Errorf("%s needs a salt and a %d-byte salted password", mech, h().Size())
	}
	clientKey := hmacSum(h, saltedPassword, []byte("Client Key"))
	stored := h()
	stored.Write(clientKey)
	return ScramCredential{Mechanism: mech, Iterations: iterations, Salt: salt,
		StoredKey: stored.Sum(nil), ServerKey: hmacSum(h, saltedPassword, []byte("Server Key"))}, nil
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// ScramLookup finds a user's credential for a mechanism; found false for an
// unknown user.
type ScramLookup func(user, mechanism string) (cred ScramCredential, found bool, err error)

// ScramServer runs the server side of one SCRAM exchange: two client
// messages, two server answers.
type ScramServer struct {
	mech   string
	lookup ScramLookup

	step            int
	user            string
	cred            ScramCredential
	clientFirstBare string
	serverFirst     string
	nonce           string
}

// NewScramServer starts an exchange for mechanism mech.
func NewScramServer(mech string, lookup ScramLookup) (*ScramServer, error) {
	if _, err := scramHash(mech); err != nil {
		return nil, err
	}
	return &ScramServer{mech: mech, lookup: lookup}, nil
}

// User is the authenticated user once Step reported done.
func (s *ScramServer) User() string { return s.user }

// Step consumes one client message and returns the answer; done is true
// after the final answer, which means the client authenticated. Any error
// ends the exchange: the client failed to authenticate (ErrAuthFailed,
// wrapped with a reason fit for the server's log), or sent a malformed
// message.
func (s *ScramServer) Step(msg []byte) (answer []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step++
		return s.first(string(msg))
	case 1:
		s.step++
		return s.final(string(msg))
	}
	return nil, false, errors.New("scram: exchange already finished")
}

func (s *ScramServer) first(msg string) ([]byte, bool, error) {
	// gs2-header: "n," or "y," (no channel binding), optional "a=authzid", ",".
	if !strings.HasPrefix(msg, "n,") && !strings.HasPrefix(msg, "y,") {
		return nil, false, errors.New("scram: channel binding is not supported (gs2 header must start with n, or y,)")
	}
	rest := msg[2:]
	i := strings.IndexByte(rest, ',')
	if i < 0 {
		return nil, false, errors.New("scram: malformed gs2 header")
	}
	authzid := rest[:i]
	bare := rest[i+1:]
	attrs, err := scramAttrs(bare)
	if err != nil {
		return nil, false, err
	}
	user, ok := attrs["n"]
	if !ok || user == "" {
		return nil, false, errors.New("scram: client-first-message has no user name")
	}
	user, err = scramUnescape(user)
	if err != nil {
		return nil, false, err
	}
	if authzid != "" {
		az, err := scramUnescape(strings.TrimPrefix(authzid, "a="))
		if err != nil || !strings.HasPrefix(authzid, "a=") || az != user {
			return nil, false, fmt.Errorf("%w: authorization id differs from the user %q", ErrAuthFailed, user)
		}
	}
	if _, ok := attrs["m"]; ok {
		return nil, false, errors.New("scram: mandatory extensions are not supported")
	}
	cnonce := attrs["r"]
	if cnonce == "" {
		return nil, false, errors.New("scram: client-first-message has no nonce")
	}
	cred, found, err := s.lookup(user, s.mech)
	if err != nil {
		return nil, false, fmt.Errorf("scram: looking up %q: %w", user, err)
	}
	if !found {
		// Answer as for a known user (a random salt) would leak less,
		// but Kafka fails at once too; the client learns only "failed".
		return nil, false, fmt.Errorf("%w: no %s credential for user %q", ErrAuthFailed, s.mech, user)
	}
	nb := make([]byte, 24)
	rand.Read(nb)
	s.user, s.cred, s.clientFirstBare = user, cred, bare
	s.nonce = cnonce + base64.RawURLEncoding.EncodeToString(nb)
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(cred.Salt), cred.Iterations)
	return []byte(s.serverFirst), false, nil
}

func (s *ScramServer) final(msg string) ([]byte, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, errors.New("scram: client-final-message has no proof")
	}
	withoutProof := msg[:i]
	attrs, err := scramAttrs(msg)
	if err != nil {
		return nil, false, err
	}
	// Kafka accepts a final nonce that ends with the server's nonce
	// (ScramSaslServer uses endsWith): librdkafka sends its client nonce
	// followed by the whole server nonce, which already starts with it.
	// The proof covers the message as sent, so this weakens nothing.
	if !strings.HasSuffix(attrs["r"], s.nonce) {
		return nil, false, fmt.Errorf("%w: user %q: nonce mismatch", ErrAuthFailed, s.user)
	}
	cb, err := base64.StdEncoding.DecodeString(attrs["c"])
	if err != nil || (string(cb) != "n,," && !strings.HasPrefix(string(cb), "n,a=") && !strings.HasPrefix(string(cb), "y,")) {
		return nil, false, fmt.Errorf("%w: user %q: bad channel binding", ErrAuthFailed, s.user)
	}
	proof, err := base64.StdEncoding.DecodeString(attrs["p"])
	h, _ := scramHash(s.mech)
	if err != nil || len(proof) != h().Size() {
		return nil, false, fmt.Errorf("%w: user %q: malformed proof", ErrAuthFailed, s.user)
	}
	authMsg := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	sig := hmacSum(h, s.cred.StoredKey, []byte(authMsg))
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ sig[j]
	}
	stored := h()
	stored.Write(clientKey)
	if subtle.ConstantTimeCompare(stored.Sum(nil), s.cred.StoredKey) != 1 {
		return nil, false, fmt.Errorf("%w: user %q: wrong password", ErrAuthFailed, s.user)
	}
	serverSig := hmacSum(h, s.cred.ServerKey, []byte(authMsg))
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, nil
}

// scramAttrs splits "k=v,k=v" (values may contain '=').
func scramAttrs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if len(part) < 2 || part[1] != '=' {
			return nil, fmt.Errorf("scram: malformed attribute %q", truncate(part))
		}
		k := part[:1]
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("scram: attribute %s given twice", k)
		}
		out[k] = part[2:]
	}
	return out, nil
}

// scramUnescape undoes RFC 5802's "=2C" and "=3D" in user names.
func scramUnescape(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("scram: bad escape in user name")
		}
		i += 2
	}
	return b.String(), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// CheckPassword reports whether password is the one cred was made from
// (for HTTP Basic logins, which carry the password itself).
func (cred ScramCredential) CheckPassword(password string) bool {
	salted, err := SaltPassword(cred.Mechanism, password, cred.Salt, cred.Iterations)
	if err != nil {
		return false
	}
	fresh, err := NewScramCredential(cred.Mechanism, cred.Salt, salted, cred.Iterations)
	return err == nil && subtle.ConstantTimeCompare(fresh.StoredKey, cred.StoredKey) == 1
}
