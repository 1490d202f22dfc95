/* The Lua host: state creation, module registration, module search paths. */
#include "host.h"

#include <lauxlib.h>
#include <lualib.h>
#include <libssh2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static char lua_dir[PATH_MAX + 64];
static char share_dir[PATH_MAX + 64];

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The executable lives in <root>/bin; its Lua tree is <root>/lua in a source
 * checkout or <root>/share/rasrun/lua once installed. */
static void find_dirs(void)
{
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = 0; /* .../bin */
    slash = strrchr(exe, '/');
    if (slash)
        *slash = 0; /* root */
    char cand[PATH_MAX + 32];
    snprintf(cand, sizeof cand, "%s/share/rasrun/lua", exe);
    if (is_dir(cand)) {
        snprintf(lua_dir, sizeof lua_dir, "%s", cand);
        snprintf(share_dir, sizeof share_dir, "%s/share/rasrun", exe);
        return;
    }
    snprintf(cand, sizeof cand, "%s/lua/rasrun", exe);
    if (is_dir(cand)) {
        snprintf(lua_dir, sizeof lua_dir, "%s/lua", exe);
        snprintf(share_dir, sizeof share_dir, "%s", exe);
    }
}

const char *host_lua_dir(void) { return lua_dir[0] ? lua_dir : NULL; }
const char *host_share_dir(void) { return share_dir[0] ? share_dir : NULL; }

static void preload(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* package.path = <lua dir> first, so the shipped modules win over anything a
 * site has on LUA_PATH; site modules on RASRUN_PATH come in through recipes. */
static void set_path(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    const char *old = lua_tostring(L, -1);
    if (lua_dir[0])
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, old ? old : "");
    else
        lua_pushstring(L, old ? old : "");
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

lua_State *host_new(void)
{
    if (!lua_dir[0]) {
        find_dirs();
        /* libssh2 wants one global initialisation before any thread uses it. */
        libssh2_init(0);
    }
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    preload(L, "rasrun.hdf", luaopen_rasrun_hdf);
    preload(L, "rasrun.fs", luaopen_rasrun_fs);
    preload(L, "rasrun.sys", luaopen_rasrun_sys);
    preload(L, "rasrun.json", luaopen_rasrun_json);
    preload(L, "rasrun.keys", luaopen_rasrun_keys);
    preload(L, "rasrun.journal", luaopen_rasrun_journal);
    preload(L, "rasrun.sched", luaopen_rasrun_sched);
    preload(L, "rasrun.ssh_c", luaopen_rasrun_ssh);
    set_path(L);
    lua_pushstring(L, RASRUN_VERSION);
    lua_setglobal(L, "_RASRUN_VERSION");
    if (share_dir[0]) {
        lua_pushstring(L, share_dir);
        lua_setglobal(L, "_RASRUN_SHARE");
    }
    return L;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int host_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int st = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (st != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        fflush(stderr);
        lua_pop(L, 1);
    }
    return st;
}
