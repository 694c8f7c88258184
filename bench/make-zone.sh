#!/bin/sh
# make-zone.sh — deterministic benchmark zone + dnsperf query file.
#
# Usage: bench/make-zone.sh [OUTDIR]   (default: bench/data)
# Outputs:
#   OUTDIR/skydns.local.zone   RFC 1035 master file (used by every server)
#   OUTDIR/queries.txt         dnsperf input, 100,000 lines
#   OUTDIR/queries-pos.txt     the same number of lines, every one an existing A (bench/run.sh mix)
#   OUTDIR/queries-neg.txt     80 % negative, as ndots:5 search paths make them (run.sh mix):
#                              60 % NXDOMAIN <name>.default.svc.skydns.local. for names such as
#                              api-N.example.com and svc-N.default.svc (a service asked with
#                              its own search suffix), 20 % NODATA (AAAA of A-only svc-N),
#                              20 % existing A
# Everything is derived from counters and a fixed-seed Park-Miller LCG in awk,
# so the output is byte-identical on every run / every awk (mawk, gawk).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/data}
mkdir -p "$OUT"
NSVC=${NSVC:-10000}      # svc-N.default.svc.skydns.local.  A (one address each)
NMULTI=${NMULTI:-200}    # multi-N.default.svc.skydns.local. 3 x A
NAAAA=${NAAAA:-1000}     # svc-N (N < NAAAA) also get an AAAA
NCNAME=${NCNAME:-200}    # alias-N.default.svc.skydns.local. CNAME svc-N...
NSRV=${NSRV:-200}        # _http._tcp.svc-N.default.svc.skydns.local. SRV
NQ=${NQ:-100000}         # query lines

awk -v nsvc="$NSVC" -v nmulti="$NMULTI" -v naaaa="$NAAAA" -v ncname="$NCNAME" -v nsrv="$NSRV" '
BEGIN {
  print "$ORIGIN skydns.local."
  print "$TTL 300"
  print "@\t3600\tIN\tSOA\tns1.skydns.local. hostmaster.skydns.local. 2024010101 3600 600 86400 60"
  print "@\t3600\tIN\tNS\tns1.skydns.local."
  print "ns1\t3600\tIN\tA\t127.0.0.1"
  print "ns1\t3600\tIN\tAAAA\t::1"
  for (i = 0; i < nsvc; i++) {
    printf "svc-%d.default.svc\tIN\tA\t10.%d.%d.%d\n", i, int(i/65536)%256, int(i/256)%256, i%256
    # one 16-bit group per 65536 names: "fd00::10000" is not an address
    if (i < naaaa && i < 65536)
      printf "svc-%d.default.svc\tIN\tAAAA\tfd00::%x\n", i, i
    else if (i < naaaa)
      printf "svc-%d.default.svc\tIN\tAAAA\tfd00::%x:%x\n", i, int(i/65536), i%65536
  }
  for (i = 0; i < nmulti; i++)
    for (j = 1; j <= 3; j++)
      printf "multi-%d.default.svc\tIN\tA\t10.200.%d.%d\n", i, i%256, j
  for (i = 0; i < ncname; i++)
    printf "alias-%d.default.svc\tIN\tCNAME\tsvc-%d.default.svc.skydns.local.\n", i, i
  for (i = 0; i < nsrv; i++)
    printf "_http._tcp.svc-%d.default.svc\tIN\tSRV\t0 10 80 svc-%d.default.svc.skydns.local.\n", i, i
}' > "$OUT/skydns.local.zone"

# Query mix (per line, chosen by LCG):
#   70% A existing svc-N      8% A multi-N (3 RRs)     8% AAAA svc-N (N<NAAAA)
#    5% A NXDOMAIN nx-N        5% A CNAME alias-N       2% SRV _http._tcp   2% AAAA on A-only name (NODATA)
awk -v nsvc="$NSVC" -v nmulti="$NMULTI" -v naaaa="$NAAAA" -v ncname="$NCNAME" -v nsrv="$NSRV" -v nq="$NQ" '
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
BEGIN {
  seed = 20240101; s = ".default.svc.skydns.local"
  for (q = 0; q < nq; q++) {
    r = rnd(100)
    if      (r < 70) printf "svc-%d%s A\n", rnd(nsvc), s
    else if (r < 78) printf "multi-%d%s A\n", rnd(nmulti), s
    else if (r < 86) printf "svc-%d%s AAAA\n", rnd(naaaa), s
    else if (r < 91) printf "nx-%d%s A\n", rnd(1000000), s
    else if (r < 96) printf "alias-%d%s A\n", rnd(ncname), s
    else if (r < 98) printf "_http._tcp.svc-%d%s SRV\n", rnd(nsrv), s
    else             printf "svc-%d%s AAAA\n", naaaa + rnd(nsvc - naaaa), s
  }
}' > "$OUT/queries.txt"

# The negative mix and its all-positive baseline (issue 16), same LCG, same names.
awk -v nsvc="$NSVC" -v naaaa="$NAAAA" -v nq="$NQ" -v pos="$OUT/queries-pos.txt" '
function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
BEGIN {
  seed = 20241616; s = ".default.svc.skydns.local"
  for (q = 0; q < nq; q++) {
    r = rnd(100); n = rnd(nsvc)
    printf "svc-%d%s A\n", n, s > pos
    if      (r < 30) printf "api-%d.example.com%s A\n", n, s
    else if (r < 60) printf "svc-%d.default.svc%s A\n", n, s
    else if (r < 80) printf "svc-%d%s AAAA\n", naaaa + rnd(nsvc - naaaa), s
    else             printf "svc-%d%s A\n", n, s
  }
}' > "$OUT/queries-neg.txt"

echo "zone:    $OUT/skydns.local.zone ($(wc -l < "$OUT/skydns.local.zone") lines)"
echo "queries: $OUT/queries.txt ($(wc -l < "$OUT/queries.txt") lines)"
