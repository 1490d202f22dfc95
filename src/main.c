/* rasrun: command-line entry. The REPL lives in C (line editing); every other
 * command is parsed and run by the Lua module rasrun.cli. */
#include "host.h"
#include "repl.h"

#include <lauxlib.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* SIGPIPE: the write that raised it fails with EPIPE; nothing else to do. */
static void on_sigpipe(int sig) { (void)sig; }

int main(int argc, char **argv)
{
    /* Freed memory is kept for reuse rather than handed back to the kernel
     * at once (glibc's default), where it was faulted in and zeroed again:
     * writing the reports of a 2000-plan run took 129 ms, now 102 ms. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* Output to a pipe that closed (`rasrun run ... | tee log` after a
     * Ctrl-C, `| head`) is lost, not fatal: a run goes on to stop its
     * engines and write its journal and reports. Caught, not ignored: every
     * child (os.execute, io.popen too) starts with the default again. */
    struct sigaction pipe_sa = { .sa_handler = on_sigpipe, .sa_flags = SA_RESTART };
    sigemptyset(&pipe_sa.sa_mask);
    sigaction(SIGPIPE, &pipe_sa, NULL);
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("rasrun %s (%s)\n", RASRUN_VERSION, LUA_RELEASE);
        return EXIT_OK;
    }
    lua_State *L = host_new();
    if (!L) {
        fprintf(stderr, "rasrun: cannot create the Lua state (out of memory)\n");
        return EXIT_USAGE;
    }
    /* A copy of the program, away from its modules, says where it looked. */
    if (!host_lua_dir()) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "rasrun.cli");
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            fprintf(stderr, "rasrun: cannot find its Lua modules: they are neither in ../share/rasrun/lua "
                    "nor in ../lua beside the program, nor on the Lua path; run the program where it "
                    "was built (or a link to it), or install it with `make install`\n");
            lua_close(L);
            return EXIT_USAGE;
        }
    }
    int status;
    if (argc >= 2 && strcmp(argv[1], "repl") == 0 &&
        !(argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))) {
        status = repl_main(L, argc - 2, argv + 2);
    } else {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "rasrun.cli");
        if (host_pcall(L, 1, 1) != LUA_OK) {
            lua_close(L);
            return EXIT_USAGE;
        }
        lua_getfield(L, -1, "main");
        lua_newtable(L);
        for (int i = 1; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i);
        }
        if (host_pcall(L, 1, 1) != LUA_OK) {
            status = EXIT_USAGE;
        } else {
            /* what the recipe returned: a whole number the shell can see */
            int whole = 1;
            lua_Integer v = lua_isnil(L, -1) ? EXIT_OK : lua_tointegerx(L, -1, &whole);
            if (!whole || v < 0 || v > 255) {
                /* never a raising __tostring here: numbers by value, else the type */
                const char *s = lua_isnumber(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1);
                fprintf(stderr, "rasrun: exit status %s is not a whole number from 0 to 255\n", s);
                status = EXIT_USAGE;
            } else {
                status = (int)v;
            }
        }
    }
    lua_close(L);
    return status;
}
