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
        "flatten:total": "base:unpack-shm",
        "ours:write": "base:tar-gzip",
    }
    names = {
        "base:unpack-shm": "zcat|tar -x (/dev/shm)",
        "base:unpack-disk": "zcat|tar -x (disk)",
        "base:tar-gzip": "tar -c|gzip -6 (kept)",
    }
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
        print("scaling (generated images; --no-run end to end and flatten)")
        h = f"{'image':10} {'MiB':>6} {'files':>7} {'archive MB':>10} {'norun s':>8} {'MB/s':>7} {'us/file':>8} {'flatten s':>9} {'peak RSS MB':>11}"
        print(h)
        print("-" * len(h))
        for name, mb, files, arch in sizes:
            n = rows.get((name, "norun:total"))
            fl = rows.get((name, "flatten:total"))
            if not n:
                continue
            rss = max(n[2], fl[2] if fl else 0)
            print(
                f"{name:10} {int(mb):6} {int(files):7} {int(arch) / 1e6:10.1f} {n[0]:8.2f} {int(mb) / n[0]:7.1f}"
                f" {n[0] / int(files) * 1e6:8.1f} {fl[0] if fl else float('nan'):9.2f} {rss / 1024:11.1f}"
            )
        print()

    # Tracing.
    def net(prefix):
        a, b = rows.get(("trace", f"{prefix}:{trace_n}")), rows.get(("trace", f"{prefix}:0"))
        if not a or not b:
            return None, None, None
        return a[0] - b[0], a[0], b[0]

    nat, nat_n, nat_0 = net("native")
    st, st_n, st_0 = net("strace")
    sts, sts_n, sts_0 = net("strace-seccomp")
    ours = ours_n = ours_0 = None
    a = rows.get(("trace", f"ours{trace_n}:trace"))
    b = rows.get(("trace", "ours0:trace"))
    if a and b:
        ours, ours_n, ours_0 = a[0] - b[0], a[0], b[0]
    calls = 2 * int(trace_n)
    print(f"tracing: {trace_n} x (stat + open + close) = {calls} path syscalls; net = run(N) - run(0)")
    h = f"{'runner':34} {'run(N) s':>9} {'run(0) s':>9} {'net s':>8} {'vs native':>9} {'strace/this':>11}"
    print(h)
    print("-" * len(h))
    for label, (x, xn, x0) in (
        ("native", (nat, nat_n, nat_0)),
        ("oci-slim (report trace phase)", (ours, ours_n, ours_0)),
        ("strace -f -e trace=%file", (st, st_n, st_0)),
        ("strace -f --seccomp-bpf (ref.)", (sts, sts_n, sts_0)),
    ):
        if x is None:
            print(f"{label:34} {'-':>9}")
            continue
        print(
            f"{label:34} {xn:9.3f} {x0:9.3f} {x:8.3f} {ratio(x, nat):>9} {ratio(st, x) if st else '-':>11}"
        )


if __name__ == "__main__":
    main()
