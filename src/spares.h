/* Spares: files that a commit replaced in a project, kept for the next
 * copies into work folders to reuse (fs_copy_reusing) instead of making new
 * files. ext4 without a journal slows down when files are made among
 * recently deleted ones, and a run replaces one result per plan.
 *
 * A spare is emptied on a helper thread before it is handed out: freeing a
 * file's blocks can wait for the disk (a file system mounted with discard,
 * without a journal, discards them synchronously), and the scheduler's loop
 * must not wait for that. A file that some process still has open (someone
 * reading the old result) is not emptied but let go: the reader keeps it.
 * Replaced files beyond the few kept ready are removed by that thread too. */
#ifndef RASRUN_SPARES_H
#define RASRUN_SPARES_H

typedef struct spares spares;

/* Spares live in dir (made when the first is kept; anything already there,
 * left by a run that was killed, is removed). NULL when out of memory. */
spares *spares_new(const char *dir);

/* After a replace: old, the replaced file (now under a name of the
 * caller's, beside the new one), is moved into the spares folder to be
 * emptied, or removed (too many waiting for the helper, old shared with
 * another name or not a regular file, or moves not possible here). A
 * symbolic link is not followed: what it points to is someone else's file,
 * never emptied for reuse. Either way old is gone. */
void spares_adopt(spares *sp, const char *old);

/* An emptied spare (the caller owns the path and the file), or NULL. */
char *spares_take(spares *sp);

/* Waits for the helper, removes the spares folder, frees. */
void spares_free(spares *sp);

#endif
