/* Lua value -> cJSON, shared by rasrun.json and the run journal. */
#ifndef RASRUN_JSONUTIL_H
#define RASRUN_JSONUTIL_H

#include <cJSON.h>
#include <lua.h>

/* Converts the value at idx (raises a Lua error for functions, cycles). */
cJSON *json_from_lua(lua_State *L, int idx);

#endif
