/* rasrun.json: JSON text from Lua values (written directly, as cJSON prints)
 * and Lua values from JSON text (cJSON's parser).
 *
 *   json.encode(value [, pretty]) -> string      (raises on cycles, functions)
 *   json.decode(text) -> value | nil, message
 *   json.array(t) -> t marked to encode as an array even when empty
 *   json.null     -> decoded JSON null in arrays (objects drop null members)
 *
 * A table encodes as an array when its keys are exactly 1..n (n > 0) or it
 * was marked with json.array; otherwise as an object with string keys. */
#include "host.h"
#include "jsonutil.h"

#include <cJSON.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_MT "rasrun.json.array"
#define MAX_DEPTH 200
#define STR_(x) #x
#define STR(x) STR_(x)

/* Errors are noted in err (and 0 returned) instead of raised, so that the
 * text written so far is freed before the Lua error unwinds the stack. */
struct enc {
    lua_State *L;
    int keep_bytes; /* strings as they are, UTF-8 or not (json_text_from_lua) */
    char err[128];
};

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Windows-1252 for 0x80-0x9F (0: undefined there, kept as U+FFFD). */
static const unsigned short CP1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

/* Text as UTF-8: NULL (with *bad 0) when it is valid UTF-8 already; text
 * that is not (Windows HEC-RAS writes project files in Windows-1252) is read
 * as Windows-1252 into a new string of *len bytes (NULL with *bad 1: out of
 * memory). */
static char *as_utf8(const char *s, size_t n, int *bad, size_t *len)
{
    size_t i = 0, seq;
    while (i < n && (seq = utf8_seq((const unsigned char *)s + i, n - i)))
        i += seq;
    *bad = i < n;
    if (i == n)
        return NULL;
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c < 0x80) {
            *o++ = (char)c;
            continue;
        }
        unsigned cp = c >= 0xA0 ? c : CP1252[c - 0x80] ? CP1252[c - 0x80] : 0xFFFD;
        if (cp < 0x800) {
            *o++ = (char)(0xC0 | cp >> 6);
        } else {
            *o++ = (char)(0xE0 | cp >> 12);
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        }
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = 0;
    *len = (size_t)(o - out);
    return out;
}

/* json.utf8(s): s as UTF-8 (as it is when it is; read as Windows-1252 when
 * not), for text that leaves rasrun other than as JSON (report.html). */
static int l_utf8(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int bad;
    size_t len;
    char *out = as_utf8(s, n, &bad, &len);
    if (!bad) {
        lua_settop(L, 1);
        return 1;
    }
    if (!out)
        return luaL_error(L, "json.utf8: out of memory");
    lua_pushlstring(L, out, len);
    free(out);
    return 1;
}

static int is_array(lua_State *L, int idx, size_t *n)
{
    int t = luaL_getmetafield(L, idx, "__name"); /* pushes nothing when absent */
    if (t != LUA_TNIL) {
        int marked = t == LUA_TSTRING && strcmp(lua_tostring(L, -1), ARRAY_MT) == 0;
        lua_pop(L, 1);
        if (marked) {
            *n = lua_rawlen(L, idx);
            return 1;
        }
    }
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    *n = count;
    return count > 0 && lua_rawlen(L, idx) == count;
}

/* Insertion sort of the string array t[1..n] (objects are small). */
static void sort_strings(lua_State *L, int t, lua_Integer n)
{
    for (lua_Integer i = 2; i <= n; i++) {
        lua_rawgeti(L, t, i);
        lua_Integer j = i - 1;
        for (; j >= 1; j--) {
            lua_rawgeti(L, t, j);
            int gt = strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) > 0;
            if (!gt) {
                lua_pop(L, 1);
                break;
            }
            lua_rawseti(L, t, j + 1);
        }
        lua_rawseti(L, t, j + 1);
    }
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define FAST_KEYS 64

/* The members of an object in the order they encode in: its keys sorted,
 * so that the same value always encodes the same. Most objects have only
 * string keys, few of them: those are sorted in C (fast, the key pointers
 * stay valid, as the table holds the strings and is not changed while it is
 * encoded). Others, with numeric keys too, through two Lua tables: keys, an
 * array of key strings, and orig, which maps each to the original key. */
typedef struct {
    const char *fast[FAST_KEYS];
    size_t n;
    int keys, orig; /* stack slots of the two tables, or 0 (the fast path) */
} members;

static int members_fast(lua_State *L, int idx, members *m)
{
    m->n = 0;
    m->keys = m->orig = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        size_t len;
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!k || strlen(k) != len || m->n == FAST_KEYS) { /* not a plain C string key */
            lua_pop(L, 1);
            return 0;
        }
        m->fast[m->n++] = k;
    }
    qsort(m->fast, m->n, sizeof m->fast[0], cmp_keys);
    return 1;
}

/* Needs 6 free stack slots; pushes the two tables on the slow path. */
static void members_open(lua_State *L, int idx, members *m)
{
    if (members_fast(L, idx, m))
        return;
    lua_newtable(L);
    m->keys = lua_gettop(L);
    lua_newtable(L);
    m->orig = m->keys + 1;
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            lua_pushvalue(L, -1);
            lua_tostring(L, -1); /* on the copy: lua_next needs the original key */
            lua_pushvalue(L, -1);
            lua_rawseti(L, m->keys, ++n);
            lua_pushvalue(L, -2);
            lua_rawset(L, m->orig);
        }
    }
    sort_strings(L, m->keys, n);
    m->n = (size_t)n;
}

/* Pushes member i's value (from 0); returns its key. */
static const char *members_push(lua_State *L, int idx, const members *m, size_t i)
{
    if (!m->keys) {
        lua_pushstring(L, m->fast[i]);
        lua_rawget(L, idx);
        return m->fast[i];
    }
    lua_rawgeti(L, m->keys, (lua_Integer)i + 1);
    const char *k = lua_tostring(L, -1); /* the keys table holds it */
    lua_rawget(L, m->orig);
    lua_rawget(L, idx);
    return k;
}

static void members_close(lua_State *L, const members *m)
{
    if (m->keys)
        lua_settop(L, m->keys - 1);
}

static void push_json(lua_State *L, const cJSON *j, int depth)
{
    luaL_checkstack(L, 4, "json nesting");
    if (depth > MAX_DEPTH) {
        lua_pushnil(L);
        return;
    }
    if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (v == floor(v) && fabs(v) < 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        luaL_setmetatable(L, ARRAY_MT);
        lua_Integer i = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            push_json(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsObject(j)) {
        lua_newtable(L);
        for (const cJSON *c = j->child; c; c = c->next) {
            if (cJSON_IsNull(c))
                continue;
            push_json(L, c, depth + 1);
            lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushlightuserdata(L, NULL); /* json.null */
    }
}

/* ---- Lua value -> JSON text, written as the value is walked ---------------
 * Laid out as cJSON prints (compact, or with its tabs and new lines), with
 * no cJSON tree in between: a 2000-plan run's run.json took 46-49 ms through
 * one, most of it making and freeing the tree's 120,000 nodes. */

/* What owns the text while it is written: a Lua value (a memory error in
 * the walk unwinds past the C code, and the value's __gc frees the text). */
typedef struct {
    char *p;
} textbox;

typedef struct {
    char *p;
    size_t n, cap;
    int pretty, failed;
    textbox *box;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = t->box->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

static void put_char(text *t, char c) { put(t, &c, 1); }

static void put_tabs(text *t, int n)
{
    for (int i = 0; i < n; i++)
        put_char(t, '\t');
}

/* As cJSON escapes: quote, backslash, the named controls, other controls
 * as \u00XX; every other byte as it is. */
static void put_string(text *t, const char *s, size_t n)
{
    put_char(t, '"');
    size_t run = 0; /* bytes that need no escape, not yet put */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        put(t, s + i - run, run);
        run = 0;
        char esc[8];
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (!named) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            named = esc;
        }
        put(t, named, strlen(named));
    }
    put(t, s + n - run, run);
    put_char(t, '"');
}

/* As cJSON prints a double: 15 digits, or 17 where 15 do not read back
 * the same (cJSON takes 15 digits that read back within a rounding error). */
static void put_double(text *t, double v)
{
    char buf[40];
    if (!isfinite(v)) {
        snprintf(buf, sizeof buf, "null");
    } else {
        snprintf(buf, sizeof buf, "%1.15g", v);
        if (strtod(buf, NULL) != v) /* (read in the same locale as written) */
            snprintf(buf, sizeof buf, "%1.17g", v);
        json_decimal_point(buf);
    }
    put(t, buf, strlen(buf));
}

static int write_value(struct enc *e, text *t, int idx, int depth);

static int write_table(struct enc *e, text *t, int idx, int depth)
{
    lua_State *L = e->L;
    size_t n;
    if (!lua_checkstack(L, 8)) {
        snprintf(e->err, sizeof e->err, "nesting too deep for the Lua stack");
        return 0;
    }
    if (is_array(L, idx, &n)) {
        put_char(t, '[');
        for (size_t i = 1; i <= n; i++) {
            if (i > 1)
                put(t, ", ", t->pretty ? 2 : 1);
            lua_rawgeti(L, idx, (lua_Integer)i);
            int ok = write_value(e, t, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
            if (!ok)
                return 0;
        }
        put_char(t, ']');
        return 1;
    }
    members m;
    members_open(L, idx, &m);
    put(t, "{\n", t->pretty ? 2 : 1);
    int ok = 1;
    for (size_t i = 0; ok && i < m.n; i++) {
        const char *k = members_push(L, idx, &m, i);
        if (t->pretty)
            put_tabs(t, depth + 1);
        put_string(t, k, strlen(k));
        put(t, ":\t", t->pretty ? 2 : 1);
        ok = write_value(e, t, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (i + 1 < m.n)
            put_char(t, ',');
        if (t->pretty)
            put_char(t, '\n');
    }
    members_close(L, &m);
    if (t->pretty)
        put_tabs(t, depth);
    put_char(t, '}');
    return ok;
}

static int write_value(struct enc *e, text *t, int idx, int depth)
{
    lua_State *L = e->L;
    if (depth > MAX_DEPTH) {
        snprintf(e->err, sizeof e->err, "nesting deeper than %d (a cycle?)", MAX_DEPTH);
        return 0;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        put(t, "null", 4);
        return 1;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(t, "true", 4);
        else
            put(t, "false", 5);
        return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) { /* every digit */
            char digits[32];
            int len = snprintf(digits, sizeof digits, "%lld", (long long)lua_tointeger(L, idx));
            put(t, digits, (size_t)len);
        } else {
            put_double(t, lua_tonumber(L, idx));
        }
        return 1;
    case LUA_TSTRING: {
        size_t n, len;
        const char *s = lua_tolstring(L, idx, &n);
        if (e->keep_bytes) {
            put_string(t, s, n);
            return 1;
        }
        int bad;
        char *utf8 = as_utf8(s, n, &bad, &len);
        if (bad && !utf8) {
            t->failed = 1;
            return 0;
        }
        put_string(t, bad ? utf8 : s, bad ? len : n);
        free(utf8);
        return 1;
    }
    case LUA_TTABLE:
        return write_table(e, t, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            put(t, "null", 4);
            return 1;
        }
        /* fall through */
    default:
        snprintf(e->err, sizeof e->err, "cannot encode a %s value", luaL_typename(L, idx));
        return 0;
    }
}

#define TEXTBOX_MT "rasrun.jsontext"

void json_text_free(lua_State *L, int idx)
{
    textbox *b = luaL_checkudata(L, idx, TEXTBOX_MT);
    free(b->p);
    b->p = NULL;
}

static int textbox_gc(lua_State *L)
{
    json_text_free(L, 1);
    return 0;
}

const char *json_text_from_lua(lua_State *L, int idx, int keep_bytes, int pretty, size_t *len)
{
    idx = lua_absindex(L, idx);
    struct enc e = { L, keep_bytes, "" };
    text t = { .pretty = pretty };
    t.box = lua_newuserdatauv(L, sizeof *t.box, 0);
    t.box->p = NULL;
    if (luaL_newmetatable(L, TEXTBOX_MT)) {
        lua_pushcfunction(L, textbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    int ok = write_value(&e, &t, idx, 0);
    if (ok && !t.failed) {
        *len = t.n;
        return t.p ? t.p : "";
    }
    luaL_error(L, "json.encode: %s", e.err[0] ? e.err : "out of memory");
    return NULL;
}

static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 2);
    size_t len;
    const char *s = json_text_from_lua(L, 1, 0, lua_toboolean(L, 2), &len);
    lua_pushlstring(L, s, len);
    json_text_free(L, -2);
    return 1;
}

static int too_deep(const cJSON *j, int depth)
{
    if (depth > MAX_DEPTH)
        return 1;
    for (const cJSON *c = j->child; c; c = c->next)
        if (too_deep(c, depth + 1))
            return 1;
    return 0;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    const char *why = NULL;
    if (j && end) { /* one value, then nothing but white space */
        while (end < s + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end < s + len)
            why = ": text after the value";
    }
    if (j && !why && too_deep(j, 0)) {
        why = ": nested deeper than " STR(MAX_DEPTH);
        end = s;
    }
    if (!j || why) {
        cJSON_Delete(j);
        size_t at = end && end >= s ? (size_t)(end - s) : 0;
        int line = 1;
        for (size_t i = 0; i < at && i < len; i++)
            line += s[i] == '\n';
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON at line %d (byte %d)%s", line, (int)at + 1, why ? why : "");
        return 2;
    }
    push_json(L, j, 0);
    cJSON_Delete(j);
    return 1;
}

static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ARRAY_MT);
    return 1;
}

static const luaL_Reg funcs[] = {
    { "encode", l_encode },
    { "decode", l_decode },
    { "array", l_array },
    { "utf8", l_utf8 },
    { NULL, NULL },
};

int luaopen_rasrun_json(lua_State *L)
{
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
