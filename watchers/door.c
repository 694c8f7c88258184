/*
 * door.c: see door.h. The socket is created with mode 0600 (umask), in the
 * data dir that only the skydns user writes; whoever can connect can write
 * etcd as this watcher, as whoever can write the store can change answers.
 */
#include "watchers/door.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "common/wire.h"
#include "store/store.h"
#include "watchers/etcd.h"
#include "watchers/map.h"
#include "watchers/sync.h"

#define DOOR_MAX_OPS 512    /* etcd's --max-txn-ops default is 128; keep ours bounded too */
#define DOOR_IO_TIMEOUT_S 5 /* a client that stalls mid-request */

struct door {
	const conf_t *conf;
	volatile sig_atomic_t *stop;
	etcd_t *etcd;
	sync_t *sync; /* re-reads of one name; its own, beside the watch's */
	int fd;
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int read_all(int fd, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r;
		if (n == cap) {
			char *nb = cap >= DOOR_REQ_MAX ? NULL : realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				return cap >= DOOR_REQ_MAX ? ERR_TOOBIG : -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

static void reply(int fd, json_t *doc)
{
	char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	const char *p = s ? s : "{\"error\":\"out of memory\"}";
	size_t n = strlen(p);

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
	free(s);
	json_decref(doc);
}

static const uint8_t *text_of(const json_t *j, size_t *len)
{
	if (!json_is_string(j))
		return NULL;
	*len = json_string_length(j);
	return (const uint8_t *)json_string_value(j);
}

/* Request JSON -> compares and ops (borrowing from root). @return 0 or ERR_PARSE/ERR_TOOBIG. */
static int parse_req(const json_t *root, etcd_cmp_t *cmp, size_t *ncmp, etcd_op_t *ops,
		     size_t *nops)
{
	const json_t *ca = json_object_get(root, "cmp"), *oa = json_object_get(root, "ops");
	size_t i;
	json_t *v;

	if (!json_is_array(ca) || !json_is_array(oa))
		return ERR_PARSE;
	if (json_array_size(ca) > DOOR_MAX_OPS || json_array_size(oa) > DOOR_MAX_OPS)
		return ERR_TOOBIG;
	json_array_foreach(ca, i, v)
	{
		etcd_cmp_t *c = &cmp[i];
		const json_t *mod = json_object_get(v, "mod"), *end = json_object_get(v, "end");
		*c = (etcd_cmp_t){0};
		if (!(c->key = text_of(json_object_get(v, "key"), &c->klen)) ||
		    !json_is_integer(mod) || (end && !(c->end = text_of(end, &c->elen))))
			return ERR_PARSE;
		c->mod = json_integer_value(mod);
	}
	*ncmp = json_array_size(ca);
	json_array_foreach(oa, i, v)
	{
		etcd_op_t *o = &ops[i];
		const json_t *del = json_object_get(v, "del");
		*o = (etcd_op_t){.del = del != NULL};
		if (!(o->key = text_of(del ? del : json_object_get(v, "put"), &o->klen)) ||
		    (!del && !(o->val = text_of(json_object_get(v, "value"), &o->vlen))))
			return ERR_PARSE;
	}
	*nops = json_array_size(oa);
	return 0;
}

/*
 * The txn at the current member, then at each other one once. A member that
 * timed out may still have committed: the caller's compares make a repeat fail
 * instead of applying twice.
 */
static int run_txn(door_t *d, const etcd_cmp_t *cmp, size_t ncmp, const etcd_op_t *ops, size_t nops,
		   bool *ok, int64_t *rev)
{
	int ret = ERR_UPSTREAM;

	for (int tries = 0; tries < 16 && !*d->stop; tries++) {
		if ((ret = etcd_authenticate(d->etcd)) == 0 &&
		    (ret = etcd_txn(d->etcd, cmp, ncmp, ops, nops, ok, rev)) == 0)
			return 0;
		if (ret != ERR_UPSTREAM && ret != ERR_TIMEOUT)
			return ret;
		log_warn("etcd: api txn at %s: %s; trying the next member", etcd_endpoint(d->etcd),
			 err_str(ret));
		if (etcd_failover(d->etcd) && tries > 0)
			break; /* every member failed once */
	}
	return ret;
}

typedef struct {
	door_t *d;
	const char *dir;
} reread_ctx_t;

/* sync_read_fn: every key under the name's etcd key at one revision, from any member. */
static int read_dir(void *ctx, etcd_kv_fn fn, void *fnctx, int64_t *rev)
{
	reread_ctx_t *r = ctx;
	door_t *d = r->d;
	uint64_t cid = 0;
	int ret = ERR_UPSTREAM;

	for (int tries = 0; tries < 16 && !*d->stop; tries++) {
		if ((ret = etcd_authenticate(d->etcd)) == 0 &&
		    (ret = etcd_range_prefix(d->etcd, (const uint8_t *)r->dir, strlen(r->dir), 1000,
					     fn, fnctx, rev, &cid)) == 0)
			return 0;
		if (ret != ERR_UPSTREAM && ret != ERR_TIMEOUT)
			return ret; /* fn's error (the store), or etcd refused: not a member's */
		log_warn("etcd: api re-read at %s: %s; trying the next member",
			 etcd_endpoint(d->etcd), err_str(ret));
		if (etcd_failover(d->etcd) && tries > 0)
			break;
	}
	return ret;
}

/*
 * {"reread": "<etcd key of a name>"}: the name's subtree read from etcd into the store
 * (sync_reread_name). A failed read may have passed keys to the txn already; the txn is
 * aborted then, so the store is as before.
 */
static void serve_reread(door_t *d, int fd, const char *dir)
{
	uint8_t name[WIRE_NAME_MAX];
	size_t namelen;
	reread_ctx_t r = {d, dir};
	sync_reread_t out;
	int ret;

	if (!d->sync) {
		reply(fd, json_pack("{s:s}", "error", "this watcher has no store to re-read into"));
		return;
	}
	if (map_key_name(d->conf->etcd_prefix, (const uint8_t *)dir, strlen(dir), name, &namelen) <
	    0) {
		reply(fd, json_pack("{s:s}", "error", "not a name's key under etcd-prefix"));
		return;
	}
	if ((ret = sync_reread_name(d->sync, name, namelen, read_dir, &r, &out)) < 0) {
		log_warn("etcd: api re-read of %s failed: %s", dir, err_str(ret));
		reply(fd, json_pack("{s:s,s:s}", "error",
				    ret == ERR_CONFLICT ? "the member read is behind this store"
							: err_str(ret),
				    "at", etcd_endpoint(d->etcd)));
		return;
	}
	log_info("etcd: api re-read of %s at revision %lld: %zu keys, %zu put, %zu dropped "
		 "(the store stays at revision %lld)",
		 dir, (long long)out.rev, out.keys, out.changed, out.dropped,
		 (long long)out.stored_rev);
	reply(fd,
	      json_pack("{s:b,s:I,s:I,s:I,s:I,s:I}", "ok", 1, "rev", (json_int_t)out.rev,
			"storedRev", (json_int_t)out.stored_rev, "keys", (json_int_t)out.keys,
			"changed", (json_int_t)out.changed, "dropped", (json_int_t)out.dropped));
}

static void serve(door_t *d, int fd)
{
	struct timeval tv = {.tv_sec = DOOR_IO_TIMEOUT_S};
	etcd_cmp_t *cmp = calloc(DOOR_MAX_OPS, sizeof(*cmp));
	etcd_op_t *ops = calloc(DOOR_MAX_OPS, sizeof(*ops));
	size_t len = 0, ncmp = 0, nops = 0;
	char *body = NULL;
	json_t *root = NULL;
	bool ok = false;
	int64_t rev = 0;
	int ret;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!cmp || !ops) {
		reply(fd, json_pack("{s:s}", "error", "out of memory"));
		goto out;
	}
	if ((ret = read_all(fd, &body, &len)) < 0) {
		reply(fd, json_pack("{s:s}", "error", err_str(ret)));
		goto out;
	}
	root = json_loadb(body, len, 0, NULL);
	if (json_is_string(json_object_get(root, "reread"))) {
		serve_reread(d, fd, json_string_value(json_object_get(root, "reread")));
		goto out;
	}
	if ((ret = root ? parse_req(root, cmp, &ncmp, ops, &nops) : ERR_PARSE) < 0) {
		reply(fd, json_pack("{s:s}", "error", "bad request"));
		goto out;
	}
	if ((ret = run_txn(d, cmp, ncmp, ops, nops, &ok, &rev)) < 0) {
		log_warn("etcd: api txn failed: %s", err_str(ret));
		reply(fd,
		      json_pack("{s:s,s:s}", "error", err_str(ret), "at", etcd_endpoint(d->etcd)));
		goto out;
	}
	reply(fd, json_pack("{s:b,s:I}", "ok", ok, "rev", (json_int_t)rev));
out:
	json_decref(root);
	free(body);
	free(cmp);
	free(ops);
}

static void *door_main(void *arg)
{
	door_t *d = arg;

	while (!*d->stop) {
		struct pollfd p = {.fd = d->fd, .events = POLLIN};
		int fd;

		/* Poll with a timeout: the stop flag is a plain flag, not an fd. */
		if (poll(&p, 1, 500) <= 0)
			continue;
		if ((fd = accept(d->fd, NULL, NULL)) < 0)
			continue;
		serve(d, fd);
		close(fd);
	}
	return NULL;
}

int door_start(door_t **out, const conf_t *conf, store_t *store, const http_tls_t *tls,
	       volatile sig_atomic_t *stop)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	door_t *d = calloc(1, sizeof(*d));
	sigset_t all, old;
	int ret;

	if (!d)
		return -ENOMEM;
	d->fd = -1;
	d->conf = conf;
	d->stop = stop;
	if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s", conf->data_dir, DOOR_SOCK_NAME) >=
	    sizeof(d->path)) {
		ret = ERR_TOOBIG;
		goto fail;
	}
	if ((ret = etcd_new(&d->etcd, conf->etcd_servers, tls, stop)) < 0)
		goto fail;
	etcd_set_auth(d->etcd, conf->etcd_username, conf->etcd_password);
	if (store && (ret = sync_new(&d->sync, conf, store)) < 0)
		goto fail;
	memcpy(sa.sun_path, d->path, strlen(d->path) + 1);
	if ((d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		ret = -errno;
		goto fail;
	}
	unlink(d->path); /* a previous run's socket; nobody listens on it any more */
	mode_t um = umask(077);
	ret = bind(d->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(um);
	if (ret < 0 || listen(d->fd, 64) < 0) {
		ret = -errno;
		goto fail;
	}
	/* Signals stay with the main thread (its nanosleep must be cut short). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&d->thread, NULL, door_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	if (d->fd >= 0)
		close(d->fd);
	etcd_free(d->etcd);
	sync_free(d->sync);
	free(d);
	return ret;
}

void door_stop(door_t *d)
{
	if (!d)
		return;
	pthread_join(d->thread, NULL);
	close(d->fd);
	unlink(d->path);
	etcd_free(d->etcd);
	sync_free(d->sync);
	free(d);
}
