/* rasrun.journal: the run journal from Lua.
 *
 *   local j, err = journal.open(path)
 *   j:write{ ev = "run_start", ... }    -- one JSON line ("t" added), then fsync
 *   j:close()                           -- also by __gc / __close
 *   journal.read(path) -> entries, broken_lines | nil, message
 * A line cut short by a crash is skipped and counted in broken_lines. */
#include "host.h"
#include "journal.h"
#include "jsonutil.h"

#include <lauxlib.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    journal *j;
} ujournal;

journal *journal_check(lua_State *L, int idx)
{
    ujournal *u = luaL_checkudata(L, idx, JOURNAL_MT);
    if (!u->j)
        luaL_argerror(L, idx, "journal is closed");
    return u->j;
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ujournal *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->j = NULL;
    luaL_setmetatable(L, JOURNAL_MT);
    char err[512];
    u->j = journal_open(path, err, sizeof err);
    if (!u->j) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int j_write(lua_State *L)
{
    journal *j = journal_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t len;
    const char *obj = json_text_from_lua(L, 2, 1, 0, &len);
    lua_pushliteral(L, "t");
    int has_t = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    int rc = journal_write_text(j, obj, len, !has_t);
    json_text_free(L, -1);
    if (rc != 0 || journal_sync(j) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot write journal %s: %s", journal_path(j), strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int j_close(lua_State *L)
{
    ujournal *u = luaL_checkudata(L, 1, JOURNAL_MT);
    journal_close(u->j);
    u->j = NULL;
    return 0;
}

static int j_path(lua_State *L)
{
    lua_pushstring(L, journal_path(journal_check(L, 1)));
    return 1;
}

static int l_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rasrun.json");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    int decode = lua_gettop(L);
    FILE *f = fopen(path, "re");
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read journal %s: %s", path, strerror(errno));
        return 2;
    }
    lua_newtable(L);
    int out = decode + 1;
    lua_Integer n = 0, broken = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') {
            broken++; /* cut short: the writer died mid-line */
            continue;
        }
        lua_pushvalue(L, decode);
        lua_pushlstring(L, line, (size_t)len - 1);
        lua_call(L, 1, 1);
        if (lua_istable(L, -1))
            lua_rawseti(L, out, ++n);
        else {
            lua_pop(L, 1);
            broken++;
        }
    }
    free(line);
    fclose(f);
    lua_pushinteger(L, broken);
    return 2;
}

static const luaL_Reg methods[] = {
    { "write", j_write }, { "close", j_close }, { "path", j_path }, { NULL, NULL },
};

static const luaL_Reg funcs[] = {
    { "open", l_open }, { "read", l_read }, { NULL, NULL },
};

int luaopen_rasrun_journal(lua_State *L)
{
    if (luaL_newmetatable(L, JOURNAL_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, j_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, j_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
