/* rasrun.json: JSON through cJSON.
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

/* Errors are noted in *err (and NULL returned) instead of raised, so that a
 * half-built cJSON tree is freed before the Lua error unwinds the stack. */
struct enc {
    lua_State *L;
    int keep_bytes; /* strings as they are, UTF-8 or not (json_from_lua) */
    char err[128];
};

static cJSON *to_json(struct enc *e, int idx, int depth);

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

/* A JSON string from Lua text, valid UTF-8 whatever the text's encoding. */
static cJSON *json_string(const char *s, size_t n)
{
    int bad;
    size_t len;
    char *out = as_utf8(s, n, &bad, &len);
    if (!bad)
        return cJSON_CreateString(s);
    if (!out)
        return NULL;
    cJSON *j = cJSON_CreateString(out);
    free(out);
    return j;
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

/* An object whose keys are all strings (the common case), its keys sorted
 * in C. Returns 0, with nothing built, when some key is not a string or
 * holds a NUL (or there are too many for the fast path). The key pointers stay valid: the
 * table holds the strings and is not changed while it is encoded. */
static int object_fast(struct enc *e, int idx, int depth, cJSON **out)
{
    lua_State *L = e->L;
    const char *keys[FAST_KEYS];
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        size_t len;
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!k || strlen(k) != len || n == FAST_KEYS) { /* not a plain C string key */
            lua_pop(L, 1);
            return 0;
        }
        keys[n++] = k;
    }
    qsort(keys, n, sizeof keys[0], cmp_keys);
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++) {
        lua_pushstring(L, keys[i]);
        lua_rawget(L, idx);
        cJSON *item = to_json(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (!item) {
            cJSON_Delete(o);
            o = NULL;
            break;
        }
        cJSON_AddItemToObject(o, keys[i], item);
    }
    *out = o;
    return 1;
}

static cJSON *table_to_json(struct enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t n;
    luaL_checkstack(L, 6, "json nesting");
    if (is_array(L, idx, &n)) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 1; a && i <= n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            cJSON *item = to_json(e, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
            if (!item) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, item);
        }
        return a;
    }
    /* Keys in sorted order, so that the same value always encodes the same. */
    cJSON *fast;
    if (object_fast(e, idx, depth, &fast))
        return fast;
    /* Numeric keys too: keys is an array of key strings, orig maps a key
     * string to the original key. */
    lua_newtable(L);
    int keys = lua_gettop(L);
    lua_newtable(L);
    int orig = keys + 1;
    lua_Integer nkeys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            lua_pushvalue(L, -1);
            lua_tostring(L, -1); /* on the copy: lua_next needs the original key */
            lua_pushvalue(L, -1);
            lua_rawseti(L, keys, ++nkeys);
            lua_pushvalue(L, -2);
            lua_rawset(L, orig);
        }
    }
    sort_strings(L, keys, nkeys);
    cJSON *o = cJSON_CreateObject();
    for (lua_Integer i = 1; o && i <= nkeys; i++) {
        lua_rawgeti(L, keys, i);
        const char *k = lua_tostring(L, -1);
        lua_pushvalue(L, -1);
        lua_rawget(L, orig);
        lua_rawget(L, idx);
        cJSON *item = to_json(e, lua_gettop(L), depth + 1);
        if (!item) {
            lua_settop(L, keys - 1);
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(o, k, item);
        lua_pop(L, 2);
    }
    lua_settop(L, keys - 1);
    return o;
}

static cJSON *to_json(struct enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    if (depth > MAX_DEPTH) {
        snprintf(e->err, sizeof e->err, "nesting deeper than %d (a cycle?)", MAX_DEPTH);
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx)) { /* every digit (cJSON's numbers are doubles) */
            char digits[32];
            snprintf(digits, sizeof digits, "%lld", (long long)lua_tointeger(L, idx));
            return cJSON_CreateRaw(digits);
        }
        double v = lua_tonumber(L, idx);
        return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return e->keep_bytes ? cJSON_CreateString(s) : json_string(s, n);
    }
    case LUA_TTABLE:
        return table_to_json(e, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return cJSON_CreateNull();
        /* fall through */
    default:
        snprintf(e->err, sizeof e->err, "cannot encode a %s value", luaL_typename(L, idx));
        return NULL;
    }
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

cJSON *json_from_lua(lua_State *L, int idx, int keep_bytes)
{
    struct enc e = { L, keep_bytes, "" };
    cJSON *j = to_json(&e, lua_absindex(L, idx), 0);
    if (!j)
        luaL_error(L, "json.encode: %s", e.err[0] ? e.err : "out of memory");
    return j;
}

static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    cJSON *j = json_from_lua(L, 1, 0);
    char *s = lua_toboolean(L, 2) ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return luaL_error(L, "json.encode: out of memory");
    lua_pushstring(L, s);
    cJSON_free(s);
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
