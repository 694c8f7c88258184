find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(LDNS REQUIRED IMPORTED_TARGET ldns)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
# kubeconfig files (watchers/k8sauth.c): real ones use YAML well past a subset.
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
# DNS over TLS to upstreams (server/dot.c): GnuTLS, whose push/pull hooks suit non-blocking I/O.
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls)

# Debian's civetweb ships no pkg-config file and its CMake package points
# at a /usr/bin/civetweb that the -dev package does not install.
find_path(CIVETWEB_INCLUDE_DIR civetweb.h REQUIRED)
find_library(CIVETWEB_LIBRARY civetweb REQUIRED)
add_library(civetweb::civetweb UNKNOWN IMPORTED)
set_target_properties(civetweb::civetweb PROPERTIES
	IMPORTED_LOCATION ${CIVETWEB_LIBRARY}
	INTERFACE_INCLUDE_DIRECTORIES ${CIVETWEB_INCLUDE_DIR})
