#!/bin/sh
# make-certs.sh DIR: a demo CA and a server certificate for the compose
# cluster's SASL_SSL listeners (names localhost, 127.0.0.1 and strata-0..2),
# written to DIR (default /certs). Does nothing when DIR already holds them.
# For trying TLS out only: the CA key sits next to the certificates.
set -eu
dir=${1:-/certs}
if [ -f "$dir/server.pem" ]; then
	echo "make-certs: $dir/server.pem exists"
	exit 0
fi
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
	-subj "/CN=strata demo CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=strata" -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:strata-0,DNS:strata-1,DNS:strata-2\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
	-extfile ext.cnf -out server.pem 2>/dev/null
rm -f server.csr ext.cnf ca.srl
# The nodes run as an unprivileged user: the demo files are world-readable.
chmod 644 ./*.pem
echo "make-certs: wrote $dir/ca.pem, server.pem, server-key.pem"
