package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strata-io/strata/cmd/node"
)

// `strata user` manages SCRAM users; a user it creates logs in on a SASL
// listener, with either mechanism, and not after it is deleted.
func TestUserCommands(t *testing.T) {
	n := startNodeWith(t, func(cfg *node.Config) {
		cfg.HTTPAddr = ""
		cfg.Security.Listeners = "INTERNAL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"
		cfg.Security.ProtocolMap = "INTERNAL:PLAINTEXT"
	})
	boot := "--bootstrap=" + n.KafkaAddr()
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	if out := cli(t, "user", "create", "alice", "--password-file", pw, boot); !strings.Contains(out, "SCRAM-SHA-256 and SCRAM-SHA-512 credentials stored") {
		t.Fatalf("user create: %q", out)
	}
	cli(t, "user", "create", "bob", "--password", "pw2", "--mechanism", "SCRAM-SHA-512", "--iterations", "4096", boot)
	list := cli(t, "user", "list", boot)
	for _, want := range []string{"alice  SCRAM-SHA-256  8192", "alice  SCRAM-SHA-512  8192", "bob    SCRAM-SHA-512  4096"} {
		if !strings.Contains(list, want) {
			t.Fatalf("user list lacks %q:\n%s", want, list)
		}
	}
	login := func(user, pass string, sha512 bool) error {
		a := scram.Auth{User: user, Pass: pass}
		mech := a.AsSha256Mechanism()
		if sha512 {
			mech = a.AsSha512Mechanism()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.ListenerAddr("SASL_PLAINTEXT")), kgo.SASL(mech), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		return err
	}
	for _, sha512 := range []bool{false, true} {
		if err := login("alice", "correct horse", sha512); err != nil {
			t.Fatalf("alice (sha512 %v) cannot log in: %v", sha512, err)
		}
	}
	if err := login("bob", "pw2", false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("bob has no SHA-256 credential, yet: %v", err)
	}
	var out, errb bytes.Buffer
	for _, bad := range [][]string{
		{"user", "create", "carol", boot},
		{"user", "create", "carol", "--password", "x", "--iterations", "100", boot},
		{"user", "create", "carol", "--password", "x", "--mechanism", "SCRAM-MD5", boot},
		{"user", "delete", "nobody", boot},
		{"user", "frobnicate", boot},
	} {
		errb.Reset()
		if code := run(bad, &out, &errb); code == 0 || errb.Len() == 0 {
			t.Errorf("strata %v: exit %d, stderr %q", bad, code, errb.String())
		}
	}
	if out := cli(t, "user", "delete", "alice", boot); !strings.Contains(out, "deleted user alice") {
		t.Fatalf("user delete: %q", out)
	}
	if err := login("alice", "correct horse", true); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a deleted user logs in: %v", err)
	}
	if list := cli(t, "user", "list", boot); strings.Contains(list, "alice") {
		t.Fatalf("deleted user listed:\n%s", list)
	}
	if out := cli(t, "user", "-h"); !strings.Contains(out, "strata user create NAME") {
		t.Fatalf("user -h: %q", out)
	}
}

// `strata acl` adds, lists and removes ACLs; bad input is refused with a
// message and changes nothing.
func TestACLCommands(t *testing.T) {
	n := startNodeWith(t, func(cfg *node.Config) {
		cfg.HTTPAddr = ""
		cfg.Security.Authorizer = "acl"
		cfg.Security.SuperUsers = "User:ANONYMOUS"
	})
	boot := "--bootstrap=" + n.KafkaAddr()
	if out := cli(t, "acl", "add", "--allow-principal", "User:alice", "--operation", "read,describe", "--topic", "orders-", "--resource-pattern-type", "prefixed", boot); out != "added 2 ACL(s)\n" {
		t.Fatalf("acl add: %q", out)
	}
	cli(t, "acl", "add", "--deny-principal", "User:bob", "--operation", "ALL", "--group", "billing", "--host", "10.0.0.7", boot)
	cli(t, "acl", "add", "--allow-principal", "User:ops", "--operation", "alter_configs", "--cluster", boot)
	list := cli(t, "acl", "list", boot)
	for _, want := range []string{
		"TOPIC     orders-        PREFIXED  User:alice  *         READ",
		"GROUP     billing        LITERAL   User:bob    10.0.0.7  ALL",
		"CLUSTER   kafka-cluster  LITERAL   User:ops    *         ALTER_CONFIGS",
	} {
		if !strings.Contains(list, want) {
			t.Fatalf("acl list lacks %q:\n%s", want, list)
		}
	}
	// list --topic shows the ACLs that apply to that topic.
	if out := cli(t, "acl", "list", "--topic", "orders-eu", boot); !strings.Contains(out, "User:alice") || strings.Contains(out, "User:bob") {
		t.Fatalf("acl list --topic orders-eu:\n%s", out)
	}
	var out, errb bytes.Buffer
	for _, bad := range [][]string{
		{"acl", "add", "--operation", "read", "--topic", "x"},
		{"acl", "add", "--allow-principal", "alice", "--operation", "read", "--topic", "x"},
		{"acl", "add", "--allow-principal", "User:a", "--operation", "fly", "--topic", "x"},
		{"acl", "add", "--allow-principal", "User:a", "--operation", "read"},
		{"acl", "add", "--allow-principal", "User:a", "--operation", "read", "--topic", "x", "--group", "g"},
		{"acl", "remove", "--allow-principal", "User:nobody", "--operation", "read", "--topic", "x"},
	} {
		errb.Reset()
		if code := run(append(bad, boot), &out, &errb); code == 0 || errb.Len() == 0 {
			t.Errorf("strata %v: exit %d, %q", bad, code, errb.String())
		}
	}
	if out := cli(t, "acl", "remove", "--allow-principal", "User:alice", "--operation", "read,describe", "--topic", "orders-", "--resource-pattern-type", "prefixed", boot); out != "removed 2 ACL(s)\n" {
		t.Fatalf("acl remove: %q", out)
	}
	if list := cli(t, "acl", "list", boot); strings.Contains(list, "User:alice") || !strings.Contains(list, "User:ops") {
		t.Fatalf("after remove:\n%s", list)
	}
}
