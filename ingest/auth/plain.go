package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ParsePlain splits a SASL PLAIN message (RFC 4616):
// authzid NUL authcid NUL passwd.
func ParsePlain(msg []byte) (authzid, user, password string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", "", "", errors.New("plain: malformed message (want authzid NUL user NUL password)")
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

// PlainUsers checks PLAIN logins against a file of "user:password" lines
// (blank lines and lines starting with # are skipped). The file is read
// again when it changes, checked at most once a second, so users can be
// added without a restart.
type PlainUsers struct {
	path string

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
	users   map[string][32]byte // user → SHA-256 of the password
}

// LoadPlainUsers reads path; a missing or malformed file is an error.
func LoadPlainUsers(path string) (*PlainUsers, error) {
	p := &PlainUsers{path: path}
	if err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PlainUsers) reload() error {
	st, err := os.Stat(p.path)
	if err != nil {
		return fmt.Errorf("plain users file: %w", err)
	}
	if p.users != nil && st.ModTime().Equal(p.modTime) && st.Size() == p.size {
		return nil
	}
	data, err := os.ReadFile(p.path)
	if err != nil {
		return fmt.Errorf("plain users file: %w", err)
	}
	users := map[string][32]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return fmt.Errorf("plain users file %s line %d: want user:password", p.path, n)
		}
		users[user] = sha256.Sum256([]byte(pass))
	}
	p.users, p.modTime, p.size = users, st.ModTime(), st.Size()
	return nil
}

// Check reports whether user and password match the file.
func (p *PlainUsers) Check(user, password string) error {
	p.mu.Lock()
	if time.Since(p.checked) > time.Second {
		p.checked = time.Now()
		if err := p.reload(); err != nil {
			p.mu.Unlock()
			return fmt.Errorf("%w: %v", ErrAuthFailed, err)
		}
	}
	want, ok := p.users[user]
	p.mu.Unlock()
	got := sha256.Sum256([]byte(password))
	if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return fmt.Errorf("%w: user %q: unknown user or wrong password", ErrAuthFailed, user)
	}
	return nil
}

// Has reports whether the file names user.
func (p *PlainUsers) Has(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.users[user]
	return ok
}
