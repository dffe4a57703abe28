// Batch job: reads a file by absolute path, a relative one after chdir, one via a dirfd,
// prints to stdout and stderr, exits with the code given as argv[1].
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[64] = {0};
    int fd = open("/data/abs.txt", O_RDONLY);
    if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); }
    printf("abs=%s", buf);
    if (chdir("/data") == 0) {
        fd = open("rel.txt", O_RDONLY);
        if (fd >= 0) close(fd);
    }
    int dir = open("/data/sub", O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
        fd = openat(dir, "at.txt", O_RDONLY);
        if (fd >= 0) close(fd);
        if (fchdir(dir) == 0) { fd = open("fchdir.txt", O_RDONLY); if (fd >= 0) close(fd); }
    }
    fd = open("/data/new.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { write(fd, "x", 1); close(fd); }
    fprintf(stderr, "to-stderr\n");
    fflush(stdout);
    return argc > 1 ? atoi(argv[1]) : 0;
}
