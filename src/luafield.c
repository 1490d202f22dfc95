/* Reading optional fields of a Lua settings table (see luafield.h). */
#include "luafield.h"

#include <stdlib.h>
#include <string.h>

char *lf_str(lua_State *L, int t, const char *k, const char *dflt)
{
    lua_getfield(L, t, k);
    const char *v = lua_tostring(L, -1);
    char *r = v ? strdup(v) : dflt ? strdup(dflt) : NULL;
    lua_pop(L, 1);
    return r;
}

double lf_num(lua_State *L, int t, const char *k, double dflt)
{
    lua_getfield(L, t, k);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : dflt;
    lua_pop(L, 1);
    return v;
}
