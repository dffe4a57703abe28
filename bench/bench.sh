#!/bin/bash
# Benchmark oci-slim against the physical floor, side by side in one run, and print a table.
#
#   bench/bench.sh [IMAGE_DIR]
#
# IMAGE_DIR holds NAME.oci.tar test images (default: testdata/cache, built by
# testdata/build-images.sh when missing). For each of IMAGES (nginx python postgres shell static):
#   oci-slim IN OUT --report R.json      per-phase wall / CPU / peak RSS from the report, and the
#                                        whole process (wall, CPU incl. children, peak RSS)
#   zcat|tar -x  (zstd -dc|tar -x)       of the same layer blobs into the same kind of directory
#                                        (/dev/shm, as oci-slim uses) vs read+flatten+stage;
#                                        nginx also on disk (TMPDIR on this file system)
#   tar -c | gzip -6 of the kept files   (the output layer extracted) vs write
# Generated images (bench/gen-image.py) at GEN sizes: `oci-slim flatten` and `oci-slim --no-run`
# vs the unpack baseline, for scaling and peak RSS.
# Tracing: a static C program doing N x (stat + open + close) (2N path syscalls) in a tiny
# image: oci-slim's trace phase vs the program run natively vs `strace -f -e trace=%file`; the
# N=0 run of each is subtracted (sandbox setup, process start).
#
# Every measurement is repeated RUNS times and the minimum of each figure is kept (the machine
# is shared). Env: OCI_SLIM (binary; default target/release/oci-slim, built when missing),
# RUNS (3), GEN_RUNS (1), IMAGES, GEN ("200:20000 1024:100000 2048:200000", empty to skip),
# TRACE_N (50000), DISK_DIR (disk scratch dir, default bench/cache/tmp), KEEP=1 keeps work files.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BENCH=$ROOT/bench
IMAGE_DIR=$(readlink -f "${1:-testdata/cache}")
BIN=${OCI_SLIM:-$ROOT/target/release/oci-slim}
RUNS=${RUNS:-3}
GEN_RUNS=${GEN_RUNS:-1}
IMAGES=${IMAGES:-nginx python postgres shell static}
GEN=${GEN-200:20000 1024:100000 2048:200000}
TRACE_N=${TRACE_N:-50000}
CACHE=$BENCH/cache
DISK_DIR=${DISK_DIR:-$CACHE/tmp}

die() {
    echo "bench: error: $*" >&2
    exit 1
}
log() { echo "bench: $*" >&2; }

for t in python3 gzip zstd tar gcc strace; do
    command -v "$t" >/dev/null || die "needs \`$t\` (hint: apt-get install $t)"
done
[ -d /dev/shm ] && [ -w /dev/shm ] || die "needs a writable /dev/shm"
if [ ! -x "$BIN" ]; then
    log "building $BIN"
    cargo build --release --quiet
fi
mkdir -p "$CACHE" "$DISK_DIR"

W=$(mktemp -d /dev/shm/oci-slim-bench.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then log "work dir $W"; else trap 'rm -rf "$W"' EXIT; fi
REC=$W/records.tsv
: >"$REC"

# record IMAGE ROW WALL CPU RSS
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$REC"; }

# timed IMAGE ROW CMD...: run CMD under timeit.py, record whole-process figures. Fails loudly.
timed() {
    local img=$1 row=$2
    shift 2
    local t
    t=$("$BENCH/timeit.py" "$@" 3>&1 >>"$W/cmd.out" 2>>"$W/cmd.err") || true
    read -r wall cpu rss code <<<"$t"
    if [ "${code:-1}" != 0 ]; then
        log "\`$*\` failed (exit ${code:-?}); last lines of stderr:"
        tail -5 "$W/cmd.err" | sed 's/^/bench:   /' >&2
        return 1
    fi
    record "$img" "$row" "$wall" "$cpu" "$rss"
}

# phases IMAGE PREFIX REPORT: record every phase of an oci-slim report as PREFIX:PHASE.
phases() {
    python3 - "$1" "$2" "$3" >>"$REC" <<'PY'
import json, sys
img, prefix, path = sys.argv[1:]
r = json.load(open(path))
for t in r["timings"]:
    print(f'{img}\t{prefix}:{t["phase"]}\t{t["wall_ms"]/1000:.4f}\t{t["cpu_ms"]/1000:.4f}\t{t["peak_rss_kib"]}')
PY
}

# layers OCI_DIR: the layer blob paths of an extracted OCI layout, in order.
layers() {
    python3 - "$1" <<'PY'
import json, os, sys
root = sys.argv[1]
blob = lambda d: os.path.join(root, "blobs", "sha256", d.split(":", 1)[1])
idx = json.load(open(os.path.join(root, "index.json")))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
if "manifests" in man:  # nested index: first manifest
    man = json.load(open(blob(man["manifests"][0]["digest"])))
for l in man["layers"]:
    print(blob(l["digest"]))
PY
}

# The baseline unpack: each layer decompressed (magic sniffed) and extracted over the previous.
cat >"$W/unpack.sh" <<'SH'
#!/bin/bash
set -euo pipefail
out=$1; shift
mkdir -p "$out"
for l in "$@"; do
    case "$(head -c4 "$l" | od -An -tx1 | tr -d ' \n')" in
        1f8b*) zcat "$l" ;;
        28b52ffd) zstd -dcq "$l" ;;
        *) cat "$l" ;;
    esac | tar -x -C "$out" -f -
done
SH
chmod +x "$W/unpack.sh"

# unpack_baseline IMAGE ROW DIR BLOBS...: RUNS timed unpacks into a fresh DIR/x each.
unpack_baseline() {
    local img=$1 row=$2 dir=$3
    shift 3
    for _ in $(seq "$RUNS"); do
        rm -rf "$dir/x"
        sync
        timed "$img" "$row" "$W/unpack.sh" "$dir/x" "$@" || true
    done
    rm -rf "$dir/x"
}

# write_baseline IMAGE OUT.tar: tar -c | gzip -6 of the kept files (the output layer extracted).
write_baseline() {
    local img=$1 out=$2
    rm -rf "$W/o" "$W/kept"
    mkdir -p "$W/o" "$W/kept"
    tar -xf "$out" -C "$W/o"
    local l
    l=$(layers "$W/o")
    "$W/unpack.sh" "$W/kept" $l
    for _ in $(seq "$RUNS"); do
        timed "$img" base:tar-gzip bash -c 'tar -C "$1" -cf - . | gzip -6 >"$2"' _ "$W/kept" "$W/kept.tar.gz" || true
    done
    rm -rf "$W/o" "$W/kept" "$W/kept.tar.gz"
}

# extract_blobs IN DIR: the OCI layout of IN (a tar) in DIR, for the baselines.
extract_blobs() {
    rm -rf "$2"
    mkdir -p "$2"
    tar -xf "$1" -C "$2"
}

bench_image() {
    local name=$1 in=$2
    log "image $name ($(du -h "$in" | cut -f1))"
    cat "$in" >/dev/null # page cache, for both sides
    extract_blobs "$in" "$W/in"
    local blobs
    mapfile -t blobs < <(layers "$W/in")
    for _ in $(seq "$RUNS"); do
        rm -f "$W/out.tar"
        if timed "$name" ours:total "$BIN" -q "$in" "$W/out.tar" --report "$W/r.json"; then
            phases "$name" ours "$W/r.json"
        fi
    done
    unpack_baseline "$name" base:unpack-shm "$W" "${blobs[@]}"
    if [ "$name" = nginx ]; then
        for _ in $(seq "$RUNS"); do
            rm -f "$W/out-disk.tar"
            if TMPDIR=$DISK_DIR timed "$name" disk:total "$BIN" -q "$in" "$W/out-disk.tar" --no-run --report "$W/r.json"; then
                phases "$name" disk "$W/r.json"
            fi
        done
        rm -f "$W/out-disk.tar"
        unpack_baseline "$name" base:unpack-disk "$DISK_DIR" "${blobs[@]}"
    fi
    [ -f "$W/out.tar" ] && write_baseline "$name" "$W/out.tar"
    rm -rf "$W/in" "$W/out.tar"
}

bench_generated() {
    local mb=$1 files=$2
    local name=gen-${mb}M in=$CACHE/gen-${mb}m-${files}.oci.tar
    if [ ! -f "$in" ]; then
        log "generating $in"
        python3 "$BENCH/gen-image.py" "$mb" "$files" "$in"
    fi
    log "image $name ($(du -h "$in" | cut -f1), $files files)"
    cat "$in" >/dev/null
    extract_blobs "$in" "$W/in"
    local blobs
    mapfile -t blobs < <(layers "$W/in")
    for _ in $(seq "$GEN_RUNS"); do
        rm -f "$W/out.tar"
        timed "$name" flatten:total "$BIN" flatten -q "$in" "$W/out.tar" || true
        # flatten = unpack + tar|gzip of the whole tree: the second half of its baseline.
        if [ -f "$W/out.tar" ] && ! grep -q "^$name	base:tar-gzip	" "$REC"; then
            RUNS=$GEN_RUNS write_baseline "$name" "$W/out.tar"
        fi
        rm -f "$W/out.tar"
        if timed "$name" norun:total "$BIN" -q "$in" "$W/out.tar" --no-run --report "$W/r.json"; then
            phases "$name" norun "$W/r.json"
        fi
        rm -f "$W/out.tar"
    done
    local keep=$RUNS
    RUNS=$GEN_RUNS unpack_baseline "$name" base:unpack-shm "$W" "${blobs[@]}"
    RUNS=$keep
    python3 - "$name" "$mb" "$files" "$(stat -c %s "$in")" >>"$W/sizes.tsv" <<'PY'
import sys; print("\t".join(sys.argv[1:]))
PY
    rm -rf "$W/in"
}

bench_trace() {
    log "tracing workloads: $TRACE_N rounds of stat + open + close (path), and the same with 99 in 100 rounds lseek + read instead (mixed)"
    gcc -O2 -static -o "$W/syscalls" "$BENCH/syscalls.c"
    local img=$W/trace.oci.tar
    python3 "$BENCH/gen-image.py" 1 10 "$img" --entrypoint-binary "$W/syscalls" --cmd 0 /app/entry
    local w n every
    for w in path:1 mixed:100; do
        every=${w##*:}
        w=${w%%:*}
        for n in 0 "$TRACE_N"; do
            for _ in $(seq "$RUNS"); do
                timed trace "native:$w:$n" "$W/syscalls" "$n" "$W/syscalls" "$every" || true
                timed trace "strace:$w:$n" strace -f -qq -e trace=%file -o /dev/null "$W/syscalls" "$n" "$W/syscalls" "$every" || true
                timed trace "strace-seccomp:$w:$n" strace -f -qq --seccomp-bpf -e trace=%file -o /dev/null "$W/syscalls" "$n" "$W/syscalls" "$every" || true
                rm -f "$W/tout.tar"
                if timed trace "ours-total:$w:$n" "$BIN" -q "$img" "$W/tout.tar" --cmd "$n /app/entry $every" --report "$W/r.json"; then
                    phases trace "ours:$w:$n" "$W/r.json"
                fi
            done
        done
    done
    rm -f "$W/tout.tar"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "binary $BIN; runs $RUNS (min kept); work dir $W; load average $LOAD0"
for name in $IMAGES; do
    in=$IMAGE_DIR/$name.oci.tar
    if [ ! -f "$in" ] && [ -x testdata/build-images.sh ]; then
        testdata/build-images.sh "$name" >&2 || true
    fi
    if [ -f "$in" ]; then bench_image "$name" "$in"; else log "skipping $name: no $in"; fi
done
for g in $GEN; do bench_generated "${g%%:*}" "${g##*:}"; done
bench_trace

{
    echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$W/machine.txt"
python3 "$BENCH/table.py" "$REC" "$W/sizes.tsv" "$W/machine.txt" "$TRACE_N"
if [ -n "${SAVE:-}" ]; then cp "$REC" "$SAVE"; fi
