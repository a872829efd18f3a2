package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/auth"
)

const userUsage = `usage: strata user create NAME (--password-file FILE | --password P) [--mechanism M,...] [--iterations N]
       strata user list
       strata user delete NAME [--mechanism M,...]
SCRAM users, kept in etcd as salted keys (the password never leaves this
command: it is salted here, as Kafka's tools do). --mechanism is
SCRAM-SHA-256, SCRAM-SHA-512 or both (the default). Every subcommand takes
--bootstrap host:port (default 127.0.0.1:9092, env STRATA_BOOTSTRAP) and
--timeout; "strata user SUBCOMMAND -h" lists its flags.
`

func userCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("user: want a subcommand: create, list or delete")
	}
	sub := args[0]
	if isHelp(sub) {
		fmt.Fprint(stdout, userUsage)
		return nil
	}
	a := newAdminCmd("user "+sub, stderr)
	passFile := a.fs.String("password-file", "", "file whose first line is the password (create)")
	pass := a.fs.String("password", "", "the password (create; visible to other local users in the process list: prefer --password-file)")
	mechs := a.fs.String("mechanism", auth.ScramSHA256+","+auth.ScramSHA512, "SCRAM mechanisms, comma-separated (create, delete)")
	iters := a.fs.Int("iterations", 8192, "PBKDF2 iterations (create; 4096 to 16384)")
	if err := a.parse(args[1:]); err != nil {
		return err
	}
	if sub != "create" && sub != "list" && sub != "delete" {
		return fmt.Errorf("user: unknown subcommand %q (want create, list or delete)", sub)
	}
	var mechList []string
	for _, m := range strings.Split(*mechs, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if auth.ScramMechanismCode(m) == 0 {
			return fmt.Errorf("user %s: --mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", sub, m)
		}
		mechList = append(mechList, m)
	}
	var name, password string
	switch sub {
	case "create":
		var err error
		if name, err = a.one("user"); err != nil {
			return err
		}
		switch {
		case *passFile != "" && *pass != "":
			return errors.New("user create: give --password-file or --password, not both")
		case *passFile != "":
			b, err := os.ReadFile(*passFile)
			if err != nil {
				return fmt.Errorf("user create: %w", err)
			}
			password, _, _ = strings.Cut(string(b), "\n")
			password = strings.TrimSuffix(password, "\r")
		default:
			password = *pass
		}
		if password == "" {
			return errors.New("user create: a password is required (--password-file or --password)")
		}
		if *iters < auth.MinScramIterations || *iters > auth.MaxScramIterations {
			return fmt.Errorf("user create: --iterations %d: want %d to %d", *iters, auth.MinScramIterations, auth.MaxScramIterations)
		}
	case "delete":
		var err error
		if name, err = a.one("user"); err != nil {
			return err
		}
	}
	ctx, cl, done, err := a.dial()
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "create":
		return userCreate(ctx, cl, stdout, name, password, mechList, *iters)
	case "delete":
		return userDelete(ctx, cl, stdout, name, mechList)
	default:
		return userList(ctx, cl, stdout)
	}
}

func userCreate(ctx context.Context, cl *kgo.Client, w io.Writer, name, password string, mechs []string, iters int) error {
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, m := range mechs {
		salt := auth.NewSalt()
		salted, err := auth.SaltPassword(m, password, salt, iters)
		if err != nil {
			return fmt.Errorf("user create: %w", err)
		}
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, auth.ScramMechanismCode(m), int32(iters), salt, salted
		req.Upsertions = append(req.Upsertions, u)
	}
	if err := alterScram(ctx, cl, req); err != nil {
		return fmt.Errorf("user create %s: %v", name, err)
	}
	fmt.Fprintf(w, "user %s: %s credentials stored\n", name, strings.Join(mechs, " and "))
	return nil
}

func userDelete(ctx context.Context, cl *kgo.Client, w io.Writer, name string, mechs []string) error {
	// Only the mechanisms the user has: deleting a missing one is an
	// error in Kafka's protocol.
	have, err := describeScram(ctx, cl)
	if err != nil {
		return fmt.Errorf("user delete: %v", err)
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, m := range mechs {
		if _, ok := have[name][m]; !ok {
			continue
		}
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, auth.ScramMechanismCode(m)
		req.Deletions = append(req.Deletions, d)
	}
	if len(req.Deletions) == 0 {
		return fmt.Errorf("user delete: no %s credential for user %s", strings.Join(mechs, " or "), name)
	}
	if err := alterScram(ctx, cl, req); err != nil {
		return fmt.Errorf("user delete %s: %v", name, err)
	}
	fmt.Fprintf(w, "deleted user %s\n", name)
	return nil
}

func alterScram(ctx context.Context, cl *kgo.Client, req *kmsg.AlterUserSCRAMCredentialsRequest) error {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			if r.ErrorMessage != nil {
				return fmt.Errorf("%v: %s", err, *r.ErrorMessage)
			}
			return err
		}
	}
	return nil
}

// describeScram returns user → mechanism → iterations.
func describeScram(ctx context.Context, cl *kgo.Client) (map[string]map[string]int32, error) {
	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	out := map[string]map[string]int32{}
	for _, r := range resp.Results {
		if r.ErrorCode != 0 {
			continue
		}
		out[r.User] = map[string]int32{}
		for _, ci := range r.CredentialInfos {
			out[r.User][auth.ScramMechanismName(ci.Mechanism)] = ci.Iterations
		}
	}
	return out, nil
}

func userList(ctx context.Context, cl *kgo.Client, w io.Writer) error {
	users, err := describeScram(ctx, cl)
	if err != nil {
		return fmt.Errorf("user list: %v", err)
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
	for _, u := range names {
		ms := make([]string, 0, len(users[u]))
		for m := range users[u] {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", u, m, users[u][m])
		}
	}
	return tw.Flush()
}
