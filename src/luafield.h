/* Reading optional fields of a Lua settings table (C modules share these). */
#ifndef RASRUN_LUAFIELD_H
#define RASRUN_LUAFIELD_H

#include <lua.h>

/* A copy of t[k] as a string (caller frees), or of dflt (NULL: none). */
char *lf_str(lua_State *L, int t, const char *k, const char *dflt);
/* t[k] as a number, or dflt when absent or not a number. */
double lf_num(lua_State *L, int t, const char *k, double dflt);

#endif
