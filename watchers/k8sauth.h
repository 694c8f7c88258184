/*
 * k8sauth: how skydns-watch-k8s reaches the Kubernetes API server — its URL, the
 * CA that verifies it, the client certificate and the bearer token — resolved
 * once from the config, in this order:
 *
 *  1. `kubeconfig` (or, when nothing else is configured and not in a cluster,
 *     $KUBECONFIG): the current-context's cluster (server,
 *     certificate-authority[-data]) and user (token, tokenFile,
 *     client-certificate[-data], client-key[-data]); `server`, `token-file` and
 *     `cafile` set next to it override the kubeconfig's values, as kubectl's
 *     flags do. Relative paths are relative to the kubeconfig's directory.
 *     Parsed with libyaml; exec / auth-provider / basic-auth users and
 *     insecure-skip-tls-verify are refused with an error naming them.
 *  2. `server` [+ `token-file`] [+ `cafile`, else the system CAs].
 *  3. In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with
 *     the service account's token, ca.crt and namespace from
 *     /var/run/secrets/kubernetes.io/serviceaccount ($SKYDNS_K8S_SA_DIR
 *     overrides the directory, for tests); `token-file`/`cafile` override.
 *
 * Inline *-data (base64 PEM) is decoded into memfds, never written to disk; the
 * paths handed out (/proc/self/fd/N) stay valid until k8s_auth_free.
 *
 * The token is read from its file again when the file changes (inode, size or
 * mtime: kubelet rotates projected tokens by swapping a symlink) and at least
 * once a minute, so a rotated service-account token is picked up without a
 * restart. A failed re-read keeps the previous token (logged once per failure).
 *
 * Threading: one k8s_auth_t is used by one thread at a time. Errors are
 * "what: file: what is wrong" texts in the caller's buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct k8s_auth k8s_auth_t;

#define K8S_AUTH_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_AUTH_SA_ENV "SKYDNS_K8S_SA_DIR"
/* Longest token accepted (service-account JWTs are 1-2 KB). */
#define K8S_TOKEN_MAX 16384

typedef enum {
	K8S_AUTH_SERVER = 0,	 /* [Kubernetes] server + token-file + cafile */
	K8S_AUTH_KUBECONFIG = 1, /* a kubeconfig file */
	K8S_AUTH_IN_CLUSTER = 2, /* the pod's service account */
} k8s_auth_mode_t;

/* The [Kubernetes] keys k8sauth reads; all borrowed for the call, any may be NULL. */
typedef struct {
	const char *server;
	const char *token_file;
	const char *cafile;
	const char *kubeconfig;
} k8s_auth_params_t;

/**
 * Resolve where and how to reach the API server (reads the environment and the files
 * named above; checks that every file it will need can be read).
 * @param out owned; free with k8s_auth_free. Written only on success.
 * @param err receives a message naming the file and what is wrong, on failure.
 * @return 0, ERR_CONFIG (nothing usable configured, a bad kubeconfig), ERR_PARSE (YAML
 *         or base64 that does not parse), -errno (a file cannot be read), -ENOMEM.
 */
int k8s_auth_new(k8s_auth_t **out, const k8s_auth_params_t *p, char *err, size_t errlen);
/** Free; closes the memfds. NULL is a no-op. */
void k8s_auth_free(k8s_auth_t *a);

k8s_auth_mode_t k8s_auth_mode(const k8s_auth_t *a);
/** @return borrowed (until k8s_auth_free): "https://host:port" without a trailing '/'. */
const char *k8s_auth_server(const k8s_auth_t *a);
/** @return borrowed file path of the CA bundle, or NULL for the system CAs. */
const char *k8s_auth_cafile(const k8s_auth_t *a);
/** @return borrowed file path of the client certificate / key, or NULL for none. */
const char *k8s_auth_certfile(const k8s_auth_t *a);
const char *k8s_auth_keyfile(const k8s_auth_t *a);
/** @return borrowed: the namespace of the service account or kubeconfig context, or NULL. */
const char *k8s_auth_namespace(const k8s_auth_t *a);
/** @return borrowed: one line for the log ("kubeconfig F, context C", "in-cluster", ...). */
const char *k8s_auth_describe(const k8s_auth_t *a);

/**
 * The current bearer token, re-read from its file when that changed.
 * @param buf receives the NUL-terminated token ("" when the config has none: client
 *            certificate or no authentication); len at least K8S_TOKEN_MAX + 1 is enough.
 * @param changed may be NULL; set to true when the token differs from the last call's
 *                (true on the first call with a token): the time to send a new header.
 * @return 0; ERR_TOOBIG (buf too small); or, with no earlier token to fall back to,
 *         -errno / ERR_PARSE (empty, too long or with control characters) with err set.
 */
int k8s_auth_token(k8s_auth_t *a, char *buf, size_t len, bool *changed, char *err, size_t errlen);
