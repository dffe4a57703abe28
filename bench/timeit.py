#!/usr/bin/env python3
"""Run a command; print `WALL_S CPU_S MAXRSS_KIB EXIT` for it and its waited-for descendants.

    bench/timeit.py CMD [ARG...]      (stdout/stderr of CMD pass through)

CPU is user + system from wait4's rusage (includes grandchildren the child waited for, e.g. both
sides of a `bash -c 'a | b'` pipeline); peak RSS is the largest single process of that tree.
The figures go to file descriptor 3 when it is open, else to stderr.
"""
import os
import sys
import time


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as e:
            print(f"timeit: cannot run `{sys.argv[1]}`: {e}", file=sys.stderr)
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    line = f"{wall:.4f} {ru.ru_utime + ru.ru_stime:.4f} {ru.ru_maxrss} {code}\n"
    try:
        os.write(3, line.encode())
    except OSError:
        sys.stderr.write(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
