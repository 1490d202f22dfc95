/* SSH settings from a Lua table (fields as lua/rasrun/ssh.lua resolves them). */
#ifndef RASRUN_SSH_LUA_H
#define RASRUN_SSH_LUA_H

#include <lua.h>
#include "ssh_conn.h"

/* Fills t with copies (free with ssh_target_free); -1 with err when the table
 * lacks the host or the known_hosts file. */
int ssh_target_from_lua(lua_State *L, int idx, ssh_target *t, char *err, size_t n);
void ssh_target_free(ssh_target *t);

#endif
