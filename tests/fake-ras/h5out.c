/* HDF5 writing helpers for the simulated engine. */
#include "h5out.h"

#include <stdlib.h>
#include <string.h>

hid_t h5_group(hid_t file, const char *path)
{
    if (H5Lexists(file, path, H5P_DEFAULT) > 0)
        return H5Gopen2(file, path, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

static void replace_attr(hid_t loc, const char *name)
{
    if (H5Aexists(loc, name) > 0)
        H5Adelete(loc, name);
}

static hid_t padded_string_type(size_t len)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len ? len : 1);
    H5Tset_strpad(t, H5T_STR_SPACEPAD);
    return t;
}

void h5_attr_str(hid_t loc, const char *name, const char *value)
{
    replace_attr(loc, name);
    size_t len = strlen(value);
    hid_t t = padded_string_type(len);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    char *buf = calloc(1, len + 2);
    memcpy(buf, value, len);
    if (!len)
        buf[0] = ' ';
    H5Awrite(a, t, buf);
    free(buf);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

static void attr_num(hid_t loc, const char *name, hid_t type, const void *v)
{
    replace_attr(loc, name);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, v);
    H5Aclose(a);
    H5Sclose(s);
}

void h5_attr_f64(hid_t loc, const char *name, double v) { attr_num(loc, name, H5T_NATIVE_DOUBLE, &v); }
void h5_attr_f32(hid_t loc, const char *name, float v) { attr_num(loc, name, H5T_NATIVE_FLOAT, &v); }
void h5_attr_i32(hid_t loc, const char *name, int v) { attr_num(loc, name, H5T_NATIVE_INT, &v); }

static void drop(hid_t file, const char *path)
{
    if (H5Lexists(file, path, H5P_DEFAULT) > 0)
        H5Ldelete(file, path, H5P_DEFAULT);
}

void h5_dataset_text(hid_t file, const char *path, const char *text)
{
    drop(file, path);
    size_t len = strlen(text);
    hid_t t = padded_string_type(len);
    hsize_t one = 1;
    hid_t s = H5Screate_simple(1, &one, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(file, path, t, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text);
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(s);
    H5Tclose(t);
}

void h5_dataset_f32(hid_t file, const char *path, int rows, int cols, const float *data)
{
    drop(file, path);
    hsize_t dims[2] = { (hsize_t)rows, (hsize_t)cols };
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(file, path, H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(s);
}

int h5_read_attr_str(hid_t file, const char *path, const char *name, char *buf, size_t n)
{
    buf[0] = 0;
    if (H5Lexists(file, path, H5P_DEFAULT) <= 0 && strcmp(path, "/") != 0)
        return 0;
    hid_t o = H5Oopen(file, path, H5P_DEFAULT);
    if (o < 0)
        return 0;
    int ok = 0;
    if (H5Aexists(o, name) > 0) {
        hid_t a = H5Aopen(o, name, H5P_DEFAULT);
        hid_t ft = H5Aget_type(a);
        size_t sz = H5Tget_size(ft);
        if (H5Tget_class(ft) == H5T_STRING && sz < n && H5Tis_variable_str(ft) <= 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, sz + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            char *tmp = calloc(1, sz + 2);
            if (H5Aread(a, mt, tmp) >= 0) {
                size_t len = strlen(tmp);
                while (len && tmp[len - 1] == ' ')
                    len--;
                memcpy(buf, tmp, len);
                buf[len] = 0;
                ok = 1;
            }
            free(tmp);
            H5Tclose(mt);
        }
        H5Tclose(ft);
        H5Aclose(a);
    }
    H5Oclose(o);
    return ok;
}
