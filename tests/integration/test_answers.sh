#!/bin/bash
# Issue 2 "DNS behaviour", answer by answer, with real dig and kdig over UDP
# and TCP: every record type, CNAME chains (8 links, loops, dangling), the
# synthesized SOA and NS, NODATA/NXDOMAIN with the SOA and the negative TTL,
# empty non-terminals, EDNS sizes and BADVERS, TC then TCP, 0x20 case,
# FORMERR, NOTIMP and REFUSED without forwarders.
. "$(dirname "$0")/lib.sh"

{
	echo '$ORIGIN skydns.local.'
	echo '$TTL 300'
	echo '@      NS    ns1'
	echo 'ns1    A     127.0.0.1'
	echo 'www    A     10.0.0.10'
	echo 'www    AAAA  fd00::10'
	echo 'txt    TXT   "hello world" "two"'
	echo '@      MX    10 mail'
	echo 'mail   A     10.0.0.20'
	echo 'ptr    PTR   www.skydns.local.'
	echo '_http._tcp.www SRV 0 10 80 www'
	echo 'a.b.c.deep A 10.0.0.30'
	echo 'l1     CNAME l2'
	echo 'l2     CNAME l1'
	echo 'dangling CNAME nothere'
	for i in 1 2 3 4 5 6 7; do echo "c$i CNAME c$((i + 1))"; done
	echo 'c8     CNAME www'
	echo 'c0     CNAME c1'
	for i in $(seq 1 60); do echo "big A 10.1.0.$i"; done
} >"$T/zone"

write_conf "min-ttl = 45"
sed -i '/^nameservers/d' "$CONF" # no forwarding: names outside get REFUSED
"$SKYDNS_BIN" -config-file "$CONF" -import "$T/zone" >/dev/null 2>&1
assert_eq "import" 0 $?
skydns_start

q() { dig +time=2 +tries=1 -p "$PORT" @127.0.0.1 "$@" 2>&1; }
# The answer section, whitespace folded: "name ttl IN type rdata"
answer() { q +noall +answer "$@" | tr -s ' \t' ' '; }
authority() { q +noall +authority "$@" | tr -s ' \t' ' '; }
flags() { q "$@" | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p'; }
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }
# "status=RCODE" then the answer records, one per line: an expected empty answer
# is "status=NOERROR" alone, which a timeout (no status line) cannot fake.
answer_st() {
	local out
	out=$(q +noall +comments +answer "$@")
	sed -n 's/.*status: \([A-Z]*\),.*/status=\1/p' <<<"$out"
	grep -v '^;' <<<"$out" | grep . | tr -s ' \t' ' '
}

for tr in +notcp +tcp; do
	t="[$tr]"
	assert_eq "$t A" "www.skydns.local. 300 IN A 10.0.0.10" "$(answer www.skydns.local A $tr)"
	assert_eq "$t AA set, RA clear" "qr aa rd" "$(flags www.skydns.local A $tr)"
	assert_eq "$t AAAA" "www.skydns.local. 300 IN AAAA fd00::10" "$(answer www.skydns.local AAAA $tr)"
	assert_eq "$t TXT" 'txt.skydns.local. 300 IN TXT "hello world" "two"' \
		"$(answer txt.skydns.local TXT $tr)"
	assert_eq "$t MX" "skydns.local. 300 IN MX 10 mail.skydns.local." \
		"$(answer skydns.local MX $tr)"
	assert_eq "$t PTR" "ptr.skydns.local. 300 IN PTR www.skydns.local." \
		"$(answer ptr.skydns.local PTR $tr)"
	assert_eq "$t SRV" "_http._tcp.www.skydns.local. 300 IN SRV 0 10 80 www.skydns.local." \
		"$(answer _http._tcp.www.skydns.local SRV $tr)"
	assert_eq "$t stored NS at the apex" "skydns.local. 300 IN NS ns1.skydns.local." \
		"$(answer skydns.local NS $tr)"
	soa=$(answer skydns.local SOA $tr)
	assert_contains "$t synthesized SOA" "$soa" \
		"skydns.local. 45 IN SOA ns1.skydns.local. hostmaster.skydns.local. "
	assert_contains "$t SOA timers, minimum = min-ttl" "$soa" " 3600 600 86400 45"

	# CNAME: chased inside the store, CNAME first; 8 links answer in full.
	chain=$(answer c1.skydns.local A $tr)
	assert_eq "$t 8-link chain: 8 CNAMEs + A" "8 1" \
		"$(grep -c ' CNAME ' <<<"$chain") $(grep -c ' A 10.0.0.10' <<<"$chain")"
	assert_eq "$t chain starts at the question" "c1.skydns.local. 300 IN CNAME c2.skydns.local." \
		"$(head -1 <<<"$chain")"
	long=$(answer c0.skydns.local A $tr)
	assert_eq "$t 9 links: chase stops after 8 CNAMEs, no address" "8 0" \
		"$(grep -c ' CNAME ' <<<"$long") $(grep -c ' A ' <<<"$long")"
	loop=$(answer l1.skydns.local A $tr)
	assert_eq "$t loop detected: each link once" \
		"l1.skydns.local. 300 IN CNAME l2.skydns.local.|l2.skydns.local. 300 IN CNAME l1.skydns.local." \
		"$(tr '\n' '|' <<<"$loop" | sed 's/|$//')"
	assert_eq "$t loop answers" "NOERROR" "$(status l1.skydns.local A $tr)"
	assert_eq "$t dangling CNAME: NXDOMAIN" "NXDOMAIN" "$(status dangling.skydns.local A $tr)"
	assert_eq "$t dangling CNAME still in the answer" \
		"dangling.skydns.local. 300 IN CNAME nothere.skydns.local." "$(answer dangling.skydns.local A $tr)"
	assert_eq "$t CNAME asked directly" "l1.skydns.local. 300 IN CNAME l2.skydns.local." \
		"$(answer l1.skydns.local CNAME $tr)"

	# Negative answers: SOA in authority with TTL = SOA minimum.
	assert_eq "$t NODATA rcode" "NOERROR" "$(status www.skydns.local MX $tr)"
	assert_eq "$t NODATA empty answer" "status=NOERROR" "$(answer_st www.skydns.local MX $tr)"
	assert_contains "$t NODATA SOA, TTL 45" "$(authority www.skydns.local MX $tr)" \
		"skydns.local. 45 IN SOA ns1.skydns.local."
	assert_eq "$t NXDOMAIN" "NXDOMAIN" "$(status nope.skydns.local A $tr)"
	assert_contains "$t NXDOMAIN SOA, TTL 45" "$(authority nope.skydns.local A $tr)" \
		"skydns.local. 45 IN SOA ns1.skydns.local."
	assert_eq "$t NXDOMAIN is AA" "qr aa rd" "$(flags nope.skydns.local A $tr)"
	for ent in deep c.deep b.c.deep; do
		assert_eq "$t empty non-terminal $ent" "NOERROR" "$(status $ent.skydns.local A $tr)"
	done
	assert_eq "$t below an ENT's leaf" "NXDOMAIN" "$(status x.a.b.c.deep.skydns.local A $tr)"

	# 0x20: the question's case comes back unchanged.
	assert_eq "$t case echoed" "WwW.SkYdNs.LoCaL. 300 IN A 10.0.0.10" \
		"$(answer WwW.SkYdNs.LoCaL A $tr)"
	assert_eq "$t question echoed" ";WwW.SkYdNs.LoCaL. IN A" \
		"$(q +noall +question WwW.SkYdNs.LoCaL A $tr | tr -s ' \t' ' ')"

	# EDNS: our size is advertised, version > 0 is BADVERS.
	assert_contains "$t OPT with edns-bufsize" "$(q +bufsize=4096 www.skydns.local A $tr)" "udp: 1232"
	assert_eq "$t EDNS version 1" "BADVERS" "$(status +edns=1 +noednsnegotiation www.skydns.local A $tr)"
	noopt=$(q +noedns www.skydns.local A $tr)
	assert_eq "$t no EDNS, no OPT (an answer came, without OPT)" "NOERROR 0" \
		"$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$noopt") $(grep -c 'OPT PSEUDOSECTION' <<<"$noopt")"

	assert_eq "$t REFUSED outside the local domains" "REFUSED" "$(status example.com A $tr)"
	assert_eq "$t FORMERR for QDCOUNT 0" "FORMERR" "$(status +header-only $tr)"
	assert_eq "$t NOTIMP for opcode STATUS" "NOTIMP" "$(status +opcode=status www.skydns.local A $tr)"
done

# TC over UDP when the answer does not fit; TCP gets it whole.
assert_contains "UDP 512 without EDNS: TC" "$(flags +noedns +ignore big.skydns.local A)" "tc"
assert_eq "UDP TC: no partial rrset" "status=NOERROR" "$(answer_st +noedns +ignore big.skydns.local A)"
assert_eq "UDP with EDNS 1232: all 60 fit" 60 "$(answer +bufsize=1232 big.skydns.local A | grep -c ' A ')"
assert_eq "dig falls back to TCP: all 60" 60 "$(answer +noedns big.skydns.local A | grep -c ' A ')"
assert_eq "TCP: all 60" 60 "$(answer +tcp big.skydns.local A | grep -c ' A ')"

# kdig, the other client: UDP, TCP, several queries on one kept-open connection.
kq() { kdig +timeout=2 +retry=0 -p "$PORT" @127.0.0.1 "$@" 2>&1; }
assert_eq "kdig UDP" "10.0.0.10" "$(kq +short www.skydns.local A)"
assert_eq "kdig TCP" "fd00::10" "$(kq +short +tcp www.skydns.local AAAA)"
assert_eq "kdig SRV" "0 10 80 www.skydns.local." "$(kq +short _http._tcp.www.skydns.local SRV)"
assert_contains "kdig NXDOMAIN" "$(kq nope.skydns.local A)" "status: NXDOMAIN"
assert_contains "kdig BADVERS" "$(kq +edns=1 www.skydns.local A)" "status: BADVERS"
assert_contains "kdig AA flag" "$(kq www.skydns.local A)" "Flags: qr aa rd"
keep=$(kq +tcp +keepopen +short www.skydns.local A mail.skydns.local A c8.skydns.local A)
assert_eq "kdig +keepopen: three answers on one connection" \
	"10.0.0.10|10.0.0.20|www.skydns.local.|10.0.0.10" "$(tr '\n' '|' <<<"$keep" | sed 's/|$//')"
assert_true "server alive at the end" skydns_alive
finish
