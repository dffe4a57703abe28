/* Syscall workload for the tracing benchmark (built -static by bench.sh).
 *
 *   syscalls N PATH [EVERY]
 *
 * N rounds. Every EVERY-th round (default 1: all of them) does stat(PATH) + open(PATH) + close:
 * two path-bearing syscalls the tracer stops for, and one it lets through. The other rounds do
 * fstat + pread on an already open descriptor: two syscalls the seccomp filter lets through
 * without a stop. EVERY=1: 2N traced syscalls; EVERY=100: about 2N syscalls, 1% traced. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: syscalls N PATH [EVERY]\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    const char *path = argv[2];
    long every = argc == 4 ? strtol(argv[3], NULL, 10) : 1;
    if (every < 1)
        every = 1;
    struct stat st;
    char c;
    int fd0 = open(path, O_RDONLY | O_CLOEXEC);
    if (fd0 < 0)
        return 1;
    for (long i = 0; i < n; i++) {
        if (i % every == 0) {
            if (stat(path, &st) != 0)
                return 1;
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return 1;
            close(fd);
        } else {
            if (lseek(fd0, 0, SEEK_SET) != 0 || read(fd0, &c, 1) != 1)
                return 1;
        }
    }
    return 0;
}
