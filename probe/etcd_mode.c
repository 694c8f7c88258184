/*
 * etcd_mode.c: health as etcd status keys (DESIGN §8), shared between probes.
 * Not built yet in this slice: the probe refuses to start with etcd configured
 * rather than writing the local store, which the etcd watcher would contradict.
 */
#include "probe/pmode.h"

#include "common/err.h"
#include "common/log.h"

int pmode_etcd_start(pmode_t *m)
{
	(void)m;
	log_err("probe: etcd mode (status keys under ip-monitor-path) is not built yet "
		"(issue 13)");
	return ERR_CONFIG;
}

int pmode_etcd_tick(pmode_t *m)
{
	(void)m;
	return 0;
}

void pmode_etcd_stop(pmode_t *m)
{
	(void)m;
}
