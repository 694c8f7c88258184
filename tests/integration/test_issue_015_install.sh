#!/bin/bash
# Issue 15: `cmake --install` into a DESTDIR puts every file where a Debian
# system expects it (binaries, man pages, config, examples, systemd unit,
# sysusers.d and tmpfiles.d), the unit passes `systemd-analyze verify`, and
# `cpack -G DEB` builds a .deb with those files, the conffile and the
# runtime Depends. Nothing is installed outside the temp dir.
. "$(dirname "$0")/lib.sh"

: "${SKYDNS_SRC:?set SKYDNS_SRC to the source directory}"
ROOT=$T/root

out=$(DESTDIR=$ROOT cmake --install "$SKYDNS_BUILD" --prefix /usr 2>&1)
assert_eq "cmake --install --prefix /usr into DESTDIR: exit 0" 0 $?

for f in usr/sbin/skydns usr/sbin/skydns-watch-etcd usr/sbin/skydns-watch-k8s usr/sbin/skydns-probe usr/bin/skydns-cli; do
	assert_true "installed and executable: /$f" test -x "$ROOT/$f"
done
for f in usr/share/man/man8/skydns.8 usr/share/man/man8/skydns-probe.8 usr/share/man/man1/skydns-cli.1 \
	usr/share/man/man5/skydns.conf.5 etc/skydns/skydns.conf \
	usr/share/doc/skydns/skydns.conf usr/share/doc/skydns/examples/minimal.conf \
	usr/share/doc/skydns/examples/original.conf usr/lib/systemd/system/skydns.service \
	usr/lib/sysusers.d/skydns.conf usr/lib/tmpfiles.d/skydns.conf etc/logrotate.d/skydns \
	usr/share/man/man8/skydns-watch-etcd.8; do
	assert_true "installed: /$f" test -s "$ROOT/$f"
done
assert_eq "nothing under /usr/local" "" "$(ls "$ROOT/usr/local" 2>/dev/null)"

unit=$ROOT/usr/lib/systemd/system/skydns.service
assert_contains "unit: ExecStart uses /usr/sbin and /etc/skydns" "$(cat "$unit")" \
	"ExecStart=/usr/sbin/skydns -config-file /etc/skydns/skydns.conf"
for l in Type=notify NotifyAccess=all "ExecReload=/bin/kill -HUP \$MAINPID" ProtectSystem=strict \
	NoNewPrivileges=yes User=skydns StateDirectory=skydns \
	AmbientCapabilities=CAP_NET_BIND_SERVICE CapabilityBoundingSet=CAP_NET_BIND_SERVICE; do
	assert_true "unit has $l" grep -qxF "$l" "$unit"
done

# The packaged config is valid and stores under the StateDirectory.
out=$("$ROOT/usr/sbin/skydns" -config-file "$ROOT/etc/skydns/skydns.conf" -check-config 2>&1)
assert_eq "installed /etc/skydns/skydns.conf passes -check-config" 0 $?
assert_true "packaged config: data-dir is the StateDirectory" \
	grep -qx "data-dir = /var/lib/skydns" "$ROOT/etc/skydns/skydns.conf"

# The man pages render without warnings (man-db; not in a minimal image).
if command -v man >/dev/null 2>&1; then
	for m in man8/skydns.8 man8/skydns-probe.8 man8/skydns-watch-etcd.8 man8/skydns-watch-k8s.8 man1/skydns-cli.1 man5/skydns.conf.5; do
		w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$ROOT/usr/share/man/$m" 2>&1 >/dev/null)
		assert_eq "man $m renders without warnings" "" "$w"
	done
else
	echo "skip: man not installed, pages not rendered"
fi

# The logrotate snippet parses and names the log-dir of the unit (LogsDirectory=skydns).
if command -v logrotate >/dev/null 2>&1; then
	out=$(logrotate -d "$ROOT/etc/logrotate.d/skydns" 2>&1)
	assert_eq "logrotate -d accepts /etc/logrotate.d/skydns: exit 0 ($out)" 0 $?
else
	echo "skip: logrotate not installed, snippet not parsed"
fi
assert_true "logrotate snippet rotates /var/log/skydns/*.log" \
	grep -q "^/var/log/skydns/\*.log {" "$ROOT/etc/logrotate.d/skydns"
assert_true "logrotate snippet reopens with SIGUSR1" grep -q "kill -s USR1" "$ROOT/etc/logrotate.d/skydns"

# A reinstall keeps an edited config.
echo "; edited by the admin" >>"$ROOT/etc/skydns/skydns.conf"
DESTDIR=$ROOT cmake --install "$SKYDNS_BUILD" --prefix /usr >/dev/null 2>&1
assert_true "reinstall keeps the edited /etc/skydns/skydns.conf" \
	grep -q "edited by the admin" "$ROOT/etc/skydns/skydns.conf"

# Another prefix: the unit follows it.
DESTDIR=$T/local cmake --install "$SKYDNS_BUILD" --prefix /usr/local >/dev/null 2>&1
assert_contains "--prefix /usr/local: unit runs /usr/local/sbin/skydns" \
	"$(cat "$T/local/usr/local/lib/systemd/system/skydns.service" 2>&1)" \
	"ExecStart=/usr/local/sbin/skydns -config-file /usr/local/etc/skydns/skydns.conf"

if command -v systemd-analyze >/dev/null 2>&1; then
	# Verify a copy whose binary is the one in DESTDIR (/usr/sbin/skydns is not on this
	# machine); --root would also look for /bin/kill and the targets inside DESTDIR.
	mkdir -p "$T/verify"
	sed "s|/usr/sbin/skydns|$ROOT/usr/sbin/skydns|g" "$unit" >"$T/verify/skydns.service"
	out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
		"$T/verify/skydns.service" 2>&1)
	rc=$?
	# Only complaints about skydns.service count: the host's own units may warn too.
	mine=$(printf '%s\n' "$out" | grep 'skydns' || true)
	assert_eq "systemd-analyze verify skydns.service: no complaint about it" "" "$mine"
	[ -z "$mine" ] && [ "$rc" -ne 0 ] && echo "note: verify exit $rc, output: $out"
else
	echo "skip: systemd-analyze not installed, unit not verified"
fi

# The .deb, built by cpack from this build dir (contents and control only).
if command -v cpack >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
	(cd "$T" && cpack -G DEB --config "$SKYDNS_BUILD/CPackConfig.cmake" -B "$T/pkg" \
		>"$T/cpack.log" 2>&1)
	assert_eq "cpack -G DEB: exit 0" 0 $?
	deb=$(ls "$T"/pkg/skydns_*.deb 2>/dev/null | head -1)
	assert_true "cpack wrote a .deb" test -n "$deb"
	if [ -n "$deb" ]; then
		contents=$(dpkg-deb -c "$deb")
		for f in ./usr/sbin/skydns ./usr/sbin/skydns-watch-etcd ./usr/bin/skydns-cli ./etc/skydns/skydns.conf \
			./usr/lib/systemd/system/skydns.service ./usr/lib/sysusers.d/skydns.conf \
			./usr/lib/tmpfiles.d/skydns.conf ./usr/share/man/man5/skydns.conf.5 \
			./etc/logrotate.d/skydns ./usr/share/man/man8/skydns-watch-etcd.8; do
			assert_contains ".deb holds $f" "$contents" " $f"
		done
		depends=$(dpkg-deb -f "$deb" Depends)
		for p in liburing2 libldns3 liblmdb0 libjansson4 libcurl4 libcivetweb1 libinih1 libyaml-0-2 libssl3; do
			assert_contains ".deb Depends on $p" "$depends" "$p"
		done
		# Each library the binaries need directly comes from a package the .deb depends on
		# (libssl3 and the like come with libcurl4).
		bins="$SKYDNS_BUILD/server/skydns $SKYDNS_BUILD/cli/skydns-cli"
		for so in $(objdump -p $bins | awk '/NEEDED/ {print $2}' | sort -u); do
			path=$(ldd $bins | awk -v so="$so" '$1 == so {print $3; exit}')
			pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
			case $pkg in
			"" | libc6 | libgcc-s1 | libasan* | libubsan*) continue ;;
			esac
			assert_contains ".deb Depends on $pkg (for $so)" "$depends" "$pkg"
		done
		assert_eq ".deb conffiles" "/etc/skydns/skydns.conf /etc/logrotate.d/skydns" \
			"$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles 2>&1 | tr '\n' ' ' |
				sed 's/ $//')"
		# Unpacked into a temp root as dpkg would (no scripts run): the binary runs there
		# against the packaged config, and the unit is the one cmake --install wrote.
		mkdir -p "$T/debroot"
		dpkg-deb -x "$deb" "$T/debroot"
		out=$("$T/debroot/usr/sbin/skydns" -config-file "$T/debroot/etc/skydns/skydns.conf" \
			-check-config 2>&1)
		assert_eq "unpacked .deb: its skydns checks its /etc/skydns/skydns.conf (exit 0)" 0 $?
		assert_eq "unpacked .deb: unit equals the installed one" "" \
			"$(diff "$unit" "$T/debroot/usr/lib/systemd/system/skydns.service" 2>&1)"
		assert_true "unpacked .deb: /etc/logrotate.d/skydns" test -s "$T/debroot/etc/logrotate.d/skydns"
		assert_contains "postinst upgrades by SIGUSR2 (takeover), not restart" \
			"$(cat "$T/ctrl/postinst" 2>/dev/null || dpkg-deb -I "$deb" postinst)" \
			"systemctl kill -s USR2 --kill-whom=main skydns.service"
		info=$(dpkg-deb -I "$deb")
		mkdir -p "$T/ctrl"
		dpkg-deb -e "$deb" "$T/ctrl"
		for s in postinst prerm postrm; do
			assert_contains ".deb has a $s script" "$info" " $s"
			assert_true ".deb $s is valid sh" sh -n "$T/ctrl/$s"
		done
		assert_contains ".deb Depends: a way to make the skydns user" "$depends" \
			"systemd | adduser"
	else
		cat "$T/cpack.log"
	fi
else
	echo "skip: cpack or dpkg-deb not installed, .deb not built"
fi

finish
