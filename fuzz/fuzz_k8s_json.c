/*
 * What the Kubernetes API hands the watcher, as any bytes: a watch event line
 * or a list item, parsed as JSON. Byte 0 selects the kind (Service or
 * EndpointSlice) and derives the records of a Service from it: the object as
 * the Service and the same object as one of its slices, compact forms made
 * by k8smap and read back by it. Every record must respect the documented
 * bounds; nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/wire.h"
#include "watchers/k8smap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const k8smap_derive_t *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const k8smap_rec_t *r = &d->recs[i];
		if (r->namelen == 0 || r->namelen > WIRE_NAME_MAX ||
		    wire_name_check(r->name, r->namelen) < 0 || r->rdlen > sizeof(r->rdata))
			abort();
		if (i > 0 && r->type == d->recs[i - 1].type &&
		    r->namelen == d->recs[i - 1].namelen &&
		    !memcmp(r->name, d->recs[i - 1].name, r->namelen) &&
		    r->rdlen == d->recs[i - 1].rdlen &&
		    !memcmp(r->rdata, d->recs[i - 1].rdata, r->rdlen))
			abort(); /* duplicates are dropped */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	k8smap_conf_t mc = {.external_ips = size > 0 && (data[0] & 2)};
	k8smap_id_t id;
	k8smap_derive_t d;
	char *svc = NULL, *slice = NULL;
	json_t *ev, *obj;

	if (size < 1 || wire_name_from_text("cluster.local.", mc.zone, &mc.zonelen) < 0)
		return 0;
	ev = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	if (!ev)
		return 0;
	/* A watch event wraps the object; a list item is the object. */
	obj = json_object_get(ev, "object");
	if (!json_is_object(obj))
		obj = ev;
	if (k8smap_service(obj, &id, &svc) == 0 && strlen(svc) == 0)
		abort();
	if (k8smap_slice(obj, &id, &slice) == 0 && strlen(slice) == 0)
		abort();
	if (k8smap_ident(obj, &id) == 0 &&
	    k8smap_derive_begin(&d, &mc, id.ns, (data[0] & 1) && id.svc[0] ? id.svc : id.name, svc,
				svc ? strlen(svc) : 0) == 0) {
		if (slice)
			k8smap_derive_slice(&d, slice, strlen(slice));
		k8smap_derive_end(&d);
		check(&d);
		k8smap_derive_free(&d);
	}
	free(svc);
	free(slice);
	json_decref(ev);
	return 0;
}
