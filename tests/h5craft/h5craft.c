/* h5craft: writes HDF5 files that real HEC-RAS rarely or never writes, for
 * the tests of rasrun.hdf and the checks (real files are in tests/data).
 *
 *   h5craft window FILE TEXT    a good unsteady result whose Run Time Window is TEXT
 *   h5craft utf8 FILE           the same, its Solution a variable-length UTF-8 string
 *   h5craft opaque FILE         the same, its Solution an opaque value
 *   h5craft nosolution FILE     the same without a Solution, with an attribute
 *                               "Empty" that has no value (a null dataspace)
 *   h5craft nested FILE DEPTH   a dataset /deep of compounds nested DEPTH levels
 *   h5craft nan FILE            a 2D area whose maximum water surface is NaN
 *   h5craft hold FILE SECONDS   opens FILE for writing (HDF5 locks it), prints
 *                               "holding" and waits */
#include "../fake-ras/h5out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUMMARY "/Results/Unsteady/Summary"

static hid_t result_file(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "h5craft: cannot create %s\n", path);
        exit(2);
    }
    h5_attr_str(f, "File Type", "HEC-RAS Results");
    h5_attr_str(f, "File Version", "HEC-RAS 6.6 September 2024");
    hid_t v = h5_group(f, SUMMARY "/Volume Accounting");
    h5_attr_f64(v, "Error Percent", 0.001);
    H5Gclose(v);
    return f;
}

enum solution { PLAIN, UTF8, OPAQUE, NONE };

static void summary(hid_t f, const char *window, enum solution how)
{
    hid_t g = h5_group(f, SUMMARY);
    h5_attr_str(g, "Run Time Window", window);
    if (how == PLAIN) {
        h5_attr_str(g, "Solution", "Unsteady Finished Successfully");
    } else if (how == OPAQUE) {
        hid_t t = H5Tcreate(H5T_OPAQUE, 4), sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(g, "Solution", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, "RAS!");
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
    } else if (how == NONE) {
        hid_t sp = H5Screate(H5S_NULL);
        hid_t a = H5Acreate2(g, "Empty", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Aclose(a);
        H5Sclose(sp);
    } else if (how == UTF8) {
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        const char *v = "Unsteady Finished Successfully";
        hid_t a = H5Acreate2(g, "Solution", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, &v);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
    }
    H5Gclose(g);
}

static void nested(hid_t f, int depth)
{
    hid_t t = H5Tcopy(H5T_NATIVE_INT);
    for (int i = 0; i < depth; i++) {
        hid_t c = H5Tcreate(H5T_COMPOUND, H5Tget_size(t));
        H5Tinsert(c, "x", 0, t);
        H5Tclose(t);
        t = c;
    }
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    int data[2] = { 1, 2 };
    hid_t d = H5Dcreate2(f, "/deep", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: h5craft window|utf8|nested|nan|hold FILE [ARG]\n");
        return 2;
    }
    const char *what = argv[1], *path = argv[2];
    if (!strcmp(what, "hold")) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        if (f < 0)
            return 1;
        printf("holding\n");
        fflush(stdout);
        sleep(argc > 3 ? (unsigned)atoi(argv[3]) : 5);
        H5Fclose(f);
        return 0;
    }
    hid_t f = result_file(path);
    const char *window = "17MAR2026 15:26:14 to 17MAR2026 15:26:24";
    if (!strcmp(what, "window") && argc > 3) {
        summary(f, argv[3], PLAIN);
    } else if (!strcmp(what, "utf8") || !strcmp(what, "opaque") || !strcmp(what, "nosolution")) {
        summary(f, window, what[0] == 'u' ? UTF8 : what[0] == 'o' ? OPAQUE : NONE);
    } else if (!strcmp(what, "nested") && argc > 3) {
        nested(f, atoi(argv[3]));
    } else if (!strcmp(what, "nan")) {
        summary(f, window, PLAIN);
        float maxima[6] = { NAN, NAN, NAN, 0, 0, 0 };
        h5_dataset_f32(f, "/Results/Unsteady/Output/Output Blocks/Base Output/Summary Output/"
                          "2D Flow Areas/A/Maximum Water Surface", 2, 3, maxima);
    } else {
        fprintf(stderr, "h5craft: unknown %s\n", what);
        return 2;
    }
    H5Fclose(f);
    return 0;
}
