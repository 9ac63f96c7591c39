/* Members of JSON objects from peers (agents, the server), read with their types checked. */
#include <json-c/json.h>

#include "server/internal.h"

const char *
jfield_str(struct json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

int64_t
jfield_int(struct json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
		       ? json_object_get_int64(v)
		       : -1;
}
