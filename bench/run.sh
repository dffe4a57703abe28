#!/bin/bash
# Benchmark oci-slim on the nginx test image against plain tar/gzip baselines.
#
#   bench/run.sh [IMAGE.oci.tar]        # default: testdata/cache/nginx.oci.tar (built if missing)
#
# Prints a table of wall time and peak RSS (`/usr/bin/time -f '%e %M'`) for:
#   oci-slim flatten IN OUT          vs  zcat each layer | tar -x  (baseline unpack)
#                                    and tar -c | gzip -6 of the flattened tree (baseline pack)
#   oci-slim IN OUT --report R.json  (end to end)
#   oci-slim trace IN --json         (trace only)
# and the ratio of oci-slim flatten to the two baselines together. A failing command is shown
# as `failed` (with its stderr in the work dir) and the rest still runs.
# Env: OCI_SLIM (binary; default target/release/oci-slim, built when missing), KEEP=1 keeps the
# work dir.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TIME=/usr/bin/time
[ -x "$TIME" ] || {
    echo "bench: error: needs GNU time at /usr/bin/time (hint: apt-get install time)" >&2
    exit 1
}
IN=${1:-}
if [ -z "$IN" ]; then
    IN=$(testdata/build-images.sh nginx | grep '/nginx\.oci\.tar$')
fi
IN=$(readlink -f "$IN")
BIN=${OCI_SLIM:-$ROOT/target/release/oci-slim}
if [ ! -x "$BIN" ]; then
    echo "bench: building $BIN" >&2
    cargo build --release --quiet
fi

W=$(mktemp -d /tmp/oci-slim-bench.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then
    echo "bench: work dir $W" >&2
else
    trap 'rm -rf "$W"' EXIT
fi

# measure NAME CMD...: runs CMD under /usr/bin/time, records "wall rss_kib" or "failed".
declare -A WALL RSS
measure() {
    local name=$1
    shift
    if "$TIME" -f '%e %M' -o "$W/$name.time" "$@" >"$W/$name.out" 2>"$W/$name.err"; then
        read -r WALL[$name] RSS[$name] <"$W/$name.time"
    else
        WALL[$name]=failed
        RSS[$name]=-
        echo "bench: \`$*\` failed; see $W/$name.err" >&2
        tail -3 "$W/$name.err" | sed 's/^/bench:   /' >&2
    fi
}

# Layer blobs of the input, in order (outside the timed region).
mkdir -p "$W/img"
tar -xf "$IN" -C "$W/img"
mapfile -t LAYERS < <(python3 - "$W/img" <<'PY'
import json, sys, os
root = sys.argv[1]
def blob(d):
    return os.path.join(root, "blobs", "sha256", d.split(":", 1)[1])
idx = json.load(open(os.path.join(root, "index.json")))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
for l in man["layers"]:
    print(blob(l["digest"]))
PY
)

cat >"$W/unpack.sh" <<'SH'
#!/bin/bash
# Baseline unpack: decompress every layer and extract it over the previous ones (no whiteouts).
set -euo pipefail
out=$1
shift
mkdir -p "$out"
for l in "$@"; do
    case "$(head -c4 "$l" | od -An -tx1 | tr -d ' ')" in
    1f8b*) zcat "$l" ;;
    28b52ffd) zstd -dc "$l" ;;
    *) cat "$l" ;;
    esac | tar -x --no-same-owner --exclude='./dev/*' -C "$out"
done
SH
cat >"$W/pack.sh" <<'SH'
#!/bin/bash
set -euo pipefail
tar -c -C "$1" . | gzip -6 >"$2"
SH
chmod +x "$W/unpack.sh" "$W/pack.sh"

measure unpack "$W/unpack.sh" "$W/tree" "${LAYERS[@]}"
measure pack "$W/pack.sh" "$W/tree" "$W/tree.tar.gz"
measure flatten "$BIN" flatten "$IN" "$W/flat.tar"
measure slim "$BIN" "$IN" "$W/slim.tar" --report "$W/report.json"
measure trace "$BIN" trace "$IN" --json

size() { [ -e "$1" ] && stat -c %s "$1" || echo -; }
ratio() { # A B -> A/B or -
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && [ "$(echo "$2" | tr -d '0.')" != "" ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo -
    fi
}
sum() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/) printf "%.2f", a + b; else print "-" }'; }
mib() { [[ "$1" =~ ^[0-9]+$ ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo -; }

base=$(sum "${WALL[unpack]}" "${WALL[pack]}")
printf '\ninput: %s (%s bytes, %d layers)\n\n' "$IN" "$(size "$IN")" "${#LAYERS[@]}"
printf '%-34s %10s %14s %14s\n' step "wall s" "peak RSS MiB" "output bytes"
printf '%-34s %10s %14s %14s\n' "baseline: zcat layers | tar -x" "${WALL[unpack]}" "$(mib "${RSS[unpack]}")" -
printf '%-34s %10s %14s %14s\n' "baseline: tar -c | gzip -6" "${WALL[pack]}" "$(mib "${RSS[pack]}")" "$(size "$W/tree.tar.gz")"
printf '%-34s %10s %14s %14s\n' "baseline total" "$base" - -
printf '%-34s %10s %14s %14s\n' "oci-slim flatten" "${WALL[flatten]}" "$(mib "${RSS[flatten]}")" "$(size "$W/flat.tar")"
printf '%-34s %10s %14s %14s\n' "oci-slim IN OUT --report" "${WALL[slim]}" "$(mib "${RSS[slim]}")" "$(size "$W/slim.tar")"
printf '%-34s %10s %14s %14s\n' "oci-slim trace --json" "${WALL[trace]}" "$(mib "${RSS[trace]}")" -
printf '\nratios: flatten / baseline total = %s, flatten / unpack = %s, slim out / in size = %s\n' \
    "$(ratio "${WALL[flatten]}" "$base")" "$(ratio "${WALL[flatten]}" "${WALL[unpack]}")" \
    "$(ratio "$(size "$W/slim.tar")" "$(size "$IN")")"
