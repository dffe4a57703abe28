/* Syscall-heavy tracing workload: N rounds of stat(PATH) + open(PATH) + close.
 * 2N path-bearing syscalls (newfstatat/openat), N untraced closes. Built -static by bench.sh. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: syscalls N PATH\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    const char *path = argv[2];
    struct stat st;
    for (long i = 0; i < n; i++) {
        if (stat(path, &st) != 0)
            return 1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 1;
        close(fd);
    }
    return 0;
}
