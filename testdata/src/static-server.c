/* Static HTTP test server for the `static` test image.
 *
 * Listens on 0.0.0.0:PORT (argv[1], default 8080) and answers every request with
 * `HTTP/1.0 200 OK` and the body `static ok`. Built with `gcc -static -O2` by
 * testdata/build-images.sh; the image holds no libc, only this binary. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char RESPONSE[] =
    "HTTP/1.0 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 10\r\n"
    "Connection: close\r\n"
    "\r\n"
    "static ok\n";

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv) {
    int port = 8080;
    if (argc > 1) {
        char *end = NULL;
        long p = strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || p <= 0 || p > 65535) {
            fprintf(stderr, "static-server: bad port `%s`\n", argv[1]);
            return 2;
        }
        port = (int)p;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("static-server: socket");
        return 1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("static-server: bind");
        return 1;
    }
    if (listen(fd, 64) < 0) {
        perror("static-server: listen");
        return 1;
    }
    fprintf(stderr, "static-server: listening on 0.0.0.0:%d\n", port);

    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            perror("static-server: accept");
            return 1;
        }
        /* Read the request head (best effort, bounded), then answer. */
        char buf[4096];
        size_t have = 0;
        while (have < sizeof buf - 1) {
            ssize_t n = read(c, buf + have, sizeof buf - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            buf[have] = '\0';
            if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
                break;
        }
        size_t off = 0;
        while (off < sizeof RESPONSE - 1) {
            ssize_t n = write(c, RESPONSE + off, sizeof RESPONSE - 1 - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(c);
    }
}
