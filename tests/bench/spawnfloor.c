/* The floor for dispatch benchmarks: reads "DIR ARG..." lines from stdin and
 * runs PROGRAM ARG... in DIR, SLOTS at a time, with posix_spawn and waitpid
 * and nothing else (no staging, no checks, no journal).
 *   spawnfloor SLOTS PROGRAM < jobs */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spawnfloor SLOTS PROGRAM < jobs\n");
        return 2;
    }
    int slots = atoi(argv[1]), running = 0, failed = 0;
    char line[8192];
    for (;;) {
        int have = fgets(line, sizeof line, stdin) != NULL;
        while (running >= slots || (!have && running > 0)) {
            int st;
            if (wait(&st) > 0) {
                running--;
                failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            }
        }
        if (!have)
            break;
        line[strcspn(line, "\n")] = 0;
        char *args[16] = { argv[2] };
        int n = 1;
        char *dir = strtok(line, " ");
        for (char *t; n < 15 && (t = strtok(NULL, " "));)
            args[n++] = t;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addchdir_np(&fa, dir);
        pid_t pid;
        if (posix_spawn(&pid, argv[2], &fa, NULL, args, environ) == 0)
            running++;
        else
            failed++;
        posix_spawn_file_actions_destroy(&fa);
    }
    return failed ? 1 : 0;
}
