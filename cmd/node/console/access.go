package console

import (
	"context"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// With the authorizer on, the node's HTTP guard authenticates every
// request and puts the caller's principal in its context; the console then
// checks each action against that principal's ACLs (Config.Authorize), as
// the Kafka APIs it calls would for the user: it lists only the topics and
// groups the user may describe, tails only topics it may read, and so on.

type principalKey struct{}

// WithPrincipal returns ctx carrying the HTTP caller's principal.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// PrincipalFrom returns the principal WithPrincipal stored, or "".
func PrincipalFrom(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

// may reports whether the request's caller may do op on the resource.
func (c *Console) may(r *http.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return c.cfg.Authorize == nil || c.cfg.Authorize(r, op, rt, name)
}

// forbidden is the error for an action the caller may not take.
func forbidden(r *http.Request, what string) error {
	who := PrincipalFrom(r.Context())
	if who == "" {
		who = "this user"
	}
	return &httpErr{http.StatusForbidden, fmt.Sprintf("%s may not %s", who, what)}
}

const (
	topicRes   = kmsg.ACLResourceTypeTopic
	groupRes   = kmsg.ACLResourceTypeGroup
	clusterRes = kmsg.ACLResourceTypeCluster
	clusterID  = "kafka-cluster"
)
