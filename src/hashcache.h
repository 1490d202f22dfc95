/* SHA-256 of local files, remembered per (device, inode, size, mtime) so an
 * unchanged file is hashed once per process. */
#ifndef RASRUN_HASHCACHE_H
#define RASRUN_HASHCACHE_H

#include <stddef.h>

typedef struct hashcache hashcache;

hashcache *hashcache_new(void);
void hashcache_free(hashcache *hc);
/* Fills hex (65 bytes) and the file's size; 0, or -1 with err. */
int hashcache_file(hashcache *hc, const char *path, char hex[65], unsigned long long *size,
                   char *err, size_t n);

/* A set of strings (the blob hashes a host already has). */
typedef struct strset strset;
strset *strset_new(void);
void strset_free(strset *s);
int strset_has(const strset *s, const char *key);
void strset_add(strset *s, const char *key);

#endif
