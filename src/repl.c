/* rasrun repl: read a statement, run it, show its values; like the standalone
 * lua, an incomplete statement is continued on the next line. */
#include "repl.h"
#include "host.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>

#define PROMPT1 "rasrun> "
#define PROMPT2 "     >> "
#define HISTORY_LINES 1000

/* The signal handler needs the state to install its hook (as lua.c does). */
static lua_State *interrupt_L;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void on_sigint(int sig)
{
    signal(sig, SIG_DFL); /* a second Ctrl-C ends the process */
    lua_sethook(interrupt_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Ctrl-C at the prompt drops the statement being typed, as a shell does,
 * instead of ending the session. The handler only notes it: the line editor
 * puts the terminal back and returns. */
static volatile sig_atomic_t prompt_interrupted;

static void on_prompt_sigint(int sig)
{
    (void)sig;
    prompt_interrupted = 1;
}

struct reader {
    int tty;
    int cancelled; /* the last read_line ended with Ctrl-C */
    char history[4096];
};

static char *prompt_line(struct reader *r, const char *prompt)
{
    struct sigaction on = { .sa_handler = on_prompt_sigint }, was; /* no SA_RESTART */
    sigemptyset(&on.sa_mask);
    prompt_interrupted = 0;
    sigaction(SIGINT, &on, &was);
    char *line = readline(prompt);
    sigaction(SIGINT, &was, NULL);
    if (prompt_interrupted) {
        free(line);
        line = NULL;
        r->cancelled = 1;
        fputs("^C\n", stdout);
        fflush(stdout);
    }
    return line;
}

/* One line without its newline, or NULL at end of input or after Ctrl-C
 * (r->cancelled). Caller frees. */
static char *read_line(struct reader *r, int first)
{
    r->cancelled = 0;
    if (r->tty)
        return prompt_line(r, first ? PROMPT1 : PROMPT2);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = 0;
    return line;
}

static int incomplete(lua_State *L, int status)
{
    if (status != LUA_ERRSYNTAX)
        return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

/* Compiles one statement, reading continuation lines while it is incomplete.
 * Pushes the chunk (or an error message) and returns the load status; returns
 * -1 at end of input, -2 when Ctrl-C dropped the statement (nothing pushed).
 * *text receives the whole statement for the history. */
static int read_statement(lua_State *L, struct reader *r, char **text)
{
    char *line = read_line(r, 1);
    if (!line)
        return r->cancelled ? -2 : -1;
    /* An expression first, so that "1+1" shows 2. */
    lua_pushfstring(L, "return %s;", line);
    size_t elen;
    const char *expr = lua_tolstring(L, -1, &elen);
    int st = luaL_loadbuffer(L, expr, elen, "=stdin");
    lua_remove(L, -2);
    if (st == LUA_OK) {
        *text = line;
        return st;
    }
    lua_pop(L, 1);
    size_t cap = strlen(line) + 1;
    char *buf = line;
    for (;;) {
        st = luaL_loadbuffer(L, buf, strlen(buf), "=stdin");
        if (!incomplete(L, st))
            break;
        /* the incomplete statement's error stays on the stack until another
         * line comes: at the end of input it is the one reported */
        char *more = read_line(r, 0);
        if (!more && r->cancelled) {
            lua_pop(L, 1);
            free(buf);
            return -2;
        }
        if (!more)
            break;
        size_t need = strlen(buf) + strlen(more) + 2;
        if (need > cap) {
            cap = need * 2;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(more);
                break;
            }
            buf = grown;
        }
        lua_pop(L, 1);
        strcat(buf, "\n");
        strcat(buf, more);
        free(more);
    }
    *text = buf;
    return st;
}

/* Shows the values left by a statement through rasrun.repl.show (which
 * pretty-prints tables), falling back to print. */
static void show_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n <= 0)
        return;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rasrun.repl");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "show");
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
        lua_getglobal(L, "print");
    }
    lua_insert(L, base + 1);
    host_pcall(L, n, 0);
}

static void history_path(struct reader *r)
{
    const char *home = getenv("HOME");
    r->history[0] = 0;
    if (home && *home)
        snprintf(r->history, sizeof r->history, "%s/.rasrun_history", home);
}

static void banner(lua_State *L)
{
    (void)L;
    printf("rasrun %s (%s). The rasrun modules are loaded as `rasrun`;"
           " help() for a tour, Ctrl-D to leave.\n", RASRUN_VERSION, LUA_RELEASE);
}

/* Runs the statement on the top of the stack under the module's on_error:
 * an error shows its message and the user's frames only. */
static int run_statement(lua_State *L, int on_error)
{
    int fn = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, on_error);
    lua_insert(L, fn);
    int st = lua_pcall(L, 0, LUA_MULTRET, fn);
    lua_remove(L, fn);
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return st;
}

int repl_main(lua_State *L, int argc, char **argv)
{
    if (argc > 0) {
        fprintf(stderr, "rasrun: repl takes no arguments, got %s (rasrun repl --help)\n", argv[0]);
        return EXIT_USAGE;
    }
    struct reader r = { .tty = isatty(0) && isatty(1) };
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rasrun.repl");
    if (host_pcall(L, 1, 1) != LUA_OK)
        return EXIT_USAGE;
    lua_getfield(L, -1, "on_error");
    int on_error = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "setup"); /* globals: rasrun, help */
    if (host_pcall(L, 0, 0) != LUA_OK)
        return EXIT_USAGE;
    lua_pop(L, 1);
    if (r.tty) {
        history_path(&r);
        using_history();
        stifle_history(HISTORY_LINES);
        if (r.history[0])
            read_history(r.history);
        banner(L);
    }
    interrupt_L = L;
    int errors = 0;
    for (;;) {
        char *text = NULL;
        int base = lua_gettop(L);
        int st = read_statement(L, &r, &text);
        if (st == -2)
            continue;
        if (st < 0)
            break;
        if (r.tty && text && text[strspn(text, " \t")]) {
            add_history(text);
            if (r.history[0])
                write_history(r.history);
        }
        free(text);
        if (st == LUA_OK) {
            signal(SIGINT, on_sigint);
            st = run_statement(L, on_error);
            signal(SIGINT, SIG_DFL);
            if (st == LUA_OK)
                show_results(L, base);
        } else {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
        }
        if (st != LUA_OK)
            errors++;
        lua_settop(L, base);
        fflush(stdout);
        fflush(stderr);
    }
    if (r.tty)
        printf("\n");
    return (!r.tty && errors) ? EXIT_FAILED : EXIT_OK;
}
