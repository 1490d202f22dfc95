/* A ustar archive of files, produced on demand (a pull stream), for sending
 * many small files down one SSH channel to a remote `tar -x` instead of
 * paying SFTP round trips per file. Modes and modification times are kept;
 * owners are not (the remote user owns what it extracts). */
#ifndef RASRUN_TARSTREAM_H
#define RASRUN_TARSTREAM_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tar_stream tar_stream;

/* The archive of root/rel[i] stored as rel[i] (the strings are borrowed and
 * must outlive the stream). */
tar_stream *tar_new(const char *root, char *const *rel, int n);

/* Can path be named in a ustar header (100 bytes, or a 155-byte prefix and
 * a 100-byte name split at a '/')? */
int tar_fits(const char *path);

/* Fills buf with the next bytes of the archive: the count, 0 at its end, or
 * -1 on an error (tar_error says which file and why). */
ssize_t tar_read(tar_stream *t, char *buf, size_t n);

const char *tar_error(const tar_stream *t);

/* File content bytes produced so far (headers and padding not counted). */
unsigned long long tar_content_bytes(const tar_stream *t);

void tar_free(tar_stream *t);

#endif
