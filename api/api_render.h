/*
 * api/render: turn store rrset views into the JSON of GET replies
 * ({"type":"A","ttl":30,"mode":"all","ips":[...]}). Any thread; no globals.
 */
#pragma once

#include "store/store.h"

struct json_t;

/**
 * Render one rrset (all sources' entries) as a JSON object.
 * @param set borrowed view; valid for the duration of the call.
 * @return owned json_t (json_decref), or NULL on allocation failure or a
 *         corrupt rrset value.
 */
struct json_t *api_render_rrset(const store_rrset_t *set);

/**
 * Render one rdata the way GET shows it in its type's array (a string for
 * A, AAAA, CNAME, PTR and TXT, an object for SRV and MX, hex otherwise).
 * @param rd borrowed, len bytes.
 * @return owned json_t (json_decref), or NULL on allocation failure.
 */
struct json_t *api_render_value(uint16_t type, const uint8_t *rd, size_t len);
