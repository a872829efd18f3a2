package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// ParseOAuthBearer extracts the token from a SASL OAUTHBEARER client
// message (RFC 7628): gs2-header, 0x01, "auth=Bearer <token>", 0x01,
// other key=value pairs, 0x01 0x01.
func ParseOAuthBearer(msg []byte) (token string, err error) {
	s := string(msg)
	i := strings.IndexByte(s, 0x01)
	if i < 0 || !strings.HasSuffix(s, "\x01\x01") {
		return "", errors.New("oauthbearer: malformed message")
	}
	gs2 := s[:i]
	if !strings.HasPrefix(gs2, "n,") && !strings.HasPrefix(gs2, "y,") {
		return "", errors.New("oauthbearer: malformed gs2 header")
	}
	for _, kv := range strings.Split(strings.TrimSuffix(s[i+1:], "\x01\x01"), "\x01") {
		if v, ok := strings.CutPrefix(kv, "auth="); ok {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return "", errors.New("oauthbearer: auth is not a Bearer token")
			}
			return strings.TrimSpace(tok), nil
		}
	}
	return "", errors.New("oauthbearer: no auth=Bearer token")
}

// JWTValidator checks signed JWTs (RS256/384/512, ES256/384/512) against a
// JWKS, and their issuer, audience and times.
type JWTValidator struct {
	// JWKS is a file path or an http(s) URL; it is read again every
	// Refresh (default 5 min) and when a token names an unknown key id.
	JWKS     string
	Issuer   string // required "iss", if set
	Audience string // required in "aud", if set
	// SubjectClaim names the claim that becomes the principal's name
	// (default "sub").
	SubjectClaim string
	Refresh      time.Duration
	// Leeway is the clock skew allowed on exp and nbf (default 30 s).
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	fetched time.Time
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (v *JWTValidator) load(ctx context.Context) error {
	var data []byte
	var err error
	if strings.HasPrefix(v.JWKS, "http://") || strings.HasPrefix(v.JWKS, "https://") {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, v.JWKS, nil)
		if rerr != nil {
			return rerr
		}
		resp, herr := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if herr != nil {
			return fmt.Errorf("jwks %s: %w", v.JWKS, herr)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("jwks %s: %s", v.JWKS, resp.Status)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	} else {
		data, err = os.ReadFile(v.JWKS)
	}
	if err != nil {
		return fmt.Errorf("jwks %s: %w", v.JWKS, err)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("jwks %s: %w", v.JWKS, err)
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := b64(k.N)
			e, err2 := b64(k.E)
			if err1 != nil || err2 != nil || len(e) > 4 {
				return fmt.Errorf("jwks %s: bad RSA key %q", v.JWKS, k.Kid)
			}
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, err1 := b64(k.X)
			y, err2 := b64(k.Y)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("jwks %s: bad EC key %q", v.JWKS, k.Kid)
			}
			keys[k.Kid] = &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("jwks %s: no usable signing keys", v.JWKS)
	}
	v.keys, v.fetched = keys, time.Now()
	return nil
}

// key returns the public key for kid, reading the JWKS again when it is
// stale or lacks kid (at most once every 10 s for unknown ids).
func (v *JWTValidator) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	refresh := v.Refresh
	if refresh <= 0 {
		refresh = 5 * time.Minute
	}
	k, ok := v.keys[kid]
	if v.keys == nil || time.Since(v.fetched) > refresh || (!ok && time.Since(v.fetched) > 10*time.Second) {
		if err := v.load(ctx); err != nil && v.keys == nil {
			return nil, err
		}
		k, ok = v.keys[kid]
	}
	if !ok && kid == "" && len(v.keys) == 1 {
		for _, only := range v.keys {
			return only, nil
		}
	}
	if !ok {
		return nil, fmt.Errorf("no key %q in the JWKS", kid)
	}
	return k, nil
}

// Check loads the JWKS now, so a bad configuration fails at start-up.
func (v *JWTValidator) Check(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.load(ctx)
}

// Validate checks token and returns its subject and expiry.
func (v *JWTValidator) Validate(ctx context.Context, token string) (subject string, expires time.Time, err error) {
	fail := func(format string, args ...any) (string, time.Time, error) {
		return "", time.Time{}, fmt.Errorf("%w: token: "+format, append([]any{ErrAuthFailed}, args...)...)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fail("not a signed JWT")
	}
	hb, err1 := b64(parts[0])
	cb, err2 := b64(parts[1])
	sig, err3 := b64(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return fail("bad base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return fail("bad header")
	}
	key, err := v.key(ctx, hdr.Kid)
	if err != nil {
		return fail("%v", err)
	}
	signed := []byte(parts[0] + "." + parts[1])
	if err := verifyJWS(hdr.Alg, key, signed, sig); err != nil {
		return fail("%v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(cb, &claims); err != nil {
		return fail("bad claims")
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = 30 * time.Second
	}
	exp, ok := claims["exp"].(float64)
	if !ok {
		return fail("no exp claim")
	}
	expires = time.Unix(int64(exp), 0)
	if now.After(expires.Add(leeway)) {
		return fail("expired at %s", expires.UTC().Format(time.RFC3339))
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(leeway).Before(time.Unix(int64(nbf), 0)) {
		return fail("not valid before %s", time.Unix(int64(nbf), 0).UTC().Format(time.RFC3339))
	}
	if v.Issuer != "" && claims["iss"] != v.Issuer {
		return fail("issuer %v, want %q", claims["iss"], v.Issuer)
	}
	if v.Audience != "" && !hasAudience(claims["aud"], v.Audience) {
		return fail("audience %v lacks %q", claims["aud"], v.Audience)
	}
	sc := v.SubjectClaim
	if sc == "" {
		sc = "sub"
	}
	sub, _ := claims[sc].(string)
	if sub == "" {
		return fail("no %q claim", sc)
	}
	return sub, expires, nil
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

func verifyJWS(alg string, key crypto.PublicKey, signed, sig []byte) error {
	var h crypto.Hash
	switch alg {
	case "RS256", "ES256":
		h = crypto.SHA256
	case "RS384", "ES384":
		h = crypto.SHA384
	case "RS512", "ES512":
		h = crypto.SHA512
	default:
		return fmt.Errorf("algorithm %q not accepted", alg)
	}
	var digest []byte
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(signed)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(signed)
		digest = d[:]
	default:
		d := sha512.Sum512(signed)
		digest = d[:]
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' {
			return errors.New("key type does not match the algorithm")
		}
		if err := rsa.VerifyPKCS1v15(k, h, digest, sig); err != nil {
			return errors.New("bad signature")
		}
	case *ecdsa.PublicKey:
		if alg[0] != 'E' {
			return errors.New("key type does not match the algorithm")
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return errors.New("bad signature")
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("bad signature")
		}
	default:
		return errors.New("unsupported key")
	}
	return nil
}
