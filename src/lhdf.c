/* rasrun.hdf: read-only access to HDF5 files (HEC-RAS results, geometry).
 *
 *   local f, err = hdf.open(path)      -- nil, "path: not an HDF5 file" ...
 *   f:members(group)  f:kind(path)  f:exists(path)  f:info(dataset)
 *   f:attrs(path)  f:attr(path, name)  f:read(dataset [, start [, count]])
 *   f:close()        (also by __gc and __close)
 *
 * Values: integers and floats become Lua numbers, strings are trimmed of the
 * padding HEC-RAS leaves (spaces, NULs), compound elements become tables keyed
 * by member name. Arrays become (nested, row-major) tables with 1-based
 * indices; a hyperslab's start is 1-based too. Scalar or one-element
 * attributes become plain values. Expected failures return nil, message. */
#include "host.h"

#include <hdf5.h>
#include <lauxlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define FILE_MT "rasrun.hdf.file"
#define MAX_RANK 8
/* Refuse whole-dataset reads past this many elements: ask for a hyperslab. */
#define MAX_READ_ELEMS (64u * 1024u * 1024u)

typedef struct {
    hid_t fid;
    long long size;     /* the file as opened (f:stat) */
    struct timespec mtime;
} hfile;

static hfile *check_file(lua_State *L)
{
    hfile *f = luaL_checkudata(L, 1, FILE_MT);
    if (f->fid < 0)
        luaL_argerror(L, 1, "HDF5 file is closed");
    return f;
}

static const char *file_name(lua_State *L)
{
    lua_getiuservalue(L, 1, 1);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the uservalue keeps the string alive */
    return s ? s : "?";
}

static int fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

/* Does the path name an object? One HDF5 call: with the error stack silenced,
 * a missing link anywhere along the path is a plain "no" (negative). */
static int path_exists(hid_t fid, const char *path)
{
    if (strcmp(path, "/") == 0 || *path == 0)
        return 1;
    return H5Oexists_by_name(fid, path, H5P_DEFAULT) > 0;
}

static hid_t open_object(hfile *f, const char *path)
{
    return H5Oopen(f->fid, path, H5P_DEFAULT);
}

/* ---- types and values ------------------------------------------------- */

/* Compound types nested deeper than this are not read (no HEC-RAS file
 * nests them; each level costs the Lua stack a slot). */
#define MAX_NESTING 8
/* Members of one compound type read at most (HEC-RAS's structure tables
 * have about a hundred). */
#define MAX_MEMBERS 4096

/* How rasrun reads a file type: the memory type it reads it as, and what
 * pushing its elements needs, asked of HDF5 once per read rather than once
 * per element (each question is a library call). */
typedef struct member member;
typedef struct {
    hid_t mt;   /* <0: a type rasrun does not read */
    int own;    /* mt is to be closed (else a predefined type or the file's) */
    H5T_class_t cls;
    int is_unsigned, vstr; /* integers; strings */
    size_t size;
    int nmembers;     /* compounds: their members, in order */
    member *members;
} elem_kind;

struct member {
    char *name;       /* HDF5's (H5free_memory) */
    size_t offset;    /* in the memory compound */
    hid_t ftype;      /* the member's file type (a string member may be read as it) */
    elem_kind kind;
};

static void drop_kind(const elem_kind *k)
{
    for (int i = 0; i < k->nmembers; i++) {
        member *m = &k->members[i];
        drop_kind(&m->kind);
        if (m->ftype >= 0)
            H5Tclose(m->ftype);
        H5free_memory(m->name);
    }
    free(k->members);
    if (k->own && k->mt >= 0)
        H5Tclose(k->mt);
}

static elem_kind read_as_at(hid_t ftype, int depth);

/* A compound type read member by member, each as read_as_at reads it; k
 * keeps the members (names, offsets, kinds) for pushing its elements. */
static void compound_read_as(hid_t ftype, int depth, elem_kind *k)
{
    k->own = 1;
    int n = H5Tget_nmembers(ftype);
    if (n <= 0 || n > MAX_MEMBERS || depth >= MAX_NESTING ||
        !(k->members = calloc((size_t)n, sizeof *k->members)))
        return;
    int bad = 0;
    k->size = 0;
    while (k->nmembers < n && !bad) {
        member *m = &k->members[k->nmembers++];
        m->ftype = H5Tget_member_type(ftype, (unsigned)(k->nmembers - 1));
        m->name = H5Tget_member_name(ftype, (unsigned)(k->nmembers - 1));
        m->kind = read_as_at(m->ftype, depth + 1);
        m->offset = k->size;
        k->size += m->kind.size;
        bad = m->kind.mt < 0 || !m->name;
    }
    if (bad)
        return;
    k->mt = H5Tcreate(H5T_COMPOUND, k->size);
    for (int i = 0; k->mt >= 0 && i < n; i++)
        H5Tinsert(k->mt, k->members[i].name, k->members[i].offset, k->members[i].kind.mt);
}

static elem_kind read_as_at(hid_t ftype, int depth)
{
    elem_kind k = { H5I_INVALID_HID, 0, H5Tget_class(ftype), 0, 0, 0, 0, NULL };
    switch (k.cls) {
    case H5T_BITFIELD: /* HDF5 converts no bit-field to a number: its bytes, as stored */
        k.mt = ftype;
        k.size = H5Tget_size(ftype);
        break;
    case H5T_INTEGER:
    case H5T_ENUM:
        k.cls = H5T_INTEGER;
        k.is_unsigned = H5Tget_sign(ftype) == H5T_SGN_NONE;
        k.mt = k.is_unsigned ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG;
        k.size = sizeof(long long);
        break;
    case H5T_FLOAT:
        k.mt = H5T_NATIVE_DOUBLE;
        k.size = sizeof(double);
        break;
    case H5T_STRING:
        if (H5Tis_variable_str(ftype) > 0) {
            k.vstr = k.own = 1;
            k.mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(k.mt, H5T_VARIABLE);
            H5Tset_cset(k.mt, H5Tget_cset(ftype)); /* UTF-8 text is read as it is, not refused */
            k.size = sizeof(char *);
        } else { /* read as stored, no conversion: the padding is trimmed when pushed */
            k.mt = ftype;
            k.size = H5Tget_size(ftype);
        }
        break;
    case H5T_COMPOUND:
        compound_read_as(ftype, depth, &k);
        break;
    default:
        break;
    }
    return k;
}

/* How to read a file type: drop_kind() when done (before closing ftype). */
static elem_kind read_as(hid_t ftype) { return read_as_at(ftype, 0); }

static const char *type_name(hid_t ftype)
{
    size_t sz = H5Tget_size(ftype);
    switch (H5Tget_class(ftype)) {
    case H5T_INTEGER:
        if (H5Tget_sign(ftype) == H5T_SGN_NONE)
            return sz == 1 ? "uint8" : sz == 2 ? "uint16" : sz == 4 ? "uint32" : "uint64";
        return sz == 1 ? "int8" : sz == 2 ? "int16" : sz == 4 ? "int32" : "int64";
    case H5T_FLOAT:
        return sz == 4 ? "float32" : "float64";
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    case H5T_ENUM:
        return "enum";
    default:
        return "other";
    }
}

/* Does a value of this memory type own heap memory (variable-length strings)? */
static int needs_reclaim(const elem_kind *k)
{
    if (k->cls == H5T_STRING)
        return k->vstr;
    for (int i = 0; i < k->nmembers; i++)
        if (needs_reclaim(&k->members[i].kind))
            return 1;
    return 0;
}

/* Fixed-length HEC-RAS strings are padded with spaces and/or NULs. */
static void push_trimmed(lua_State *L, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
        len--;
    lua_pushlstring(L, s, len);
}

static void push_elem(lua_State *L, const elem_kind *k, const char *p)
{
    switch (k->cls) {
    case H5T_INTEGER:
        if (k->is_unsigned) {
            unsigned long long v;
            memcpy(&v, p, sizeof v);
            lua_pushinteger(L, (lua_Integer)v);
        } else {
            long long v;
            memcpy(&v, p, sizeof v);
            lua_pushinteger(L, (lua_Integer)v);
        }
        break;
    case H5T_FLOAT: {
        double v;
        memcpy(&v, p, sizeof v);
        lua_pushnumber(L, v);
        break;
    }
    case H5T_STRING:
        if (k->vstr) {
            const char *s;
            memcpy(&s, p, sizeof s);
            if (s)
                push_trimmed(L, s, strlen(s));
            else
                lua_pushliteral(L, "");
        } else {
            push_trimmed(L, p, k->size);
        }
        break;
    case H5T_BITFIELD:
        lua_pushlstring(L, p, k->size);
        break;
    case H5T_COMPOUND:
        luaL_checkstack(L, 2, "nested HDF5 value");
        lua_createtable(L, 0, k->nmembers);
        for (int i = 0; i < k->nmembers; i++) {
            const member *m = &k->members[i];
            push_elem(L, &m->kind, p + m->offset);
            lua_setfield(L, -2, m->name);
        }
        break;
    default:
        lua_pushnil(L);
    }
}

/* Pushes a row-major array as nested tables, one level per dimension. */
static void push_array(lua_State *L, const elem_kind *k, const char *buf, const hsize_t *dims,
                       int rank, size_t *index)
{
    luaL_checkstack(L, 2, "nested HDF5 value");
    lua_createtable(L, (int)dims[0], 0);
    for (hsize_t i = 0; i < dims[0]; i++) {
        if (rank == 1) {
            push_elem(L, k, buf + (*index)++ * k->size);
        } else {
            push_array(L, k, buf, dims + 1, rank - 1, index);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static hsize_t count_elems(const hsize_t *dims, int rank)
{
    hsize_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

/* Reads an attribute value and pushes it; returns 0 on failure (nothing pushed). */
static int push_attribute(lua_State *L, hid_t attr)
{
    hid_t ft = H5Aget_type(attr), space = H5Aget_space(attr);
    elem_kind k = read_as(ft);
    int ok = 0;
    hsize_t dims[MAX_RANK];
    H5S_class_t shape = H5Sget_simple_extent_type(space);
    int rank = shape == H5S_SCALAR ? 0 : H5Sget_simple_extent_ndims(space);
    if (k.mt >= 0 && shape == H5S_NULL) {
        lua_pushnil(L); /* an attribute with no value at all */
        ok = 1;
    } else if (k.mt >= 0 && rank >= 0 && rank <= MAX_RANK) {
        if (rank > 0)
            H5Sget_simple_extent_dims(space, dims, NULL);
        hsize_t n = count_elems(dims, rank);
        char *buf = calloc(n ? n : 1, k.size + 1);
        if (buf && H5Aread(attr, k.mt, buf) >= 0) {
            if (rank == 0 || n == 1)
                push_elem(L, &k, buf);
            else {
                size_t idx = 0;
                push_array(L, &k, buf, dims, rank, &idx);
            }
            if (needs_reclaim(&k))
                H5Dvlen_reclaim(k.mt, space, H5P_DEFAULT, buf);
            ok = 1;
        }
        free(buf);
    }
    drop_kind(&k);
    H5Tclose(ft);
    H5Sclose(space);
    return ok;
}

/* ---- module functions --------------------------------------------------- */

static int l_is_hdf5(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    lua_pushboolean(L, stat(path, &st) == 0 && S_ISREG(st.st_mode) && H5Fis_hdf5(path) > 0);
    return 1;
}

/* Files up to this size are read whole, in one read, by HDF5's core driver:
 * opening one and reading a few attributes otherwise costs dozens of small
 * reads. Bigger ones are read as needed: reading the whole of a 1.4 MB real
 * result made results.read take 340 us instead of 185 (and real results run
 * to gigabytes). */
#define SMALL_FILE (64 << 10)

static hid_t small_file_access(off_t size)
{
    static hid_t fapl = H5I_INVALID_HID;
    if (size > SMALL_FILE)
        return H5P_DEFAULT;
    if (fapl < 0) {
        fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0)
            return H5P_DEFAULT;
    }
    return fapl;
}

static herr_t find_lock_error(unsigned n, const H5E_error2_t *e, void *ud)
{
    (void)n;
    if (e->min_num == H5E_CANTLOCKFILE)
        *(int *)ud = 1;
    return 0;
}

/* Did the last call fail because another process holds the file's lock (a
 * writer: HDF5 locks the files it opens)? */
static int lock_failed(void)
{
    int found = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_lock_error, &found);
    return found;
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(L, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(L, "%s: not a regular file", path);
    if (st.st_size == 0)
        return fail(L, "%s: empty file (0 bytes), not HDF5", path);
    hfile *f = lua_newuserdatauv(L, sizeof *f, 1);
    f->fid = H5I_INVALID_HID;
    f->size = (long long)st.st_size;
    f->mtime = st.st_mtim;
    luaL_setmetatable(L, FILE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    f->fid = H5Fopen(path, H5F_ACC_RDONLY, small_file_access(st.st_size));
    if (f->fid >= 0)
        return 1;
    if (lock_failed())
        return fail(L, "%s: in use by another process (HDF5 file lock): still being written? "
                       "(on a file system without locks, set HDF5_USE_FILE_LOCKING=FALSE)", path);
    /* Only now look why: a file that cannot be read at all (permissions),
     * "not HDF5 at all", or "HDF5, but damaged". */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(L, "%s: %s", path, strerror(errno));
    close(fd);
    if (H5Fis_hdf5(path) <= 0)
        return fail(L, "%s: not an HDF5 file", path);
    return fail(L, "%s: HDF5 file cannot be opened (truncated or damaged)", path);
}

static int f_close(lua_State *L)
{
    hfile *f = luaL_checkudata(L, 1, FILE_MT);
    if (f->fid >= 0) {
        H5Fclose(f->fid);
        f->fid = H5I_INVALID_HID;
    }
    return 0;
}

/* The size and modification time of the file as it was opened (fs.stat's
 * fields): no second look at a file just opened. */
static int f_stat(lua_State *L)
{
    hfile *f = luaL_checkudata(L, 1, FILE_MT);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)f->size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (double)f->mtime.tv_sec + (double)f->mtime.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    return 1;
}

static int f_tostring(lua_State *L)
{
    hfile *f = luaL_checkudata(L, 1, FILE_MT);
    lua_pushfstring(L, "hdf file %s%s", file_name(L), f->fid < 0 ? " (closed)" : "");
    return 1;
}

static int f_exists(lua_State *L)
{
    hfile *f = check_file(L);
    lua_pushboolean(L, path_exists(f->fid, luaL_checkstring(L, 2)));
    return 1;
}

static const char *kind_of(hid_t fid, const char *path)
{
    H5O_info_t info;
    if (H5Oget_info_by_name2(fid, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return NULL;
    switch (info.type) {
    case H5O_TYPE_GROUP: return "group";
    case H5O_TYPE_DATASET: return "dataset";
    case H5O_TYPE_NAMED_DATATYPE: return "datatype";
    default: return "other";
    }
}

static int f_kind(lua_State *L)
{
    hfile *f = check_file(L);
    const char *k = kind_of(f->fid, luaL_checkstring(L, 2));
    if (!k)
        return fail(L, "%s: no object %s", file_name(L), lua_tostring(L, 2));
    lua_pushstring(L, k);
    return 1;
}

static herr_t collect_member(hid_t g, const char *name, const H5L_info_t *info, void *ud)
{
    (void)g;
    (void)info;
    lua_State *L = ud;
    lua_pushstring(L, name);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int f_members(lua_State *L)
{
    hfile *f = check_file(L);
    const char *path = luaL_optstring(L, 2, "/");
    const char *k = kind_of(f->fid, path);
    if (!k || strcmp(k, "group") != 0)
        return fail(L, "%s: no group %s", file_name(L), path);
    hid_t g = H5Gopen2(f->fid, path, H5P_DEFAULT);
    if (g < 0)
        return fail(L, "%s: cannot open group %s", file_name(L), path);
    lua_newtable(L);
    hsize_t idx = 0;
    herr_t st = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_member, L);
    H5Gclose(g);
    if (st < 0)
        return fail(L, "%s: cannot list group %s (damaged file?)", file_name(L), path);
    return 1;
}

struct attr_walk {
    lua_State *L;
    int unread;     /* stack index of the names that could not be read */
    int names;      /* stack index of the wanted names (an array), or 0: all */
    lua_Integer nnames;
};

/* Is name in the array of wanted names (none given: every name is)? */
static int wanted(struct attr_walk *w, const char *name)
{
    if (!w->names)
        return 1;
    for (lua_Integer i = 1; i <= w->nnames; i++) {
        lua_rawgeti(w->L, w->names, i);
        const char *s = lua_tostring(w->L, -1);
        int same = s && strcmp(s, name) == 0;
        lua_pop(w->L, 1);
        if (same)
            return 1;
    }
    return 0;
}

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *ud)
{
    (void)info;
    struct attr_walk *w = ud;
    if (!wanted(w, name))
        return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        return 0;
    if (push_attribute(w->L, a)) {
        lua_setfield(w->L, -2, name);
    } else {
        lua_pushstring(w->L, name);
        lua_rawseti(w->L, w->unread, (lua_Integer)lua_rawlen(w->L, w->unread) + 1);
    }
    H5Aclose(a);
    return 0;
}

/* f:attrs(path[, names]): every attribute of path, or only those of the
 * array names that exist (one pass over the names; only those are read).
 * A second value lists the names whose values cannot be read (a type
 * rasrun does not read), when there are any. */
static int f_attrs(lua_State *L)
{
    hfile *f = check_file(L);
    const char *path = luaL_optstring(L, 2, "/");
    struct attr_walk w = { L, 0, 0, 0 };
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        w.names = 3;
        w.nnames = (lua_Integer)lua_rawlen(L, 3);
    }
    hid_t o = open_object(f, path);
    if (o < 0)
        return fail(L, "%s: no object %s", file_name(L), path);
    lua_newtable(L);
    w.unread = lua_gettop(L);
    lua_newtable(L);
    hsize_t idx = 0;
    herr_t st = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &w);
    H5Oclose(o);
    if (st < 0)
        return fail(L, "%s: cannot read attributes of %s (damaged file?)", file_name(L), path);
    lua_rotate(L, -2, 1); /* values, then the unread names */
    if (lua_rawlen(L, -1) > 0)
        return 2;
    lua_pop(L, 1);
    return 1;
}

static int f_attr(lua_State *L)
{
    hfile *f = check_file(L);
    const char *path = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    hid_t o = open_object(f, path);
    if (o < 0)
        return fail(L, "%s: no object %s", file_name(L), path);
    int has = H5Aexists(o, name) > 0;
    hid_t a = has ? H5Aopen(o, name, H5P_DEFAULT) : H5I_INVALID_HID;
    int ok = a >= 0 && push_attribute(L, a);
    if (a >= 0)
        H5Aclose(a);
    H5Oclose(o);
    if (!has)
        return fail(L, "%s: %s has no attribute '%s'", file_name(L), path, name);
    if (!ok)
        return fail(L, "%s: cannot read attribute '%s' of %s", file_name(L), name, path);
    return 1;
}

/* A dataset, or <0 when path is missing or is not one (HDF5's errors are
 * not printed: see luaopen_rasrun_hdf). */
static hid_t open_dataset(hfile *f, const char *path)
{
    return H5Dopen2(f->fid, path, H5P_DEFAULT);
}

static int f_info(lua_State *L)
{
    hfile *f = check_file(L);
    const char *path = luaL_checkstring(L, 2);
    const char *k = kind_of(f->fid, path);
    if (!k)
        return fail(L, "%s: no object %s", file_name(L), path);
    lua_newtable(L);
    lua_pushstring(L, k);
    lua_setfield(L, -2, "kind");
    if (strcmp(k, "dataset") != 0)
        return 1;
    hid_t d = H5Dopen2(f->fid, path, H5P_DEFAULT);
    if (d < 0)
        return fail(L, "%s: cannot open dataset %s", file_name(L), path);
    hid_t space = H5Dget_space(d), ft = H5Dget_type(d);
    hsize_t dims[MAX_RANK];
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > MAX_RANK)
        rank = 0;
    H5Sget_simple_extent_dims(space, dims, NULL);
    lua_createtable(L, rank, 0);
    for (int i = 0; i < rank; i++) {
        lua_pushinteger(L, (lua_Integer)dims[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_pushstring(L, type_name(ft));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)H5Tget_size(ft));
    lua_setfield(L, -2, "element_size");
    H5Tclose(ft);
    H5Sclose(space);
    H5Dclose(d);
    return 1;
}

/* Reads a 1-based hyperslab {start} {count} into hsize_t arrays; 0 when the
 * argument is not such a table (the caller reports it: raising here would
 * leave the dataset open). */
static int slab_arg(lua_State *L, int idx, int rank, hsize_t *out, const hsize_t *dflt, int one_based)
{
    if (lua_isnoneornil(L, idx)) {
        for (int i = 0; i < rank; i++)
            out[i] = dflt[i];
        return 1;
    }
    if (!lua_istable(L, idx) || (int)lua_rawlen(L, idx) != rank)
        return 0;
    for (int i = 0; i < rank; i++) {
        lua_rawgeti(L, idx, i + 1);
        int whole;
        lua_Integer v = lua_tointegerx(L, -1, &whole);
        lua_pop(L, 1);
        if (!whole || v < (one_based ? 1 : 0))
            return 0;
        out[i] = (hsize_t)(v - one_based);
    }
    return 1;
}

/* HDF5 allocates (and zeroes) a 1 MiB type-conversion buffer for every read
 * that converts, however small: a short string costs a megabyte of memset.
 * Ask for what the read needs instead, up to that default. A read that does
 * not convert (a string read as stored, doubles as doubles) needs none. The
 * transfer property list is made once (a list costs more than the read). */
#define DEFAULT_TCONV (1024 * 1024)
static hid_t conversion_plist(hsize_t n, hid_t ft, hid_t mt)
{
    static hid_t xfer = H5I_INVALID_HID;
    if (mt == ft || H5Tequal(ft, mt) > 0)
        return H5P_DEFAULT;
    size_t elem = H5Tget_size(ft) > H5Tget_size(mt) ? H5Tget_size(ft) : H5Tget_size(mt);
    hsize_t need = (n ? n : 1) * elem;
    if (elem == 0 || need >= DEFAULT_TCONV)
        return H5P_DEFAULT;
    if (xfer < 0)
        xfer = H5Pcreate(H5P_DATASET_XFER);
    if (xfer < 0 || H5Pset_buffer(xfer, (size_t)need, NULL, NULL) < 0)
        return H5P_DEFAULT;
    return xfer;
}

static int f_read(lua_State *L)
{
    hfile *f = check_file(L);
    const char *path = luaL_checkstring(L, 2);
    hid_t d = open_dataset(f, path);
    if (d < 0)
        return fail(L, "%s: no dataset %s", file_name(L), path);
    hid_t space = H5Dget_space(d), ft = H5Dget_type(d);
    elem_kind k = read_as(ft);
    hid_t mt = k.mt;
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[MAX_RANK], start[MAX_RANK], count[MAX_RANK], zero[MAX_RANK] = { 0 };
    const char *err = NULL;
    char *buf = NULL;
    hid_t mspace = H5I_INVALID_HID;
    if (mt < 0)
        err = "has a data type rasrun cannot read";
    else if (rank < 0 || rank > MAX_RANK)
        err = "has an unsupported rank";
    if (!err) {
        H5Sget_simple_extent_dims(space, dims, NULL);
        if (!slab_arg(L, 3, rank, start, zero, 1) || !slab_arg(L, 4, rank, count, dims, 0))
            err = "hyperslab start and count must be tables of whole numbers, one per dimension "
                  "(start is 1-based)";
    }
    if (!err && lua_isnoneornil(L, 4) && !lua_isnoneornil(L, 3))
        for (int i = 0; i < rank; i++)
            count[i] = dims[i] > start[i] ? dims[i] - start[i] : 0;
    for (int i = 0; !err && i < rank; i++)
        if (start[i] + count[i] > dims[i])
            err = "hyperslab goes past the end of the dataset";
    hsize_t n = err ? 0 : count_elems(count, rank);
    if (!err && n > MAX_READ_ELEMS)
        err = "is too large to read whole; read a hyperslab (start, count)";
    if (!err && rank > 0) {
        H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
        mspace = H5Screate_simple(rank, count, NULL);
    } else if (!err) {
        mspace = H5Screate(H5S_SCALAR);
    }
    if (!err) {
        buf = calloc(n ? n : 1, k.size + 1);
        hid_t xfer = conversion_plist(n, ft, mt);
        if (!buf)
            err = "does not fit in memory";
        else if (H5Dread(d, mt, mspace, space, xfer, buf) < 0)
            err = "cannot be read (damaged file?)";
    }
    if (!err) {
        size_t idx = 0;
        if (rank == 0)
            push_elem(L, &k, buf);
        else
            push_array(L, &k, buf, count, rank, &idx);
        if (needs_reclaim(&k))
            H5Dvlen_reclaim(mt, mspace, H5P_DEFAULT, buf);
    }
    free(buf);
    if (mspace >= 0)
        H5Sclose(mspace);
    drop_kind(&k);
    H5Tclose(ft);
    H5Sclose(space);
    H5Dclose(d);
    if (err)
        return fail(L, "%s: dataset %s %s", file_name(L), path, err);
    return 1;
}

static const luaL_Reg file_methods[] = {
    { "members", f_members }, { "kind", f_kind },   { "exists", f_exists },
    { "info", f_info },       { "attrs", f_attrs }, { "attr", f_attr },
    { "read", f_read },       { "close", f_close }, { "stat", f_stat },
    { NULL, NULL },
};

static const luaL_Reg funcs[] = {
    { "open", l_open },
    { "is_hdf5", l_is_hdf5 },
    { NULL, NULL },
};

int luaopen_rasrun_hdf(lua_State *L)
{
    /* Failures are reported as nil, message; never print HDF5's error stack. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (luaL_newmetatable(L, FILE_MT)) {
        luaL_newlib(L, file_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, f_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, f_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, f_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
