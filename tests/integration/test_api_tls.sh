#!/bin/bash
# The admin API over TLS (api-certfile / api-keyfile, civetweb's own TLS):
# a self-signed certificate made here; curl verifies it, writes a record
# over HTTPS and dig sees it; plain HTTP on the TLS port gets no API.
#
# Debian 12's civetweb 1.15 with OpenSSL 3 cannot do this: it dlsym()s
# SSL_get_peer_certificate, which OpenSSL 3 no longer exports, and crashes
# on the first TLS connection. skydns detects that pairing and refuses to
# start with a message saying so; that refusal is tested then, and the test
# ends as skipped (77) because TLS itself never ran.
. "$(dirname "$0")/lib.sh"

tls_broken() {
	$PY -c 'import ctypes, sys
ssl = ctypes.CDLL("libssl.so")
sys.exit(0 if not hasattr(ssl, "SSL_get_peer_certificate") else 1)'
}

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" \
	>/dev/null 2>&1
assert_eq "self-signed certificate made" 0 $?

TOKEN=tls-token
APORT=$(free_port)
A=https://127.0.0.1:$APORT
CONF_EXTRA="[Api]
api-enable = true
api-address = 127.0.0.1:$APORT
api-token = $TOKEN
api-certfile = $T/cert.pem
api-keyfile = $T/key.pem"
write_conf
if tls_broken; then
	out=$(timeout 10 "$SKYDNS_BIN" -config-file "$CONF" 2>&1)
	rc=$?
	assert_true "civetweb+OpenSSL 3: start refused (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
	assert_contains "the message names the cause" "$out" "OpenSSL 3 no longer exports"
	assert_contains "and the way out" "$out" "Terminate TLS in front of the API"
	skip "civetweb $(dpkg-query -W -f='${Version}' libcivetweb1 2>/dev/null || echo '?') with OpenSSL 3 cannot serve TLS: TLS, CA-verified curl and writes over HTTPS did not run (only the refusal to start was checked)"
fi
skydns_start
c() { curl -s -m 10 --cacert "$T/cert.pem" "$@"; }
wait_for "api over TLS" 5000 c -f -o /dev/null "$A/health" || fail "api up over TLS"

assert_eq "GET /health over TLS" 200 "$(c -o /dev/null -w '%{http_code}' "$A/health")"
code=$(c -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
	--data-binary '{"type":"A","ips":["10.7.0.1"]}' "$A/skydns/api/secure")
assert_eq "POST over TLS -> 201" 201 "$code"
assert_eq "dig sees the record written over TLS" "10.7.0.1" "$(dig_short secure.skydns.local)"
assert_eq "bad token over TLS -> 401" 401 \
	"$(c -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$A/skydns/api/")"
# The certificate is really checked: without --cacert curl refuses it.
curl -s -m 5 -o /dev/null "$A/health"
assert_true "an unknown CA is refused by the client" test $? -ne 0
# No plain HTTP API on the TLS port: the server answers (a 400, or it closes
# the connection: curl's 52 empty reply / 56 receive error), it does not time
# out (28) or refuse (7), which would say nothing about the API.
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APORT/skydns/api/?token=$TOKEN")
crc=$?
assert_true "plain HTTP on the TLS port: rejected, not served (http $code, curl exit $crc)" \
	test "$code" = 400 -o "$code" = 000 -a "(" "$crc" = 52 -o "$crc" = 56 ")"
assert_eq "TLS on the same port still answers after it" 200 \
	"$(c -o /dev/null -w '%{http_code}' "$A/health")"

# A key file that does not match refuses to start, with a message.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=other" \
	-keyout "$T/other.pem" -out "$T/othercert.pem" >/dev/null 2>&1
sed -i "s|api-keyfile = .*|api-keyfile = $T/other.pem|" "$CONF"
skydns_stop
out=$(timeout 10 "$SKYDNS_BIN" -config-file "$CONF" 2>&1)
rc=$?
assert_true "mismatched key: start fails (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
assert_contains "mismatched key: the log says the API did not start" "$out" "api: cannot listen on"
finish
