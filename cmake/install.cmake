# install.cmake: what `cmake --install` puts where, and the CPack .deb.
#
# Relative destinations follow --prefix given at install time (/usr/local by
# default, /usr for the .deb). The config file and the systemd unit need the
# prefix too, but only once it is known: `cmake --install build --prefix /usr`
# must give /etc/skydns and ExecStart=/usr/sbin/skydns, so both are worked out
# by install(CODE) in cmake_install.cmake, not here at configure time.
include(GNUInstallDirs)

set(SKYDNS_DIST ${CMAKE_SOURCE_DIR}/dist)
set(SKYDNS_DIST_OUT ${CMAKE_BINARY_DIR}/dist)

# skydns looks for its watchers in its own directory first, so they go beside it.
install(TARGETS skydns skydns-watch-etcd skydns-watch-k8s skydns-probe
	RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS skydns-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(FILES docs/man/skydns.8 docs/man/skydns-probe.8 docs/man/skydns-watch-etcd.8
	docs/man/skydns-watch-k8s.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES docs/man/skydns-cli.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES docs/man/skydns.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# The laptop config and the examples are documentation; /etc gets dist/skydns.conf.
install(FILES conf/skydns.conf conf/demo.zone README.md docs/DESIGN.md
	DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY conf/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY conf/kubernetes/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/kubernetes)

# systemd looks in /usr/lib and /usr/local/lib (not in the multiarch libdir).
install(CODE "
	if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
		set(SKYDNS_CONFDIR /etc/skydns)
	else()
		set(SKYDNS_CONFDIR \"\${CMAKE_INSTALL_PREFIX}/etc/skydns\")
	endif()
	set(SKYDNS_SBINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}\")
	configure_file(${SKYDNS_DIST}/skydns.service.in ${SKYDNS_DIST_OUT}/skydns.service @ONLY)
	# Never overwrite the admin's config on a reinstall from source (dpkg handles
	# its conffile itself: it installs into an empty staging DESTDIR).
	if(EXISTS \"\$ENV{DESTDIR}\${SKYDNS_CONFDIR}/skydns.conf\")
		message(STATUS \"Keeping: \$ENV{DESTDIR}\${SKYDNS_CONFDIR}/skydns.conf\")
	else()
		file(INSTALL DESTINATION \"\${SKYDNS_CONFDIR}\" TYPE FILE
			PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
			FILES ${SKYDNS_DIST}/skydns.conf)
	endif()
	# logrotate reads /etc/logrotate.d only; beside the config dir for other prefixes.
	get_filename_component(SKYDNS_ETC \"\${SKYDNS_CONFDIR}\" DIRECTORY)
	file(INSTALL DESTINATION \"\${SKYDNS_ETC}/logrotate.d\" TYPE FILE
		PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
		FILES ${SKYDNS_DIST}/skydns.logrotate RENAME skydns)
")
install(FILES ${SKYDNS_DIST_OUT}/skydns.service DESTINATION lib/systemd/system)
install(FILES ${SKYDNS_DIST}/skydns.sysusers DESTINATION lib/sysusers.d RENAME skydns.conf)
install(FILES ${SKYDNS_DIST}/skydns.tmpfiles DESTINATION lib/tmpfiles.d RENAME skydns.conf)

# cpack -G DEB (from a Release build dir): a .deb for Debian 12.
set(CPACK_PACKAGE_NAME skydns)
set(CPACK_PACKAGE_VENDOR "skydns")
set(CPACK_PACKAGE_CONTACT "skydns maintainers <skydns@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DNS server for service discovery (io_uring, LMDB)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The packages of the shared libraries the binaries link on Debian 12 (dpkg -S), and
# what postinst makes the skydns user with.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
	"libc6 (>= 2.36), liburing2 (>= 2.3), libldns3, liblmdb0, libjansson4, libcurl4, libcivetweb1, libinih1, libyaml-0-2, libssl3, libgnutls30, systemd | adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "dnsutils")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
	${SKYDNS_DIST}/debian/conffiles ${SKYDNS_DIST}/debian/postinst
	${SKYDNS_DIST}/debian/prerm ${SKYDNS_DIST}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
