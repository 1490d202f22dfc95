/* Lua value -> JSON text, shared by rasrun.json and the run journal. */
#ifndef RASRUN_JSONUTIL_H
#define RASRUN_JSONUTIL_H

#include <locale.h>
#include <lua.h>
#include <stddef.h>
#include <string.h>

/* The value at idx as JSON text (*len bytes, no NUL counted; objects' keys
 * sorted), compact or laid out as cJSON_Print lays it out; raises a Lua
 * error for functions, cycles. Strings that are not UTF-8 (a path in
 * Latin-1) are read as Windows-1252 into valid UTF-8, for reports; with
 * keep_bytes they keep their bytes, for what is read back (the run journal
 * names files by them). The text belongs to a value pushed on the stack
 * (freed with it, also when an error unwinds the walk or the caller):
 * json_text_free(L, -1) frees it at once, the value staying. */
const char *json_text_from_lua(lua_State *L, int idx, int keep_bytes, int pretty, size_t *len);
void json_text_free(lua_State *L, int idx);

/* A number printf wrote (%f, %g) made JSON: the locale's decimal point (a
 * recipe may set a decimal comma with os.setlocale) becomes '.'. */
static inline void json_decimal_point(char *num)
{
    const char *dp = localeconv()->decimal_point;
    size_t n = strlen(dp);
    char *p = n && strcmp(dp, ".") != 0 ? strstr(num, dp) : NULL;
    if (p) {
        *p = '.';
        memmove(p + 1, p + n, strlen(p + n) + 1);
    }
}

#endif
