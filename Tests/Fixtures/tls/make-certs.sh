#!/bin/sh
# Regenerates the test CA and the two server certificates it signs: one for localhost and 127.0.0.1, one
# for another name (to check that hostname verification refuses it).
set -e
cd "$(dirname "$0")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 \
    -subj "/CN=Chronicle Test CA" -keyout ca.key -out ca.pem
sign() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
    printf "subjectAltName=$2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > ext.cnf
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 -extfile ext.cnf -out "$1.pem"
    rm -f "$1.csr" ext.cnf
}
sign localhost "DNS:localhost,IP:127.0.0.1"
sign wrong.example "DNS:wrong.example"
rm -f ca.srl ca.key
