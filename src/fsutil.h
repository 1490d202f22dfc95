/* File-system helpers shared by the fs module and the workers. Every function
 * returns 0 on success, or -1 with a message naming the path in err. */
#ifndef RASRUN_FSUTIL_H
#define RASRUN_FSUTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

int fs_mkdirs(const char *path, char *err, size_t errlen);
int fs_rmtree(const char *path, char *err, size_t errlen);
/* Makes the folder (and its parents) and marks it as the top of a directory
 * hierarchy (ext4's 'T' attribute): folders made inside it are placed in
 * fresh block groups of the disk, and so are the files made in those. Where
 * the file system has no such mark, it is a plain fs_mkdirs. Measured on
 * ext4 without a journal: a file made among thousands of recently deleted
 * ones costs ~0.5 ms of CPU (the kernel skips each recently freed inode),
 * which a run's logs and work files pay once per plan without it. */
int fs_mkdirs_top(const char *path, char *err, size_t errlen);
/* fs_mkdirs, the last folder (when it is made) made under a name of its own
 * first, then renamed. Inside a top folder ext4 places a new folder by the
 * hash of its name: a fixed name (a run's "logs") got the same part of the
 * disk run after run, the part where deleting an earlier run's files had
 * just left thousands of recently freed inodes, which the kernel skips one
 * by one for every file made there (0.3-0.5 ms of CPU per file). A name of
 * its own gets a part of the disk of its own. */
int fs_mkdirs_spread(const char *path, char *err, size_t errlen);
/* Removes everything inside the folder, keeping the folder itself. */
int fs_clear(const char *path, char *err, size_t errlen);

/* Copies a regular file: a reflink where the file system can, else
 * copy_file_range. Writes dst through a temporary name in dst's folder and
 * renames it into place, so readers never see a partial file. With
 * keep_mtime, dst gets src's modification time. */
int fs_copy(const char *src, const char *dst, int keep_mtime, char *err, size_t errlen);

/* fs_copy, writing into the file reuse (renamed into place, then truncated)
 * instead of a new one when it can: no inode is allocated. reuse is gone
 * afterwards either way. NULL: a plain fs_copy. With FS_COPY_WRITABLE in
 * flags the copy is writable by its owner whatever src's mode (a work
 * folder's copy of a read-only input, which the engine writes). With
 * FS_COPY_IN_PLACE, dst is in a folder of the caller's own that nothing
 * reads meanwhile (a work folder, filled before its engine starts): the
 * copy is written under dst's own name, without the temporary name and the
 * rename, when no dst is there yet (removed again when the copy fails).
 * With FS_COPY_NO_CR, every CR byte of src is left out of the copy (a text
 * file from Windows for a program that reads LF line ends only). */
enum { FS_COPY_MTIME = 1, FS_COPY_WRITABLE = 2, FS_COPY_IN_PLACE = 4, FS_COPY_NO_CR = 8 };
int fs_copy_reusing(const char *src, const char *dst, int flags, const char *reuse, char *err,
                    size_t errlen);
/* Does the file hold a CR byte? 1, 0, or -1 (errno set) when it cannot be read. */
int fs_has_cr(const char *path);

/* Copies by the calling thread stop (errno ECANCELED) once *flag is set,
 * within 64 MB; NULL: they never do. */
void fs_copy_stop_flag(const atomic_int *flag);

/* How fs_swap_in put a file in place, and so how fs_swap_back takes it back. */
enum fs_placed { FS_PUT_NEW, FS_PUT_SWAPPED, FS_PUT_REPLACED };

/* Moves src to dst, atomically. An existing dst is exchanged with src
 * (FS_PUT_SWAPPED): the old file stays, under the name src, until the caller
 * removes it or swaps it back. Exchanging rather than renaming over also
 * spares the caller ext4's write-out of a file renamed over another
 * (auto_da_alloc). A file system without exchange gets a plain rename
 * (FS_PUT_REPLACED: the old file is gone). 0, or -1 with errno. */
int fs_swap_in(const char *src, const char *dst, enum fs_placed *how);

/* Undoes fs_swap_in: the new file goes back to src, the old one (if any was
 * kept) to dst. */
void fs_swap_back(const char *src, const char *dst, enum fs_placed how);

/* Writes data to path atomically: a temporary name, fsync (unless sync is
 * 0), rename. Without the fsync a crash can leave the old content or, on
 * some file systems, an empty file; never a mix. */
int fs_write_atomic(const char *path, const void *data, size_t len, int sync, char *err,
                    size_t errlen);

/* Asks the kernel to start reading the file's first bytes (0: all of it)
 * into the page cache and returns at once: 1 when asked, 0 when its start
 * is in the cache already, -1 when it cannot be opened. */
int fs_prefetch(const char *path, long long bytes);

/* Seconds (with nanoseconds) of the modification time; -1 when missing. */
double fs_mtime(const char *path);

/* A file that is not at path under the case its name has there (a flow
 * file names "EX1.P01.x.rst", the engine wrote "EX1.p01.x.rst"): out, the
 * first name in its folder equal to path's last part but for case, and 0;
 * -1 when there is none (out is path then). Call it when path is missing. */
int fs_any_case(const char *path, char *out, size_t n);

/* 64 random bits for a temporary name (the pid and salt should the kernel
 * have none to give). */
unsigned long long fs_random_tag(unsigned long long salt);

/* A 64-bit hash of s (FNV-1a): names made from long ones stay apart. */
unsigned long long fs_hash(const char *s);

/* name in at most max bytes (a temporary name made from it must fit a file
 * name's 255): name itself when it fits, else its start, cut between two
 * characters, then "~" and fs_hash(name) in 16 hex digits. */
void fs_fit_name(char *out, size_t n, const char *name, size_t max);

/* s, just cut short by a fixed-size buffer: a UTF-8 character the cut
 * split is taken off its end, so that the text stays valid UTF-8. Only for
 * text that was cut (Windows-1252 text ends in bytes that look alike). */
void fs_utf8_whole(char *s);

/* src copied into dst[n], cut between two UTF-8 characters when it does
 * not fit (src's own bytes say where one starts). */
void fs_text_copy(char *dst, size_t n, const char *src);

/* The longest name a temporary file made beside it takes as it is
 * (".NAME.<16 hex digits>.part", 23 bytes more). */
#define FS_TEMP_NAME_MAX (255 - 23)

#endif
