/* The rasrun host: one Lua 5.4 state with the rasrun modules registered. */
#ifndef RASRUN_HOST_H
#define RASRUN_HOST_H

#include <lua.h>

/* Exit statuses shared by every command. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* Creates the state, registers the C modules as package.preload entries, and
 * points package.path at the rasrun Lua tree found next to the executable. */
lua_State *host_new(void);

/* Runs the function on top of the stack with a traceback handler. On error
 * prints "<message>\n<traceback>" to stderr and returns the Lua status. */
int host_pcall(lua_State *L, int nargs, int nresults);

/* Folders found next to the executable (source tree or installed layout);
 * NULL when absent. Owned by the host, valid for the process lifetime. */
const char *host_lua_dir(void);
const char *host_share_dir(void);

/* Module openers (one per C module). */
int luaopen_rasrun_hdf(lua_State *L);
int luaopen_rasrun_fs(lua_State *L);
int luaopen_rasrun_sys(lua_State *L);
int luaopen_rasrun_json(lua_State *L);
int luaopen_rasrun_keys(lua_State *L);
int luaopen_rasrun_journal(lua_State *L);
int luaopen_rasrun_sched(lua_State *L);
int luaopen_rasrun_ssh(lua_State *L);

#endif
