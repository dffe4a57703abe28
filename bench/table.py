#!/usr/bin/env python3
"""Print bench.sh's table from its records (IMAGE ROW WALL_S CPU_S RSS_KIB, one run a line).

    bench/table.py RECORDS.tsv SIZES.tsv MACHINE.txt TRACE_N

Each figure is the minimum over the repeated runs of that row (taken per column).
"""
import collections
import sys


def load(path):
    rows = collections.OrderedDict()
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            img, row, wall, cpu, rss = parts
            cur = rows.setdefault((img, row), [float("inf")] * 3 + [0])
            cur[0] = min(cur[0], float(wall))
            cur[1] = min(cur[1], float(cpu))
            cur[2] = min(cur[2], int(rss))
            cur[3] += 1
    return rows


def fmt_s(v):
    return f"{v:8.3f}" if v != float("inf") else "       -"


def fmt_mb(kib):
    return f"{kib / 1024:7.1f}" if kib != float("inf") else "      -"


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "     -"
    return f"{a / b:5.2f}x"


def main():
    recs_path, sizes_path, machine_path, trace_n = sys.argv[1:5]
    rows = load(recs_path)
    images = list(dict.fromkeys(img for img, _ in rows))
    print(open(machine_path).read().rstrip())
    print("# wall/CPU in seconds, peak RSS in MB (MiB); min over repeated runs; CPU includes children")
    print()
    hdr = f"{'image':10} {'step':28} {'wall':>8} {'cpu':>8} {'rss':>7}   {'baseline':26} {'wall':>8} {'cpu':>8}  {'ratio':>6}"
    print(hdr)
    print("-" * len(hdr))
    pairs = {
        "ours:read+flatten+stage": "base:unpack-shm",
        "disk:read+flatten+stage": "base:unpack-disk",
        "norun:read+flatten+stage": "base:unpack-shm",
        "flatten:total": "base:unpack+tar-gzip",
        "ours:write": "base:tar-gzip",
    }
    names = {
        "base:unpack-shm": "zcat|tar -x (/dev/shm)",
        "base:unpack-disk": "zcat|tar -x (disk)",
        "base:tar-gzip": "tar -c|gzip -6 (kept)",
        "base:unpack+tar-gzip": "zcat|tar -x + tar -c|gzip",
    }
    # flatten's baseline: unpack + pack of the whole tree.
    for img in list(dict.fromkeys(i for i, _ in rows)):
        u, p = rows.get((img, "base:unpack-shm")), rows.get((img, "base:tar-gzip"))
        if u and p and (img, "flatten:total") in rows:
            rows[(img, "base:unpack+tar-gzip")] = [u[0] + p[0], u[1] + p[1], max(u[2], p[2]), 1]
    for img in images:
        if img == "trace":
            continue
        for (i, row), v in rows.items():
            if i != img or row.startswith("base:"):
                continue
            base = pairs.get(row)
            b = rows.get((img, base)) if base else None
            bname = names.get(base, "") if b else ""
            bw = fmt_s(b[0]) if b else " " * 8
            bc = fmt_s(b[1]) if b else " " * 8
            rt = ratio(v[0], b[0]) if b else ""
            print(f"{img:10} {row:28} {fmt_s(v[0])} {fmt_s(v[1])} {fmt_mb(v[2])}   {bname:26} {bw} {bc}  {rt:>6}")
        print()

    # Scaling of generated images.
    sizes = []
    try:
        with open(sizes_path) as f:
            sizes = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except FileNotFoundError:
        pass
    if sizes:
        print("scaling (generated images): --no-run end to end, and flatten (= unpack + gzip of everything)")
        print("CPU time is the load-independent figure on a shared machine; wall is min over runs")
        h = (f"{'image':10} {'MiB':>5} {'files':>7} {'arch MB':>8} {'norun s':>8} {'cpu s':>7} {'cpu ms/MiB':>10}"
             f" {'us cpu/file':>11} {'flatten s':>9} {'cpu s':>7} {'cpu ms/MiB':>10} {'peak RSS MB':>11}")
        print(h)
        print("-" * len(h))
        for name, mb, files, arch in sizes:
            n = rows.get((name, "norun:total"))
            fl = rows.get((name, "flatten:total"))
            if not n:
                continue
            mb, files = int(mb), int(files)
            rss = max(n[2], fl[2] if fl else 0)
            fw, fc = (fl[0], fl[1]) if fl else (float("nan"), float("nan"))
            print(
                f"{name:10} {mb:5} {files:7} {int(arch) / 1e6:8.1f} {n[0]:8.2f} {n[1]:7.2f} {n[1] / mb * 1e3:10.2f}"
                f" {n[1] / files * 1e6:11.1f} {fw:9.2f} {fc:7.2f} {fc / mb * 1e3:10.2f} {rss / 1024:11.1f}"
            )
        print()

    # Tracing.
    calls = 2 * int(trace_n)
    print(f"tracing: net = run(N) - run(0), N = {trace_n} rounds; oci-slim figures are its report's trace phase")
    print(f"  path:  each round stat + open + close: {calls} path syscalls (all stopped for)")
    print(f"  mixed: 1 round in 100 as above, the others lseek + read: ~{calls} syscalls, 1% path")
    h = f"{'workload':8} {'runner':32} {'run(N) s':>9} {'run(0) s':>9} {'net s':>8} {'vs native':>9} {'strace/this':>11}"
    print(h)
    print("-" * len(h))
    for w in ("path", "mixed"):
        def net(row_n, row_0):
            a, b = rows.get(("trace", row_n)), rows.get(("trace", row_0))
            if not a or not b:
                return None
            return max(a[0] - b[0], 1e-6), a[0], b[0]

        nat = net(f"native:{w}:{trace_n}", f"native:{w}:0")
        st = net(f"strace:{w}:{trace_n}", f"strace:{w}:0")
        for label, x in (
            ("native", nat),
            ("oci-slim (trace phase)", net(f"ours:{w}:{trace_n}:trace", f"ours:{w}:0:trace")),
            ("strace -f -e trace=%file", st),
            ("strace -f --seccomp-bpf (ref.)", net(f"strace-seccomp:{w}:{trace_n}", f"strace-seccomp:{w}:0")),
        ):
            if x is None:
                print(f"{w:8} {label:32} {'-':>9}")
                continue
            print(
                f"{w:8} {label:32} {x[1]:9.3f} {x[2]:9.3f} {x[0]:8.3f} {ratio(x[0], nat[0] if nat else None):>9}"
                f" {ratio(st[0], x[0]) if st else '-':>11}"
            )


if __name__ == "__main__":
    main()
