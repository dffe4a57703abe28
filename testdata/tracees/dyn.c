// Dynamic tracee: getpwnam through NSS, then dlopen of a library.
#include <dlfcn.h>
#include <pwd.h>
#include <stdio.h>
int main(int argc, char **argv) {
    struct passwd *pw = getpwnam(argc > 1 ? argv[1] : "www-data");
    printf("uid=%d\n", pw ? (int)pw->pw_uid : -1);
    void *h = dlopen("libm.so.6", RTLD_NOW);
    printf("dlopen=%s\n", h ? "ok" : dlerror());
    return pw && h ? 0 : 1;
}
