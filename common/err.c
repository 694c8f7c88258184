#include "common/err.h"

#include <string.h>

const char *err_str(int code)
{
	switch (code) {
	case 0:
		return "success";
	case ERR_NOTFOUND:
		return "not found";
	case ERR_SPACE:
		return "store is full (raise [Store] map-size)";
	case ERR_PARSE:
		return "parse error";
	case ERR_TOOBIG:
		return "too big";
	case ERR_TRUNC:
		return "truncated data";
	case ERR_MALFORMED:
		return "malformed data";
	case ERR_CONFIG:
		return "invalid configuration";
	case ERR_STORE:
		return "store failure";
	case ERR_CONFLICT:
		return "conflict";
	case ERR_INVAL:
		return "invalid argument";
	case ERR_READONLY:
		return "read-only";
	case ERR_TIMEOUT:
		return "timed out";
	case ERR_UPSTREAM:
		return "upstream failure";
	case ERR_DENIED:
		return "permission denied";
	}
	if (code < 0 && code > -1000)
		return strerror(-code); /* glibc returns static text for errno values */
	return "unknown error";
}
