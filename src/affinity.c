/* Moving the loop thread to a given core for a while (see affinity.h). */
#include "affinity.h"

#include <sched.h>

static _Thread_local int pinned, pinned_cpu;
static _Thread_local cpu_set_t saved;

int affinity_move_to(int cpu)
{
    if (pinned || cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof saved, &saved) != 0 ||
        !CPU_ISSET(cpu, &saved) || CPU_COUNT(&saved) < 2)
        return 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned = sched_setaffinity(0, sizeof one, &one) == 0;
    pinned_cpu = cpu;
    return pinned;
}

int affinity_pinned_cpu(void)
{
    return pinned ? pinned_cpu : -1;
}

int affinity_unpinned(cpu_set_t *set)
{
    if (pinned) {
        *set = saved;
        return 0;
    }
    return sched_getaffinity(0, sizeof *set, set) == 0 ? 0 : -1;
}

void affinity_release(pid_t child)
{
    if (!pinned)
        return;
    if (child > 0)
        sched_setaffinity(child, sizeof saved, &saved);
    sched_setaffinity(0, sizeof saved, &saved);
    pinned = 0;
}
