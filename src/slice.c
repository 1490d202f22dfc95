/* The loop thread's scheduler slice (see slice.h). */
#include "slice.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

/* The kernel's struct sched_attr (include/uapi/linux/sched/types.h), which
 * glibc does not declare. */
struct kernel_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

#define FLAG_RESET_ON_FORK 0x01
#define SHORT_SLICE_NS 100000 /* the shortest the kernel takes: 0.1 ms */

static int get_attr(struct kernel_sched_attr *a)
{
    memset(a, 0, sizeof *a);
    return (int)syscall(SYS_sched_getattr, 0, a, sizeof *a, 0);
}

static int set_attr(struct kernel_sched_attr *a)
{
    a->size = sizeof *a;
    return (int)syscall(SYS_sched_setattr, 0, a, 0);
}

void slice_shorten(slice_saved *saved)
{
    struct kernel_sched_attr a;
    saved->changed = 0;
    /* reset-on-fork would also give the engines of a loop started at a
     * raised priority (nice < 0) the normal one: left as it is then */
    if (get_attr(&a) != 0 || a.sched_policy != SCHED_OTHER || a.sched_nice < 0)
        return;
    saved->runtime = a.sched_runtime;
    saved->flags = a.sched_flags;
    a.sched_runtime = SHORT_SLICE_NS;
    a.sched_flags |= FLAG_RESET_ON_FORK;
    saved->changed = set_attr(&a) == 0;
}

void slice_restore(const slice_saved *saved)
{
    struct kernel_sched_attr a;
    if (!saved->changed || get_attr(&a) != 0 || a.sched_policy != SCHED_OTHER)
        return;
    a.sched_runtime = saved->runtime;
    a.sched_flags = saved->flags; /* the nice value is the thread's own, as read */
    set_attr(&a);
}
