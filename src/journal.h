/* The run journal: append-only, one JSON object per line, fsync'd. Writes go
 * out at once (a killed controller loses nothing written); fsync is batched:
 * journal_sync does it now, journal_sync_async on a helper thread at most
 * every 100 ms (group commit: the scheduler's loop never waits for the disk;
 * an OS crash loses at most that much, which a resume simply redoes). */
#ifndef RASRUN_JOURNAL_H
#define RASRUN_JOURNAL_H

#include <cJSON.h>
#include <stddef.h>

typedef struct journal journal;

journal *journal_open(const char *path, char *err, size_t errlen);
/* Appends obj as one line, adding "t" (epoch seconds) when absent. Takes
 * ownership of obj. Returns 0 or -1 (errno set). */
int journal_write(journal *j, cJSON *obj);
/* Appends a record already made JSON text (an object of len bytes), adding
 * "t" now when add_t. Returns 0 or -1 (errno set). */
int journal_write_text(journal *j, const char *obj, size_t len, int add_t);
/* Adds a number to a record: whole numbers in full, others to the
 * microsecond (NaN and infinities as null). */
void journal_add_number(cJSON *obj, const char *key, double v);
int journal_sync(journal *j);
void journal_sync_async(journal *j);
void journal_close(journal *j);
const char *journal_path(const journal *j);

#define JOURNAL_MT "rasrun.journal"
/* The journal inside a rasrun.journal userdata (NULL when closed). */
struct lua_State;
journal *journal_check(struct lua_State *L, int idx);

#endif
