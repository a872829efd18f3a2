package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// adminCmd is what every admin subcommand (topic …, group …) shares: the
// flags that say which node to talk to, and a Kafka client for it.
type adminCmd struct {
	name      string // "topic create", for messages
	fs        *flag.FlagSet
	bootstrap *string
	timeout   *time.Duration
	args      []string // positional arguments, flags removed
}

func newAdminCmd(name string, stderr io.Writer) *adminCmd {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &adminCmd{
		name:      name,
		fs:        fs,
		bootstrap: fs.String("bootstrap", envOr("STRATA_BOOTSTRAP", "127.0.0.1:9092"), "address of a Strata node (env STRATA_BOOTSTRAP)"),
		timeout:   fs.Duration("timeout", 15*time.Second, "give up after this long"),
	}
}

// parse reads flags placed before, between or after the positional
// arguments (`topic create orders --partitions 3`).
func (a *adminCmd) parse(args []string) error {
	for len(args) > 0 {
		if err := a.fs.Parse(args); err != nil {
			return err
		}
		args = a.fs.Args()
		if len(args) > 0 {
			a.args = append(a.args, args[0])
			args = args[1:]
		}
	}
	return nil
}

// one returns the single positional argument, named what for messages.
func (a *adminCmd) one(what string) (string, error) {
	if len(a.args) != 1 {
		return "", fmt.Errorf("%s: want exactly one %s name", a.name, what)
	}
	return a.args[0], nil
}

// dial returns a context bounded by --timeout and a client for --bootstrap;
// the caller calls done.
func (a *adminCmd) dial() (ctx context.Context, cl *kgo.Client, done func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), *a.timeout)
	cl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(*a.bootstrap, ",")...), kgo.RequestRetries(2))
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cl, func() { cl.Close(); cancel() }, nil
}
