/* rasrun.keys: the "Key=Value" lines of HEC-RAS text files (projects, plans,
 * flows), parsed in C: plans are read by the thousand.
 *
 *   list, first = keys.parse(text [, first_only])
 *     list   { {key, value}, ... } in file order (empty with first_only)
 *     first  key -> its first value; a line without "=" that starts with a
 *            non-blank ("English Units") -> true
 *
 * Lines end with CR, LF or CRLF; blank ones carry nothing. Values lose the
 * blanks around them ("Plan File= p03"); keys keep theirs. A line starting
 * with "=" is a flag, as any other line without a key. */
#include "host.h"

#include <lauxlib.h>
#include <string.h>

/* Lua's %s: the C locale's white space */
static int blank(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static void add_first(lua_State *L, int first, const char *k, size_t klen, int value_at)
{
    lua_pushlstring(L, k, klen);
    if (lua_rawget(L, first) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_pushlstring(L, k, klen);
    if (value_at)
        lua_pushvalue(L, value_at);
    else
        lua_pushboolean(L, 1);
    lua_rawset(L, first);
}

static void parse_line(lua_State *L, const char *line, size_t len, int list, lua_Integer *nlist, int first,
                       int first_only)
{
    const char *eq = memchr(line, '=', len);
    if (eq && eq > line) {
        const char *v = eq + 1, *end = line + len;
        if (v < end && (*v == ' ' || *v == '\t'))
            while (v < end && blank((unsigned char)*v))
                v++;
        while (end > v && blank((unsigned char)end[-1]))
            end--;
        lua_pushlstring(L, v, (size_t)(end - v));
        int value = lua_gettop(L);
        if (!first_only) {
            lua_createtable(L, 2, 0);
            lua_pushlstring(L, line, (size_t)(eq - line));
            lua_rawseti(L, -2, 1);
            lua_pushvalue(L, value);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, list, ++*nlist);
        }
        add_first(L, first, line, (size_t)(eq - line), value);
        lua_pop(L, 1);
    } else if (!blank((unsigned char)line[0])) {
        while (len > 0 && blank((unsigned char)line[len - 1]))
            len--;
        add_first(L, first, line, len, 0);
    }
}

static int l_parse(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int first_only = lua_toboolean(L, 2);
    lua_newtable(L);
    int list = lua_gettop(L);
    lua_newtable(L);
    int first = lua_gettop(L);
    const char *p = s, *end = s + n;
    lua_Integer nlist = 0;
    while (p < end) {
        while (p < end && (*p == '\r' || *p == '\n'))
            p++;
        const char *q = p;
        while (q < end && *q != '\r' && *q != '\n')
            q++;
        if (q > p)
            parse_line(L, p, (size_t)(q - p), list, &nlist, first, first_only);
        p = q;
    }
    return 2;
}

int luaopen_rasrun_keys(lua_State *L)
{
    static const luaL_Reg funcs[] = { { "parse", l_parse }, { NULL, NULL } };
    luaL_newlib(L, funcs);
    return 1;
}
