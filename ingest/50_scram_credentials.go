package ingest

// DescribeUserScramCredentials (50) v0 and AlterUserScramCredentials (51)
// v0: the SCRAM users, kept in etcd as salted keys (never a password). The
// client salts the password (AlterUserScramCredentials carries the salt and
// the salted password, as Kafka's does), so the password never crosses the
// network. Errors are Kafka's: an unknown mechanism is
// UNSUPPORTED_SASL_MECHANISM, an empty name or iterations out of
// [4096, 16384] UNACCEPTABLE_CREDENTIAL, deleting a credential that does not
// exist RESOURCE_NOT_FOUND, the same user twice in one request
// DUPLICATE_RESOURCE.

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/auth"
)

func (s *Server) handleDescribeUserSCRAMCredentials(ctx context.Context, req *kmsg.DescribeUserSCRAMCredentialsRequest) *kmsg.DescribeUserSCRAMCredentialsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	all, err := s.meta.ScramCredentials(ctx)
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		resp.ErrorMessage = kmsg.StringPtr("reading SCRAM credentials from etcd: " + err.Error())
		return resp
	}
	describe := func(user string) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = user
		mechs := all[user]
		if len(mechs) == 0 {
			r.ErrorCode = kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("attempt to describe a user credential that does not exist")
			return r
		}
		names := make([]string, 0, len(mechs))
		for m := range mechs {
			names = append(names, m)
		}
		sort.Strings(names)
		for _, m := range names {
			var cred auth.ScramCredential
			if json.Unmarshal(mechs[m], &cred) != nil {
				continue
			}
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism = auth.ScramMechanismCode(m)
			ci.Iterations = int32(cred.Iterations)
			r.CredentialInfos = append(r.CredentialInfos, ci)
		}
		return r
	}
	if req.Users == nil { // null: every user
		users := make([]string, 0, len(all))
		for u := range all {
			users = append(users, u)
		}
		sort.Strings(users)
		for _, u := range users {
			resp.Results = append(resp.Results, describe(u))
		}
		return resp
	}
	count := map[string]int{}
	for _, u := range req.Users {
		count[u.Name]++
	}
	for _, u := range req.Users {
		if count[u.Name] > 1 {
			r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			r.User = u.Name
			r.ErrorCode = kerr.DuplicateResource.Code
			r.ErrorMessage = kmsg.StringPtr("user named more than once in the request")
			resp.Results = append(resp.Results, r)
			count[u.Name] = -1 // answer once
			continue
		}
		if count[u.Name] < 0 {
			continue
		}
		resp.Results = append(resp.Results, describe(u.Name))
	}
	return resp
}

func (s *Server) handleAlterUserSCRAMCredentials(ctx context.Context, req *kmsg.AlterUserSCRAMCredentialsRequest) *kmsg.AlterUserSCRAMCredentialsResponse {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	type result struct {
		code int16
		msg  string
	}
	results := map[string]*result{}
	var order []string
	set := func(user string, code int16, msg string) {
		r, ok := results[user]
		if !ok {
			r = &result{}
			results[user] = r
			order = append(order, user)
		}
		if r.code == 0 {
			r.code, r.msg = code, msg
		}
	}
	// A user altered twice for the same mechanism in one request is a
	// duplicate, whatever the operations.
	seen := map[[2]string]bool{}
	dup := map[string]bool{}
	mark := func(user string, mech int8) {
		k := [2]string{user, string(rune(mech))}
		if seen[k] {
			dup[user] = true
		}
		seen[k] = true
	}
	for _, d := range req.Deletions {
		mark(d.Name, d.Mechanism)
	}
	for _, u := range req.Upsertions {
		mark(u.Name, u.Mechanism)
	}
	for _, d := range req.Deletions {
		mech := auth.ScramMechanismName(d.Mechanism)
		switch {
		case dup[d.Name]:
			set(d.Name, kerr.DuplicateResource.Code, "a user credential cannot be altered twice in one request")
		case d.Name == "":
			set(d.Name, kerr.UnacceptableCredential.Code, "username must not be empty")
		case mech == "":
			set(d.Name, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism")
		default:
			found, err := s.meta.DeleteScramCredential(ctx, d.Name, mech)
			switch {
			case err != nil:
				set(d.Name, kerr.UnknownServerError.Code, err.Error())
			case !found:
				set(d.Name, kerr.ResourceNotFound.Code, "attempt to delete a user credential that does not exist")
			default:
				set(d.Name, 0, "")
				s.log.Info("SCRAM credential deleted", "user", d.Name, "mechanism", mech)
			}
		}
	}
	for _, u := range req.Upsertions {
		mech := auth.ScramMechanismName(u.Mechanism)
		switch {
		case dup[u.Name]:
			set(u.Name, kerr.DuplicateResource.Code, "a user credential cannot be altered twice in one request")
			continue
		case u.Name == "":
			set(u.Name, kerr.UnacceptableCredential.Code, "username must not be empty")
			continue
		case mech == "":
			set(u.Name, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism")
			continue
		}
		cred, err := auth.NewScramCredential(mech, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			set(u.Name, kerr.UnacceptableCredential.Code, err.Error())
			continue
		}
		if err := s.meta.PutScramCredential(ctx, u.Name, mech, mustMarshal(cred)); err != nil {
			set(u.Name, kerr.UnknownServerError.Code, err.Error())
			continue
		}
		set(u.Name, 0, "")
		s.log.Info("SCRAM credential stored", "user", u.Name, "mechanism", mech, "iterations", u.Iterations)
	}
	for _, user := range order {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		r.ErrorCode = results[user].code
		if results[user].msg != "" {
			r.ErrorMessage = kmsg.StringPtr(results[user].msg)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a struct of strings, ints and byte slices always marshals
	}
	return b
}
