/* rasrun repl: interactive Lua with the rasrun modules loaded. */
#ifndef RASRUN_REPL_H
#define RASRUN_REPL_H

#include <lua.h>

/* Reads statements from stdin until EOF. With a terminal: prompts, line
 * editing and a history file; without one: no prompts. Returns an exit status. */
int repl_main(lua_State *L, int argc, char **argv);

#endif
