package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/ingest/auth/authtest"
)

// With --authorizer acl the HTTP server takes the Kafka users (Basic with a
// SCRAM or PLAIN password, Bearer JWTs) and their ACLs: 401 without valid
// credentials, 403 without READ on the topic (DESCRIBE on the cluster for
// /metrics), and the console shows and does only what the user may.
func TestHTTPUsesKafkaUsersAndACLs(t *testing.T) {
	dir := t.TempDir()
	issuer := authtest.NewIssuer(t, dir)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("carol:carol-pw\n"), 0o600)
	n := startNodeWith(t, func(cfg *node.Config) {
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.Security.Listeners = "INTERNAL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"
		cfg.Security.ProtocolMap = "INTERNAL:PLAINTEXT"
		cfg.Security.Authorizer = "acl"
		cfg.Security.SuperUsers = "User:admin;User:ANONYMOUS"
		cfg.Security.PlainUsersFile = plain
		cfg.Security.OAuthJWKS = issuer.JWKSFile
	})
	boot := "--bootstrap=" + n.KafkaAddr()
	web := "http://" + n.HTTPAddr()
	cli(t, "user", "create", "alice", "--password", "alice-pw", boot)
	cli(t, "user", "create", "admin", "--password", "admin-pw", boot)
	cli(t, "topic", "create", "orders", boot)
	cli(t, "topic", "create", "secret", boot)
	cli(t, "acl", "add", "--allow-principal", "User:alice", "--operation", "read", "--topic", "orders", boot)
	cli(t, "acl", "add", "--allow-principal", "User:carol", "--operation", "read", "--topic", "secret", boot)

	get := func(method, path, user, pass, bearer, body string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, web+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	aliceTok := issuer.Token(t, map[string]any{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	// The ACLs reach the node's cache through etcd's watch.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := get("GET", "/v1/topics/orders/arrow", "alice", "alice-pw", "", ""); code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []struct {
		method, path, user, pass, bearer, body string
		want                                   int
	}{
		{"GET", "/healthz", "", "", "", "", 200},
		{"GET", "/", "", "", "", "", 401},
		{"GET", "/v1/topics/orders/arrow", "", "", "", "", 401},
		{"GET", "/v1/topics/orders/arrow", "alice", "wrong", "", "", 401},
		{"GET", "/v1/topics/orders/arrow", "", "", "not.a.token", "", 401},
		{"GET", "/v1/topics/orders/arrow", "alice", "alice-pw", "", "", 200},
		{"GET", "/v1/topics/orders/parquet", "", "", aliceTok, "", 200},
		{"GET", "/v1/topics/secret/arrow", "alice", "alice-pw", "", "", 403},
		{"GET", "/v1/topics/secret/arrow", "carol", "carol-pw", "", "", 200}, // a PLAIN user
		{"GET", "/metrics", "alice", "alice-pw", "", "", 403},
		{"GET", "/metrics", "admin", "admin-pw", "", "", 200},
		{"GET", "/", "alice", "alice-pw", "", "", 200},
		{"GET", "/console/api/cluster", "alice", "alice-pw", "", "", 403},
		{"GET", "/console/api/topics/secret", "alice", "alice-pw", "", "", 403},
		{"GET", "/console/api/topics/orders/records?last=5", "alice", "alice-pw", "", "", 200},
		{"POST", "/console/api/topics/orders/records", "alice", "alice-pw", "", `{"value":"x"}`, 403},
		{"POST", "/console/api/topics", "alice", "alice-pw", "", `{"name":"mine","partitions":1}`, 403},
		{"POST", "/console/api/topics/orders/records", "admin", "admin-pw", "", `{"value":"x"}`, 200},
	} {
		code, body, hdr := get(c.method, c.path, c.user, c.pass, c.bearer, c.body)
		if code != c.want {
			t.Errorf("%s %s as %q: %d %q, want %d", c.method, c.path, c.user, code, strings.TrimSpace(body), c.want)
		}
		if code == 401 && !strings.Contains(strings.Join(hdr.Values("WWW-Authenticate"), ","), "Basic") {
			t.Errorf("%s %s: 401 without a Basic challenge", c.method, c.path)
		}
		if strings.Contains(body, "alice-pw") || strings.Contains(body, "wrong") {
			t.Errorf("%s %s: a password in the answer: %q", c.method, c.path, body)
		}
	}
	// The console lists only the topics alice may describe.
	_, body, _ := get("GET", "/console/api/topics", "alice", "alice-pw", "", "")
	var topics []map[string]any
	if err := json.Unmarshal([]byte(body), &topics); err != nil || len(topics) != 1 || topics[0]["name"] != "orders" {
		t.Fatalf("alice's topic list: %s", body)
	}
}
