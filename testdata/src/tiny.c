/* The `tiny` test image: one static x86_64 binary without libc that prints
 * "hello from tiny" and exits 0. Built with -nostdlib -static by
 * testdata/build-images.sh so the whole image stays a few KiB. */
static const char MSG[] = "hello from tiny\n";

__attribute__((noreturn)) void _start(void) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(1L), "D"(1L), "S"(MSG), "d"(sizeof MSG - 1)
                     : "rcx", "r11", "memory");
    (void)ret;
    __asm__ volatile("syscall" : : "a"(60L), "D"(0L) : "rcx", "r11", "memory");
    __builtin_unreachable();
}
