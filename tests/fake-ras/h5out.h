/* HDF5 writing helpers for the simulated engine: groups made with their
 * parents, attributes as HEC-RAS writes them (fixed-length, space-padded
 * strings; scalar numbers). */
#ifndef FAKE_RAS_H5OUT_H
#define FAKE_RAS_H5OUT_H

#include <hdf5.h>

hid_t h5_group(hid_t file, const char *path);            /* open or create (with parents) */
void h5_attr_str(hid_t loc, const char *name, const char *value);
void h5_attr_f64(hid_t loc, const char *name, double value);
void h5_attr_f32(hid_t loc, const char *name, float value);
void h5_attr_i32(hid_t loc, const char *name, int value);
/* One fixed-length string in a 1-element dataset (Compute Messages). */
void h5_dataset_text(hid_t file, const char *path, const char *text);
/* A float32 (rows x cols) dataset. */
void h5_dataset_f32(hid_t file, const char *path, int rows, int cols, const float *data);
/* Reads a string attribute (trimmed) into buf; returns 0 when absent. */
int h5_read_attr_str(hid_t file, const char *path, const char *name, char *buf, size_t n);

#endif
