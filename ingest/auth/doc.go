// Package auth holds the pieces of Kafka authentication that do not depend
// on a connection: the server side of the SASL mechanisms (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER with JWTs checked against a
// JWKS), and TLS configurations built from PEM files that reload when the
// files change.
//
// A principal is named as Kafka names it: "User:<name>", where the name is
// the SASL user, the JWT's subject, or a client certificate's subject
// distinguished name ("CN=alice,O=Example").
//
// Nothing here logs or returns a secret: errors name the user and the
// reason, never the password, the proof or the token.
package auth
