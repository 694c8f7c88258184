#include "watchers/k8sauth.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "common/err.h"
#include "common/log.h"
#include "watchers/etcd.h"

#define KUBECONFIG_MAX (1u << 20) /* a kubeconfig is a few KB; refuse anything absurd */
#define TOKEN_RECHECK_S 60	  /* re-read even without a visible change, once a minute */

enum { FD_CA, FD_CERT, FD_KEY, FD_N };

struct k8s_auth {
	k8s_auth_mode_t mode;
	char *server;
	char *cafile;
	char *certfile;
	char *keyfile;
	char *ns;
	char *describe;
	int memfd[FD_N];
	char *token_static; /* a kubeconfig's inline token */
	char *token_file;
	/* The token last read from token_file, and what the file looked like then. */
	char token[K8S_TOKEN_MAX + 1];
	size_t toklen;
	bool have_token;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	time_t read_at; /* CLOCK_MONOTONIC seconds */
	unsigned gen, seen_gen;
	int logged_fail; /* the re-read failure last logged, so each is logged once */
};

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
						       ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int set_str(char **dst, const char *src)
{
	char *s = NULL;

	if (src && !(s = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* Open and close: a file the watcher will need later must be readable now. */
static int check_readable(const char *path, const char *what, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		errf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* The whole of a small file, NUL-terminated. @param out owned (free()). */
static int read_small(const char *path, size_t max, char **out, size_t *outlen, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;
	char *buf = NULL;
	size_t n = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!(buf = malloc(max + 2))) {
		ret = -ENOMEM;
		goto out;
	}
	while (n <= max) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		ret = ERR_TOOBIG;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

/* Trim a token read from a file and check it can go into an HTTP header as it is. */
static int token_clean(char *t, size_t *len, const char *path, char *err, size_t errlen)
{
	size_t a = 0, b = *len;

	while (a < b && (t[a] == ' ' || t[a] == '\t' || t[a] == '\n' || t[a] == '\r'))
		a++;
	while (b > a &&
	       (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\n' || t[b - 1] == '\r'))
		b--;
	if (a == b) {
		errf(err, errlen, "token file %s is empty", path);
		return ERR_PARSE;
	}
	for (size_t i = a; i < b; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c <= 0x20 || c >= 0x7f) {
			errf(err, errlen,
			     "token file %s: byte %zu is a space, control or non-ASCII "
			     "character (a token is one printable word)",
			     path, i + 1);
			return ERR_PARSE;
		}
	}
	memmove(t, t + a, b - a);
	t[b - a] = '\0';
	*len = b - a;
	return 0;
}

/* Read token_file into a->token when it changed (or a minute passed). */
static int token_refresh(k8s_auth_t *a, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int ret;

	if (stat(a->token_file, &st) < 0) {
		ret = -errno;
		errf(err, errlen, "token file %s: %s", a->token_file, strerror(errno));
		return ret;
	}
	if (a->have_token && st.st_dev == a->dev && st.st_ino == a->ino && st.st_size == a->size &&
	    st.st_mtim.tv_sec == a->mtime.tv_sec && st.st_mtim.tv_nsec == a->mtime.tv_nsec &&
	    mono_s() - a->read_at < TOKEN_RECHECK_S)
		return 0;
	if ((ret = read_small(a->token_file, K8S_TOKEN_MAX + 64, &buf, &n, &st)) < 0) {
		errf(err, errlen, "token file %s: %s", a->token_file,
		     ret == ERR_TOOBIG ? "longer than 16 KiB" : err_str(ret));
		return ret;
	}
	if ((ret = token_clean(buf, &n, a->token_file, err, errlen)) < 0)
		goto out;
	if (n > K8S_TOKEN_MAX) {
		errf(err, errlen, "token file %s: token longer than %d bytes", a->token_file,
		     K8S_TOKEN_MAX);
		ret = ERR_TOOBIG;
		goto out;
	}
	if (!a->have_token || n != a->toklen || memcmp(buf, a->token, n)) {
		if (a->have_token)
			log_info("k8s: token file %s changed: using the new token", a->token_file);
		memcpy(a->token, buf, n + 1);
		a->toklen = n;
		a->gen++;
	}
	a->have_token = true;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->size = st.st_size;
	a->mtime = st.st_mtim;
	a->read_at = mono_s();
	a->logged_fail = 0;
	ret = 0;
out:
	free(buf);
	return ret;
}

int k8s_auth_token(k8s_auth_t *a, char *buf, size_t len, bool *changed, char *err, size_t errlen)
{
	const char *tok = "";
	size_t n = 0;
	int ret;

	if (a->token_static) {
		tok = a->token_static;
		n = strlen(tok);
		if (!a->gen)
			a->gen = 1;
	} else if (a->token_file) {
		char why[512] = "";
		if ((ret = token_refresh(a, why, sizeof(why))) < 0) {
			if (!a->have_token) {
				errf(err, errlen, "%s", why);
				return ret;
			}
			if (ret != a->logged_fail)
				log_warn("k8s: %s; keeping the token read before", why);
			a->logged_fail = ret;
		}
		tok = a->token;
		n = a->toklen;
	}
	if (len < n + 1) {
		errf(err, errlen, "token of %zu bytes does not fit a buffer of %zu", n, len);
		return ERR_TOOBIG;
	}
	memcpy(buf, tok, n + 1);
	if (changed)
		*changed = a->gen != a->seen_gen;
	a->seen_gen = a->gen;
	return 0;
}

/* ---- inline PEM data -> memfd */

static int data_to_memfd(k8s_auth_t *a, int slot, const char *b64, const char *what, char **path,
			 char *err, size_t errlen)
{
	size_t n = strlen(b64), m = 0, outlen = 0;
	char *clean = malloc(n + 1), p[64];
	uint8_t *pem = malloc(3 * (n / 4) + 4);
	int ret, fd = -1;

	if (!clean || !pem) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) /* base64 may be wrapped */
		if (b64[i] != '\n' && b64[i] != '\r' && b64[i] != ' ' && b64[i] != '\t')
			clean[m++] = b64[i];
	if (etcd_b64_decode(clean, m, pem, &outlen) < 0) {
		errf(err, errlen, "%s is not base64", what);
		ret = ERR_PARSE;
		goto out;
	}
	if (!memmem(pem, outlen, "-----BEGIN ", 11)) {
		errf(err, errlen, "%s does not decode to PEM (no -----BEGIN line)", what);
		ret = ERR_PARSE;
		goto out;
	}
	if ((fd = memfd_create("skydns-k8s-tls", MFD_CLOEXEC)) < 0 ||
	    write(fd, pem, outlen) != (ssize_t)outlen) {
		ret = -errno;
		errf(err, errlen, "%s: memfd: %s", what, strerror(errno));
		goto out;
	}
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if ((ret = set_str(path, p)) < 0)
		goto out;
	if (a->memfd[slot] >= 0)
		close(a->memfd[slot]);
	a->memfd[slot] = fd;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (pem)
		explicit_bzero(pem, 3 * (n / 4) + 4); /* may be a private key */
	free(pem);
	free(clean);
	return ret;
}

/* ---- kubeconfig (YAML via libyaml's document API) */

typedef struct {
	yaml_document_t *doc;
	const char *path;
	char *dir; /* owned: the kubeconfig's directory, for relative paths */
} kc_t;

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(const kc_t *kc, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		const char *k = scalar(yaml_document_get_node(kc->doc, p->key));
		if (k && !strcmp(k, key))
			return yaml_document_get_node(kc->doc, p->value);
	}
	return NULL;
}

static const char *map_str(const kc_t *kc, yaml_node_t *m, const char *key)
{
	const char *s = scalar(map_get(kc, m, key));
	return s && *s ? s : NULL;
}

/* The `sub` mapping of the entry named `name` in the list `list` (clusters, users,
 * contexts: "- name: x\n  cluster: {...}"). NULL when there is none. */
static yaml_node_t *named(const kc_t *kc, yaml_node_t *root, const char *list, const char *name,
			  const char *sub)
{
	yaml_node_t *seq = map_get(kc, root, list);

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
	     i++) {
		yaml_node_t *e = yaml_document_get_node(kc->doc, *i);
		const char *n = map_str(kc, e, "name");
		if (n && !strcmp(n, name)) {
			yaml_node_t *s = map_get(kc, e, sub);
			return s ? s : e; /* "- name: u\n  user: null": an empty entry */
		}
	}
	return NULL;
}

/* A path from the kubeconfig, made absolute against its directory (kubectl does so). */
static int kc_path(const kc_t *kc, const char *p, const char *what, char **dst, char *err,
		   size_t errlen)
{
	char *abs = NULL;
	int ret;

	if (p[0] == '/')
		abs = strdup(p);
	else if (asprintf(&abs, "%s/%s", kc->dir, p) < 0)
		abs = NULL;
	if (!abs)
		return -ENOMEM;
	if ((ret = check_readable(abs, what, err, errlen)) < 0) {
		free(abs);
		return ret;
	}
	free(*dst);
	*dst = abs;
	return 0;
}

static int kc_cluster(k8s_auth_t *a, const kc_t *kc, yaml_node_t *cl, const char *name, char *err,
		      size_t errlen)
{
	char what[300];
	const char *s;
	int ret;

	if (!(s = map_str(kc, cl, "server"))) {
		errf(err, errlen, "kubeconfig %s: cluster \"%s\" has no server", kc->path, name);
		return ERR_CONFIG;
	}
	if ((ret = set_str(&a->server, s)) < 0)
		return ret;
	if ((s = map_str(kc, cl, "insecure-skip-tls-verify")) && !strcmp(s, "true")) {
		errf(err, errlen,
		     "kubeconfig %s: cluster \"%s\": insecure-skip-tls-verify is not "
		     "supported (give its CA as certificate-authority)",
		     kc->path, name);
		return ERR_CONFIG;
	}
	if (map_str(kc, cl, "proxy-url")) {
		errf(err, errlen, "kubeconfig %s: cluster \"%s\": proxy-url is not supported",
		     kc->path, name);
		return ERR_CONFIG;
	}
	snprintf(what, sizeof(what), "kubeconfig %s: cluster \"%s\": certificate-authority-data",
		 kc->path, name);
	if ((s = map_str(kc, cl, "certificate-authority-data")))
		return data_to_memfd(a, FD_CA, s, what, &a->cafile, err, errlen);
	snprintf(what, sizeof(what), "kubeconfig %s: cluster \"%s\": certificate-authority",
		 kc->path, name);
	if ((s = map_str(kc, cl, "certificate-authority")))
		return kc_path(kc, s, what, &a->cafile, err, errlen);
	return 0;
}

/* One of client-certificate(-data) or client-key(-data). */
static int kc_pem(k8s_auth_t *a, const kc_t *kc, yaml_node_t *u, const char *uname, const char *key,
		  int slot, char **dst, char *err, size_t errlen)
{
	char what[300], dkey[64];
	const char *s;

	snprintf(dkey, sizeof(dkey), "%s-data", key);
	snprintf(what, sizeof(what), "kubeconfig %s: user \"%s\": %s", kc->path, uname, dkey);
	if ((s = map_str(kc, u, dkey)))
		return data_to_memfd(a, slot, s, what, dst, err, errlen);
	snprintf(what, sizeof(what), "kubeconfig %s: user \"%s\": %s", kc->path, uname, key);
	if ((s = map_str(kc, u, key)))
		return kc_path(kc, s, what, dst, err, errlen);
	return 0;
}

static int kc_user(k8s_auth_t *a, const kc_t *kc, yaml_node_t *u, const char *name, char *err,
		   size_t errlen)
{
	static const char *const unsupported[] = {"exec", "auth-provider", "username", "password",
						  "as"};
	char what[300];
	const char *s;
	int ret;

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		if (map_get(kc, u, unsupported[i])) {
			errf(err, errlen,
			     "kubeconfig %s: user \"%s\": \"%s\" is not supported (use a token, "
			     "tokenFile or a client certificate)",
			     kc->path, name, unsupported[i]);
			return ERR_CONFIG;
		}
	}
	if ((s = map_str(kc, u, "token")) && (ret = set_str(&a->token_static, s)) < 0)
		return ret;
	snprintf(what, sizeof(what), "kubeconfig %s: user \"%s\": tokenFile", kc->path, name);
	if (!s && (s = map_str(kc, u, "tokenFile")) &&
	    (ret = kc_path(kc, s, what, &a->token_file, err, errlen)) < 0)
		return ret;
	if ((ret = kc_pem(a, kc, u, name, "client-certificate", FD_CERT, &a->certfile, err,
			  errlen)) < 0 ||
	    (ret = kc_pem(a, kc, u, name, "client-key", FD_KEY, &a->keyfile, err, errlen)) < 0)
		return ret;
	if (!a->certfile != !a->keyfile) {
		errf(err, errlen,
		     "kubeconfig %s: user \"%s\": a client certificate needs both "
		     "client-certificate(-data) and client-key(-data)",
		     kc->path, name);
		return ERR_CONFIG;
	}
	return 0;
}

static int kc_resolve(k8s_auth_t *a, const kc_t *kc, yaml_node_t *root, char *err, size_t errlen)
{
	const char *cur, *cname, *uname, *ns;
	yaml_node_t *ctx, *cl, *u = NULL;
	int ret;

	if (!root || root->type != YAML_MAPPING_NODE) {
		errf(err, errlen, "kubeconfig %s: not a kubeconfig (no mapping at the top)",
		     kc->path);
		return ERR_CONFIG;
	}
	if (!(cur = map_str(kc, root, "current-context"))) {
		errf(err, errlen, "kubeconfig %s: no current-context", kc->path);
		return ERR_CONFIG;
	}
	if (!(ctx = named(kc, root, "contexts", cur, "context"))) {
		errf(err, errlen, "kubeconfig %s: current-context \"%s\" is not in contexts",
		     kc->path, cur);
		return ERR_CONFIG;
	}
	if (!(cname = map_str(kc, ctx, "cluster"))) {
		errf(err, errlen, "kubeconfig %s: context \"%s\" names no cluster", kc->path, cur);
		return ERR_CONFIG;
	}
	if (!(cl = named(kc, root, "clusters", cname, "cluster"))) {
		errf(err, errlen,
		     "kubeconfig %s: cluster \"%s\" (of context \"%s\") is not in "
		     "clusters",
		     kc->path, cname, cur);
		return ERR_CONFIG;
	}
	if ((uname = map_str(kc, ctx, "user")) && !(u = named(kc, root, "users", uname, "user"))) {
		errf(err, errlen, "kubeconfig %s: user \"%s\" (of context \"%s\") is not in users",
		     kc->path, uname, cur);
		return ERR_CONFIG;
	}
	if ((ns = map_str(kc, ctx, "namespace")) && (ret = set_str(&a->ns, ns)) < 0)
		return ret;
	if ((ret = kc_cluster(a, kc, cl, cname, err, errlen)) < 0)
		return ret;
	if (u && (ret = kc_user(a, kc, u, uname, err, errlen)) < 0)
		return ret;
	if (asprintf(&a->describe, "kubeconfig %s (context %s, cluster %s, user %s)", kc->path, cur,
		     cname, uname ? uname : "none") < 0) {
		a->describe = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int load_kubeconfig(k8s_auth_t *a, const char *path, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	bool parser_ok = false, doc_ok = false;
	kc_t kc = {.doc = &doc, .path = path};
	char *text = NULL, *copy = NULL;
	size_t n = 0;
	struct stat st;
	int ret;

	if ((ret = read_small(path, KUBECONFIG_MAX, &text, &n, &st)) < 0) {
		errf(err, errlen, "kubeconfig %s: %s", path,
		     ret == ERR_TOOBIG ? "larger than 1 MiB" : err_str(ret));
		goto out;
	}
	if (!(copy = strdup(path))) {
		ret = -ENOMEM;
		goto out;
	}
	if (!(kc.dir = strdup(dirname(copy)))) {
		ret = -ENOMEM;
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto out;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
	if (!yaml_parser_load(&parser, &doc)) {
		errf(err, errlen, "kubeconfig %s:%zu: YAML error: %s%s%s", path,
		     (size_t)parser.problem_mark.line + 1,
		     parser.problem ? parser.problem : "unknown", parser.context ? " " : "",
		     parser.context ? parser.context : "");
		ret = ERR_PARSE;
		goto out;
	}
	doc_ok = true;
	if (!yaml_document_get_root_node(&doc)) {
		errf(err, errlen, "kubeconfig %s: empty", path);
		ret = ERR_CONFIG;
		goto out;
	}
	ret = kc_resolve(a, &kc, yaml_document_get_root_node(&doc), err, errlen);
out:
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (text)
		explicit_bzero(text, n); /* may hold a token or a key */
	free(text);
	free(copy);
	free(kc.dir);
	return ret;
}

/* ---- the three modes */

static int in_cluster(k8s_auth_t *a, const char *host, char *err, size_t errlen)
{
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv(K8S_AUTH_SA_ENV);
	char *p = NULL, *nsbuf = NULL;
	size_t n = 0;
	struct stat st;
	int ret;

	if (!dir || !*dir)
		dir = K8S_AUTH_SA_DIR;
	if (!port || !*port || strspn(port, "0123456789") != strlen(port)) {
		errf(err, errlen,
		     "in-cluster: KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT "
		     "is %s",
		     port && *port ? "not a number" : "not");
		return ERR_CONFIG;
	}
	if (asprintf(&a->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0 ||
	    asprintf(&a->describe, "in-cluster (%s, service account in %s)", a->server, dir) < 0) {
		a->server = a->describe = NULL;
		return -ENOMEM;
	}
	if (asprintf(&a->token_file, "%s/token", dir) < 0 ||
	    asprintf(&a->cafile, "%s/ca.crt", dir) < 0 || asprintf(&p, "%s/namespace", dir) < 0) {
		a->token_file = a->cafile = NULL;
		return -ENOMEM;
	}
	/* The namespace file is optional: it only narrows what we log. */
	if (read_small(p, 253, &nsbuf, &n, &st) == 0) {
		while (n && (nsbuf[n - 1] == '\n' || nsbuf[n - 1] == ' '))
			nsbuf[--n] = '\0';
		ret = n ? set_str(&a->ns, nsbuf) : 0;
		free(nsbuf);
		if (ret < 0) {
			free(p);
			return ret;
		}
	}
	free(p);
	return 0;
}

int k8s_auth_new(k8s_auth_t **out, const k8s_auth_params_t *p, char *err, size_t errlen)
{
	k8s_auth_t *a = calloc(1, sizeof(*a));
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *kubeconfig = p->kubeconfig;
	char tok[K8S_TOKEN_MAX + 1];
	int ret;

	if (!a)
		return -ENOMEM;
	for (int i = 0; i < FD_N; i++)
		a->memfd[i] = -1;
	if (!kubeconfig && !p->server && !(host && *host) && getenv("KUBECONFIG") &&
	    *getenv("KUBECONFIG"))
		kubeconfig = getenv("KUBECONFIG");
	if (kubeconfig) {
		a->mode = K8S_AUTH_KUBECONFIG;
		ret = load_kubeconfig(a, kubeconfig, err, errlen);
	} else if (p->server) {
		a->mode = K8S_AUTH_SERVER;
		ret = asprintf(&a->describe, "server %s", p->server) < 0 ? -ENOMEM : 0;
		if (ret < 0)
			a->describe = NULL;
	} else if (host && *host) {
		a->mode = K8S_AUTH_IN_CLUSTER;
		ret = in_cluster(a, host, err, errlen);
	} else {
		errf(err, errlen,
		     "no Kubernetes API server: set [Kubernetes] server or kubeconfig, or run "
		     "in a pod (KUBERNETES_SERVICE_HOST is not set)");
		ret = ERR_CONFIG;
	}
	if (ret < 0)
		goto fail;
	/* Keys set next to a kubeconfig (or in a pod) override what it says. */
	if (p->server && (ret = set_str(&a->server, p->server)) < 0)
		goto fail;
	if (p->token_file) {
		free(a->token_static);
		a->token_static = NULL;
		if ((ret = set_str(&a->token_file, p->token_file)) < 0)
			goto fail;
	}
	if (p->cafile && (ret = set_str(&a->cafile, p->cafile)) < 0)
		goto fail;
	if (strchr(a->server, ',') ||
	    (strncmp(a->server, "https://", 8) && strncmp(a->server, "http://", 7))) {
		errf(err, errlen, "%s%s%sserver %s: %s",
		     p->server || !kubeconfig ? "" : "kubeconfig ",
		     p->server || !kubeconfig ? "" : kubeconfig,
		     p->server || !kubeconfig ? "" : ": ", a->server,
		     strchr(a->server, ',') ? "the Kubernetes API takes one URL, not a list"
					    : "not an http:// or https:// URL");
		ret = ERR_CONFIG;
		goto fail;
	}
	for (size_t n = strlen(a->server); n > 8 && a->server[n - 1] == '/'; n--)
		a->server[n - 1] = '\0';
	if (a->cafile && a->memfd[FD_CA] < 0 &&
	    (ret = check_readable(a->cafile,
				  a->mode == K8S_AUTH_IN_CLUSTER ? "in-cluster CA" : "cafile", err,
				  errlen)) < 0)
		goto fail;
	/* A token that cannot be read now is a config error, not a later 401 loop. */
	if (a->token_file && (ret = k8s_auth_token(a, tok, sizeof(tok), NULL, err, errlen)) < 0)
		goto fail;
	a->seen_gen = 0; /* the caller's first k8s_auth_token reports a change */
	explicit_bzero(tok, sizeof(tok));
	*out = a;
	return 0;
fail:
	k8s_auth_free(a);
	return ret;
}

void k8s_auth_free(k8s_auth_t *a)
{
	if (!a)
		return;
	for (int i = 0; i < FD_N; i++)
		if (a->memfd[i] >= 0)
			close(a->memfd[i]);
	free(a->server);
	free(a->cafile);
	free(a->certfile);
	free(a->keyfile);
	free(a->ns);
	free(a->describe);
	if (a->token_static)
		explicit_bzero(a->token_static, strlen(a->token_static));
	free(a->token_static);
	free(a->token_file);
	explicit_bzero(a->token, sizeof(a->token));
	free(a);
}

k8s_auth_mode_t k8s_auth_mode(const k8s_auth_t *a)
{
	return a->mode;
}

const char *k8s_auth_server(const k8s_auth_t *a)
{
	return a->server;
}

const char *k8s_auth_cafile(const k8s_auth_t *a)
{
	return a->cafile;
}

const char *k8s_auth_certfile(const k8s_auth_t *a)
{
	return a->certfile;
}

const char *k8s_auth_keyfile(const k8s_auth_t *a)
{
	return a->keyfile;
}

const char *k8s_auth_namespace(const k8s_auth_t *a)
{
	return a->ns;
}

const char *k8s_auth_describe(const k8s_auth_t *a)
{
	return a->describe;
}
