/*
 * test_k8sauth: how the Kubernetes watcher finds its API server. Kubeconfig fixtures
 * (token, tokenFile, inline and file certificates, JSON form, flow style, relative
 * paths, keys overriding it), in-cluster from the environment and a service-account
 * directory, server + token-file, the token re-read when its file is rewritten or its
 * symlink swapped (kubelet's rotation), and the error texts naming file and fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "watchers/k8sauth.h"
#include "tests/unit/check.h"

static char dir[64];

/* A throwaway PEM: k8sauth checks the decoded data is PEM, not that it is a real key. */
#define PEM_CA "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
/* base64 of PEM_CA */
#define PEM_CA_B64                                                                                 \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmYWtlCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static char *path(const char *name)
{
	static char p[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static bool file_has(const char *p, const char *want)
{
	char buf[4096];
	FILE *f = fopen(p, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, want) != NULL;
}

static void clear_env(void)
{
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("KUBECONFIG");
	unsetenv(K8S_AUTH_SA_ENV);
}

/* Load a kubeconfig text; returns the result and leaves *out / err set. */
static int kc(const char *text, k8s_auth_t **out, char *err, size_t errlen)
{
	k8s_auth_params_t p = {.kubeconfig = path("kubeconfig")};

	put("kubeconfig", text);
	err[0] = '\0';
	*out = NULL;
	return k8s_auth_new(out, &p, err, errlen);
}

static const char KC_TOKEN[] = "# written by kind\n"
			       "apiVersion: v1\n"
			       "kind: Config\n"
			       "clusters:\n"
			       "- name: other\n"
			       "  cluster:\n"
			       "    server: https://10.0.0.9:6443\n"
			       "- name: kind-kind\n"
			       "  cluster:\n"
			       "    certificate-authority: ca.pem\n"
			       "    server: \"https://127.0.0.1:6443/\"\n"
			       "contexts:\n"
			       "- context:\n"
			       "    cluster: kind-kind\n"
			       "    user: admin\n"
			       "    namespace: dns\n"
			       "  name: kind-kind\n"
			       "current-context: kind-kind\n"
			       "preferences: {}\n"
			       "users:\n"
			       "- name: admin\n"
			       "  user:\n"
			       "    token: 'abc.def-ghi'\n";

static void test_kubeconfig_token(void)
{
	k8s_auth_t *a;
	char err[512], tok[K8S_TOKEN_MAX + 1];
	bool changed = false;

	put("ca.pem", PEM_CA);
	CHECK_EQ_INT(kc(KC_TOKEN, &a, err, sizeof(err)), 0);
	if (!a) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_EQ_INT(k8s_auth_mode(a), K8S_AUTH_KUBECONFIG);
	CHECK(strcmp(k8s_auth_server(a), "https://127.0.0.1:6443") == 0); /* '/' trimmed */
	CHECK(strcmp(k8s_auth_cafile(a), path("ca.pem")) == 0);		  /* relative to the file */
	CHECK(k8s_auth_certfile(a) == NULL && k8s_auth_keyfile(a) == NULL);
	CHECK(k8s_auth_namespace(a) && strcmp(k8s_auth_namespace(a), "dns") == 0);
	CHECK(strstr(k8s_auth_describe(a), "context kind-kind") != NULL);
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(strcmp(tok, "abc.def-ghi") == 0 && changed);
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(!changed);
	CHECK_EQ_INT(k8s_auth_token(a, tok, 5, &changed, err, sizeof(err)), ERR_TOOBIG);
	k8s_auth_free(a);

	/* server / token-file / cafile next to the kubeconfig win, as kubectl's flags. */
	put("tok2", "override-token\n");
	k8s_auth_params_t p = {.kubeconfig = path("kubeconfig"),
			       .server = "https://192.0.2.1:443",
			       .token_file = path("tok2"),
			       .cafile = path("ca.pem")};
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), 0);
	if (a) {
		CHECK(strcmp(k8s_auth_server(a), "https://192.0.2.1:443") == 0);
		CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), NULL, err, sizeof(err)), 0);
		CHECK(strcmp(tok, "override-token") == 0);
		k8s_auth_free(a);
	}
}

static void test_kubeconfig_inline_certs(void)
{
	k8s_auth_t *a;
	char err[512], tok[64];
	/* JSON is YAML too, and kubectl accepts it. The data is wrapped, as some tools do. */
	CHECK_EQ_INT(kc("{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"c\","
			"\"contexts\":[{\"name\":\"c\",\"context\":{\"cluster\":\"k\",\"user\":"
			"\"u\"}}],\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":"
			"\"https://[::1]:6443\",\"certificate-authority-data\":\"" PEM_CA_B64
			"\"}}],\"users\":[{\"name\":\"u\",\"user\":{\"client-certificate-data\":"
			"\"" PEM_CA_B64 "\",\"client-key-data\":\"LS0tLS1CRUdJTiBQUklWQVRFIEtF"
			"\\nWS0tLS0tCg==\"}}]}",
			&a, err, sizeof(err)),
		     0);
	if (!a) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(strcmp(k8s_auth_server(a), "https://[::1]:6443") == 0);
	CHECK(strncmp(k8s_auth_cafile(a), "/proc/self/fd/", 14) == 0);
	CHECK(file_has(k8s_auth_cafile(a), "-----BEGIN CERTIFICATE-----\nMIIBfake"));
	CHECK(file_has(k8s_auth_certfile(a), "BEGIN CERTIFICATE"));
	CHECK(file_has(k8s_auth_keyfile(a), "-----BEGIN PRIVATE KEY-----"));
	CHECK(k8s_auth_namespace(a) == NULL);
	/* No token: a client certificate authenticates. */
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), NULL, err, sizeof(err)), 0);
	CHECK(tok[0] == '\0');
	k8s_auth_free(a);

	/* Flow style, files for the client pair, a context without a user. */
	put("c.crt", PEM_CA);
	put("c.key", "-----BEGIN EC PRIVATE KEY-----\n");
	CHECK_EQ_INT(kc("current-context: x\n"
			"contexts: [{name: x, context: {cluster: k, user: u}}]\n"
			"clusters: [{name: k, cluster: {server: 'http://127.0.0.1:8080'}}]\n"
			"users: [{name: u, user: {client-certificate: c.crt, "
			"client-key: "
			"c.key}}]\n",
			&a, err, sizeof(err)),
		     0);
	if (a) {
		CHECK(k8s_auth_cafile(a) == NULL); /* the system CAs */
		CHECK(strcmp(k8s_auth_certfile(a), path("c.crt")) == 0);
		CHECK(strcmp(k8s_auth_keyfile(a), path("c.key")) == 0);
		k8s_auth_free(a);
	}
	CHECK_EQ_INT(kc("current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
			"clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n",
			&a, err, sizeof(err)),
		     0);
	k8s_auth_free(a);
}

/* Each broken kubeconfig fails with an error that names the file and the fault. */
static void test_kubeconfig_errors(void)
{
	static const struct {
		const char *text;
		int ret;
		const char *want; /* in the error text */
	} cases[] = {
	    {"", ERR_CONFIG, "empty"},
	    {"- a\n- b\n", ERR_CONFIG, "not a kubeconfig"},
	    {"apiVersion: v1\nclusters: []\n", ERR_CONFIG, "no current-context"},
	    {"current-context: nope\ncontexts: [{name: x, context: {cluster: k}}]\n", ERR_CONFIG,
	     "current-context \"nope\" is not in contexts"},
	    {"current-context: x\ncontexts: [{name: x, context: {user: u}}]\n", ERR_CONFIG,
	     "context \"x\" names no cluster"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n", ERR_CONFIG,
	     "cluster \"k\" (of context \"x\") is not in clusters"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
	     "clusters: [{name: k, cluster: {certificate-authority: ca.pem}}]\n",
	     ERR_CONFIG, "cluster \"k\" has no server"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n",
	     ERR_CONFIG, "user \"u\" (of context \"x\") is not in users"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
	     "users: [{name: u, user: {exec: {command: aws}}}]\n",
	     ERR_CONFIG, "user \"u\": \"exec\" is not supported"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
	     "users: [{name: u, user: {client-certificate: c.crt}}]\n",
	     ERR_CONFIG, "needs both client-certificate(-data) and client-key(-data)"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1', "
	     "insecure-skip-tls-verify: true}}]\n",
	     ERR_CONFIG, "insecure-skip-tls-verify is not supported"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1', "
	     "certificate-authority: missing.pem}}]\n",
	     -ENOENT, "certificate-authority "},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1', "
	     "certificate-authority-data: 'not base64!'}}]\n",
	     ERR_PARSE, "certificate-authority-data is not base64"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1', "
	     "certificate-authority-data: aGVsbG8=}}]\n",
	     ERR_PARSE, "does not decode to PEM"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
	     "clusters: [{name: k, cluster: {server: 'h:1'}}]\n",
	     ERR_CONFIG, "not an http:// or https:// URL"},
	    {"current-context: x\nclusters:\n  - name: k\n   bad: indent\n", ERR_PARSE,
	     "kubeconfig:4: YAML error"},
	    {"current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
	     "clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
	     "users: [{name: u, user: {tokenFile: nofile}}]\n",
	     -ENOENT, "user \"u\": tokenFile"},
	};
	k8s_auth_t *a;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = kc(cases[i].text, &a, err, sizeof(err));
		CHECK_EQ_INT(ret, cases[i].ret);
		CHECK(a == NULL);
		if (!strstr(err, cases[i].want) || !strstr(err, path("kubeconfig"))) {
			fprintf(stderr, "  case %zu: error \"%s\" lacks \"%s\" or the file\n", i,
				err, cases[i].want);
			CHECK(0);
		}
		k8s_auth_free(a);
	}
	k8s_auth_params_t p = {.kubeconfig = path("no-such-kubeconfig")};
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no-such-kubeconfig: ") != NULL);
}

static void test_in_cluster(void)
{
	k8s_auth_t *a;
	char err[512], tok[K8S_TOKEN_MAX + 1], sa[128];
	k8s_auth_params_t none = {0};

	snprintf(sa, sizeof(sa), "%s/sa", dir);
	mkdir(sa, 0700);
	put("sa/token", "eyJhbGciOiJSUzI1NiJ9.sa-token.sig\n");
	put("sa/ca.crt", PEM_CA);
	put("sa/namespace", "kube-system");

	clear_env();
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), ERR_CONFIG);
	CHECK(strstr(err, "KUBERNETES_SERVICE_HOST is not set") != NULL);

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv(K8S_AUTH_SA_ENV, sa, 1);
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), 0);
	if (a) {
		CHECK_EQ_INT(k8s_auth_mode(a), K8S_AUTH_IN_CLUSTER);
		CHECK(strcmp(k8s_auth_server(a), "https://10.96.0.1:443") == 0);
		CHECK(strcmp(k8s_auth_cafile(a), path("sa/ca.crt")) == 0);
		CHECK(strcmp(k8s_auth_namespace(a), "kube-system") == 0);
		CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), NULL, err, sizeof(err)), 0);
		CHECK(strcmp(tok, "eyJhbGciOiJSUzI1NiJ9.sa-token.sig") == 0);
		k8s_auth_free(a);
	}
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), 0);
	if (a) {
		CHECK(strcmp(k8s_auth_server(a), "https://[fd00:10:96::1]:443") == 0);
		k8s_auth_free(a);
	}
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), ERR_CONFIG);
	CHECK(strstr(err, "KUBERNETES_SERVICE_PORT is not a number") != NULL);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);

	/* No token in the pod (automountServiceAccountToken: false): a clear error. */
	unlink(path("sa/token"));
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, path("sa/token")) != NULL);
	put("sa/token", "x\n");
	unlink(path("sa/ca.crt"));
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "in-cluster CA") && strstr(err, path("sa/ca.crt")));

	/* $KUBECONFIG is used only outside a pod and without server/kubeconfig keys. */
	put("ca.pem", PEM_CA);
	put("kubeconfig", KC_TOKEN);
	setenv("KUBECONFIG", path("kubeconfig"), 1);
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), -ENOENT); /* still in a pod */
	unsetenv("KUBERNETES_SERVICE_HOST");
	CHECK_EQ_INT(k8s_auth_new(&a, &none, err, sizeof(err)), 0);
	if (a) {
		CHECK_EQ_INT(k8s_auth_mode(a), K8S_AUTH_KUBECONFIG);
		k8s_auth_free(a);
	}
	clear_env();
}

static void test_server_and_rotation(void)
{
	k8s_auth_t *a;
	char err[512], tok[K8S_TOKEN_MAX + 1];
	bool changed;
	k8s_auth_params_t p = {.server = "http://127.0.0.1:8080"};

	clear_env();
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), 0);
	if (a) {
		CHECK_EQ_INT(k8s_auth_mode(a), K8S_AUTH_SERVER);
		CHECK(k8s_auth_cafile(a) == NULL);
		CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
		CHECK(tok[0] == '\0' && !changed);
		k8s_auth_free(a);
	}
	p.server = "https://a:1,https://b:1";
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), ERR_CONFIG);
	CHECK(strstr(err, "one URL") != NULL);
	p.server = "https://127.0.0.1:6443";
	p.cafile = path("nope.pem");
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "cafile ") && strstr(err, "nope.pem"));
	p.cafile = NULL;

	/* Tokens that cannot go into a header. */
	p.token_file = path("badtok");
	put("badtok", "two words\n");
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), ERR_PARSE);
	CHECK(strstr(err, "badtok: byte 4") != NULL);
	put("badtok", "\n \n");
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), ERR_PARSE);
	CHECK(strstr(err, "badtok is empty") != NULL);

	/* kubelet's layout: token -> ..data/token, ..data -> a timestamped dir, swapped. */
	char d1[256], d2[256], data[256], link[256];
	snprintf(d1, sizeof(d1), "%s/rot/..2026_01", dir);
	snprintf(d2, sizeof(d2), "%s/rot/..2026_02", dir);
	snprintf(data, sizeof(data), "%s/rot/..data", dir);
	snprintf(link, sizeof(link), "%s/rot/token", dir);
	mkdir(path("rot"), 0700);
	mkdir(d1, 0700);
	mkdir(d2, 0700);
	put("rot/..2026_01/token", "first-token");
	put("rot/..2026_02/token", "second-token");
	CHECK(symlink("..2026_01", data) == 0);
	CHECK(symlink("..data/token", link) == 0);
	p.token_file = link;
	CHECK_EQ_INT(k8s_auth_new(&a, &p, err, sizeof(err)), 0);
	if (!a) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(strcmp(tok, "first-token") == 0 && changed);
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(!changed);
	/* The atomic swap kubelet does: a new ..data link renamed over the old. */
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s/rot/..data_tmp", dir);
	CHECK(symlink("..2026_02", tmp) == 0);
	CHECK(rename(tmp, data) == 0);
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(strcmp(tok, "second-token") == 0 && changed);

	/* Rewritten in place (same inode, other size). */
	put("rot/..2026_02/token", "third-token-longer\n");
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(strcmp(tok, "third-token-longer") == 0 && changed);

	/* Gone for a moment (mid-rotation): the last token stays in use. */
	unlink(path("rot/..2026_02/token"));
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(strcmp(tok, "third-token-longer") == 0 && !changed);
	put("rot/..2026_02/token", "fourth");
	CHECK_EQ_INT(k8s_auth_token(a, tok, sizeof(tok), &changed, err, sizeof(err)), 0);
	CHECK(strcmp(tok, "fourth") == 0 && changed);
	k8s_auth_free(a);
	k8s_auth_free(NULL);
}

int main(void)
{
	char cmd[128];

	snprintf(dir, sizeof(dir), "/tmp/test_k8sauth.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	clear_env();
	test_kubeconfig_token();
	test_kubeconfig_inline_certs();
	test_kubeconfig_errors();
	test_in_cluster();
	test_server_and_rotation();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_done();
}
