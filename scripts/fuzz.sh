#!/usr/bin/env bash
# Run every cargo-fuzz target of oci-slim for SECONDS each (default 600), two at a time, niced.
#
#   scripts/fuzz.sh [SECONDS]            all targets
#   TARGETS="elf ldso_cache" scripts/fuzz.sh 60
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). No nightly toolchain is needed: RUSTC_BOOTSTRAP=1
# lets stable rustc accept the `-Z` flags cargo-fuzz passes (sanitizer, coverage).
# Seeds: a tiny valid docker-save and OCI archive plus the bad-input corpus
# (testdata/bad/make-corpus.py), their layer tars, host ELF files, /etc/ld.so.cache and
# /etc/nsswitch.conf. Corpora grow in fuzz/corpus/TARGET, crashes land in fuzz/artifacts/TARGET
# (both git-ignored); the script exits non-zero when any target found a crash.
set -euo pipefail

SECONDS_EACH=${1:-600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/fuzz"
TARGETS=${TARGETS:-"archive apply_layer elf ldso_cache nsswitch"}
JOBS=${JOBS:-2}
export RUSTC_BOOTSTRAP=1

cd "$FUZZ"
nice -n 10 cargo fuzz build -O
BIN="$FUZZ/target/$(rustc -vV | sed -n 's/^host: //p')/release"

seed() {
    local t=$1 dir="$FUZZ/corpus/$1"
    mkdir -p "$dir"
    case $t in
    archive | apply_layer)
        local tmp
        tmp=$(mktemp -d)
        python3 "$ROOT/testdata/bad/make-corpus.py" "$tmp/bad" >/dev/null
        if [ "$t" = archive ]; then
            # Small archives only: the fuzzer's max_len is 1 MiB.
            find "$tmp/bad" -name '*.tar' -size -1024k -exec cp {} "$dir/" \;
        else
            # The layers inside the docker-save cases.
            python3 - "$tmp/bad" "$dir" <<'PY'
import hashlib, os, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
for n in sorted(os.listdir(src)):
    if not n.endswith(".tar"):
        continue
    try:
        with tarfile.open(os.path.join(src, n)) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith("layer.tar") and m.size < (1 << 20):
                    b = t.extractfile(m).read()
                    with open(os.path.join(dst, hashlib.sha1(b).hexdigest()), "wb") as f:
                        f.write(b)
    except Exception:
        pass
PY
        fi
        rm -rf "$tmp"
        ;;
    elf)
        for f in /bin/true /bin/ls /usr/bin/env /lib64/ld-linux-x86-64.so.2 \
            /lib/x86_64-linux-gnu/libz.so.1 /lib/x86_64-linux-gnu/libnss_files.so.2; do
            [ -f "$f" ] && cp -L "$f" "$dir/$(basename "$f")" || true
        done
        ;;
    ldso_cache) [ -f /etc/ld.so.cache ] && cp /etc/ld.so.cache "$dir/host" || true ;;
    nsswitch)
        [ -f /etc/nsswitch.conf ] && cp /etc/nsswitch.conf "$dir/host" || true
        printf 'passwd: files [NOTFOUND=return] systemd\nhosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n' >"$dir/debian"
        ;;
    esac
}

status=0
running=0
for t in $TARGETS; do
    seed "$t"
    mkdir -p "$FUZZ/artifacts/$t"
    (
        # The built binary directly: `cargo fuzz run` would rebuild when sources change meanwhile.
        nice -n 10 "$BIN/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
            -max_total_time="$SECONDS_EACH" -max_len=1048576 -rss_limit_mb=2048 -timeout=20 \
            -print_final_stats=1 >"$FUZZ/artifacts/$t.log" 2>&1
    ) &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || status=1
    running=$((running - 1))
done

for t in $TARGETS; do
    log="$FUZZ/artifacts/$t.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    crashes=$(find "$FUZZ/artifacts/$t" -type f | wc -l)
    echo "$t: ${SECONDS_EACH}s, $execs execs, $crashes artifact(s)"
done
exit $status
