#!/bin/bash
# Transport with kdig, the other client: several queries on one kept-open TCP
# connection (+keepopen), answered in order. Its own test so that a machine
# without kdig reports it skipped instead of passing test_transport silently.
. "$(dirname "$0")/lib.sh"

command -v kdig >/dev/null || skip "kdig is not installed (Debian: knot-dnsutils)"

cat >"$T/zone" <<'ZONE'
$ORIGIN skydns.local.
$TTL 60
www   IN A     10.0.0.10
db    IN A     10.0.1.1
db    IN A     10.0.1.2
db    IN A     10.0.1.3
txt   IN TXT   "hello transport"
ZONE

write_conf "workers = 2"
"$SKYDNS_BIN" -config-file "$CONF" -import "$T/zone" >/dev/null 2>&1
assert_eq "import exit status" 0 $?
skydns_start

k=$(kdig +tcp +keepopen +short +timeout=3 +retry=0 -p "$PORT" @127.0.0.1 www.skydns.local. A \
	db.skydns.local. A txt.skydns.local. TXT 2>&1)
assert_eq "kdig +keepopen: www, then db's three addresses, then the TXT" \
	'10.0.0.10|10.0.1.1|10.0.1.2|10.0.1.3|"hello transport"' \
	"$(printf '%s\n' "$k" | sed -n '1p' | tr '\n' '|')$(printf '%s\n' "$k" | sed -n '2,4p' | sort |
		tr '\n' '|')$(printf '%s\n' "$k" | sed -n '5p')"
assert_eq "kdig +keepopen: 5 answer lines" 5 "$(printf '%s\n' "$k" | grep -c .)"
skydns_stop TERM
finish
