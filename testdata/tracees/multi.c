// One static tracee with several behaviours, chosen by argv[1].
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *const batch_argv[] = {"batch", "5", NULL};
static char *const no_env[] = {NULL};

static void *thread_exec(void *arg) {
    (void)arg;
    execve("/bin/batch", batch_argv, no_env);
    _exit(99);
}

static volatile sig_atomic_t got_usr1, got_rt;
static void on_usr1(int s) { (void)s; got_usr1 = 1; }
static void on_rt(int s) { (void)s; got_rt = 1; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "thread-exec")) {
        pthread_t t;
        pthread_create(&t, NULL, thread_exec, NULL);
        pause();
    } else if (!strcmp(mode, "vfork")) {
        pid_t p = vfork();
        if (p == 0) { execve("/bin/batch", batch_argv, no_env); _exit(99); }
        int st = 0;
        waitpid(p, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) + 10 : 1;
    } else if (!strcmp(mode, "daemon")) {
        // double fork, setsid, the grandchild renames itself with a marker and sleeps
        if (fork() == 0) {
            setsid();
            if (fork() == 0) {
                char *const a[] = {"multi", "sleeper", argv[2], NULL};
                execve("/bin/multi", a, no_env);
                _exit(1);
            }
            _exit(0);
        }
        usleep(200000);
        return 0;
    } else if (!strcmp(mode, "sleeper")) {
        open("/data/daemon-was-here", O_RDONLY);
        for (;;) pause();
    } else if (!strcmp(mode, "connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        printf("connect=%d errno=%d\n", r, r ? errno : 0);
        return r == 0 ? 1 : 0;
    } else if (!strcmp(mode, "write")) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { write(fd, "pwned", 5); close(fd); }
        printf("fd=%d\n", fd);
        return 0;
    } else if (!strcmp(mode, "forkbomb")) {
        for (;;) fork();
    } else if (!strcmp(mode, "server")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        usleep(300000); // not ready at once: the prober must wait
        if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) { perror("listen"); return 2; }
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c < 0) continue;
            char buf[1024];
            ssize_t n = read(c, buf, sizeof buf - 1);
            if (n > 0) {
                buf[n] = 0;
                int fd = open("/data/abs.txt", O_RDONLY); // served file
                if (fd >= 0) close(fd);
                const char *ok = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
                const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
                const char *r = strncmp(buf, "GET / ", 6) == 0 || strncmp(buf, "GET /health ", 12) == 0 ? ok : nf;
                write(c, r, strlen(r));
            }
            close(c);
        }
    } else if (!strcmp(mode, "uring")) {
        char params[120] = {0};
        long r = syscall(SYS_io_uring_setup, 4, params);
        printf("io_uring_setup=%ld errno=%d\n", r, r < 0 ? errno : 0);
        return r < 0 && errno == ENOSYS ? 0 : 1;
    } else if (!strcmp(mode, "ids")) {
        printf("uid=%d gid=%d\n", (int)getuid(), (int)getgid());
        int r = setuid(getuid()); // must not fail under any id mode
        printf("setuid=%d\n", r);
        return 0;
    } else if (!strcmp(mode, "unix")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un { sa_family_t f; char p[108]; } a = {AF_UNIX, "/run/app.sock"};
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        return r == 0;
    } else if (!strcmp(mode, "signals")) {
        // signal-delivery-stops must be re-injected, real-time signals included
        signal(SIGUSR1, on_usr1);
        signal(SIGRTMIN + 1, on_rt);
        raise(SIGUSR1);
        raise(SIGRTMIN + 1);
        printf("usr1=%d rt=%d\n", (int)got_usr1, (int)got_rt);
        return got_usr1 && got_rt ? 0 : 1;
    } else if (!strcmp(mode, "stop")) {
        // group-stop of a child, continued by its parent
        pid_t p = fork();
        if (p == 0) {
            raise(SIGSTOP);
            open("/data/after-stop", O_RDONLY);
            _exit(6);
        }
        int st = 0;
        waitpid(p, &st, WUNTRACED);
        if (!WIFSTOPPED(st)) return 1;
        kill(p, SIGCONT);
        waitpid(p, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
