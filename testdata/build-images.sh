#!/bin/bash
# Build the real Debian 12 (bookworm) test images used by the integration tests.
#
#   testdata/build-images.sh [-j N] [NAME...]   # default: all images, N builds at a time (1)
#   testdata/build-images.sh --print-recipe NAME # the recipe hash of one image
#
# Each image X is written to the cache dir ($OCI_SLIM_IMAGE_CACHE, default
# testdata/cache) as X.oci.tar (OCI layout tar, gzip layers) and X.docker.tar
# (docker-save archive named oci-slim-test/X:latest); `nginx` also yields
# nginx-zstd.oci.tar. An image is skipped when its outputs exist and its recipe
# hash (stamped in X.image-recipe) is unchanged. The recipe of an image is its own
# `build_X` function, the shared helper functions, and its own files under
# testdata/files/X and testdata/src (see `inputs_of`), comments and blank lines
# ignored: adding or changing one image does not rebuild the others. The paths of
# the requested images are printed on stdout, one per line; progress and timings
# go to stderr.
#
# Needs: mmdebstrap, umoci, skopeo, gcc + libc6-dev (static), GNU tar, sha256sum;
# javac (java image), go (go image).
# As root mmdebstrap runs in its default (root) mode; otherwise in `unshare` mode.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${OCI_SLIM_IMAGE_CACHE:-$HERE/cache}
SUITE=bookworm
# Fixed timestamp for everything we create (mmdebstrap clamps mtimes to it too).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600} # 2025-01-01T00:00:00Z
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
ALL=(nginx python shell static tiny postgres perl redis node java go)

log() { printf 'build-images: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

check_tools() { # NAME
    local tool
    for tool in mmdebstrap umoci skopeo gcc; do
        command -v "$tool" >/dev/null || die "missing tool \`$tool\` (hint: apt-get install mmdebstrap umoci skopeo gcc libc6-dev)"
    done
    case $1 in
    java) command -v javac >/dev/null || die "missing tool \`javac\` (hint: apt-get install openjdk-17-jdk-headless)" ;;
    go) command -v go >/dev/null || die "missing tool \`go\` (hint: apt-get install golang-go)" ;;
    esac
    return 0
}

if [ "$(id -u)" = 0 ]; then
    MM_MODE=(--mode=root)
    UMOCI_ROOTLESS=()
else
    MM_MODE=(--mode=unshare)
    UMOCI_ROOTLESS=(--rootless)
fi


# Deterministic tar of a directory's contents.
det_tar() { # DIR OUT [tar args...]
    local dir=$1 out=$2
    shift 2
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        --format=gnu "$@" -C "$dir" -cf "$out" .
}

# mmdebstrap a minbase rootfs tar with extra packages and hooks.
rootfs() { # OUT INCLUDE [mmdebstrap args...]
    local out=$1 include=$2
    shift 2
    local inc=()
    [ -n "$include" ] && inc=(--include="$include")
    mmdebstrap "${MM_MODE[@]}" --variant=minbase "${inc[@]}" \
        --aptopt='Acquire::Retries "3"' \
        --customize-hook='printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" > "$1"/etc/hosts' \
        --customize-hook='printf "oci-slim-test\n" > "$1"/etc/hostname' \
        --customize-hook='rm -f "$1"/etc/resolv.conf && printf "# replaced by the container runtime\n" > "$1"/etc/resolv.conf' \
        "$@" \
        "$SUITE" "$out" >&2
}

# A fresh OCI layout with one layer from a rootfs tar.
layout_from_tar() { # LAYOUT TAR COMMENT
    umoci init --layout "$1"
    umoci new --image "$1:latest"
    umoci raw add-layer --image "$1:latest" --history.created "$CREATED" \
        --history.created_by "$3" "$2"
}

config() { # LAYOUT [umoci config args...]
    local l=$1
    shift
    umoci config --image "$l:latest" --no-history --created "$CREATED" \
        --author oci-slim-testdata "$@"
}

# Write LAYOUT as NAME.oci.tar and NAME.docker.tar into DIR.
export_image() { # LAYOUT NAME DIR
    umoci gc --layout "$1"
    det_tar "$1" "$3/$2.oci.tar"
    skopeo copy --quiet "oci:$1:latest" "docker-archive:$3/$2.docker.tar:oci-slim-test/$2:latest" >&2
}

build_nginx() { # WORK
    local w=$1
    rootfs "$w/rootfs.tar" nginx-light
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --variant=minbase --include=nginx-light $SUITE"
    rm -f "$w/rootfs.tar"
    # Layer 2: real whiteouts (a file and a directory), a changed file, a new file.
    umoci unpack "${UMOCI_ROOTLESS[@]}" --image "$w/L:latest" "$w/B" >&2
    local r="$w/B/rootfs"
    rm -f "$r/usr/share/doc/nginx-light/copyright"
    rm -rf "$r/var/cache/debconf"
    printf '<!DOCTYPE html>\n<title>oci-slim test</title>\n<p>hello from nginx layer 2</p>\n' \
        >"$r/var/www/html/index.nginx-debian.html"
    printf 'added in layer 2\n' >"$r/etc/oci-slim-layer2"
    touch -h -d "@$SOURCE_DATE_EPOCH" "$r/var/www/html/index.nginx-debian.html" "$r/etc/oci-slim-layer2" \
        "$r/var/www/html" "$r/etc" "$r/var/cache" "$r/usr/share/doc/nginx-light"
    umoci repack --image "$w/L:latest" --history.created "$CREATED" \
        --history.created_by "layer 2: delete, replace, add" "$w/B" >&2
    rm -rf "$w/B"
    config "$w/L" --config.entrypoint /usr/sbin/nginx --config.cmd=-g --config.cmd='daemon off;' \
        --config.exposedports 80/tcp --config.stopsignal SIGQUIT
    export_image "$w/L" nginx "$w"
    # The same image with zstd layers (OCI only: docker 20.10 cannot load zstd).
    skopeo copy --quiet --dest-compress-format zstd "oci:$w/L:latest" "oci:$w/Z:latest" >&2
    det_tar "$w/Z" "$w/nginx-zstd.oci.tar"
}

build_python() {
    local w=$1
    rootfs "$w/rootfs.tar" python3-minimal,python3,ca-certificates \
        --customize-hook='mkdir -p "$1"/app' \
        --customize-hook="copy-in '$HERE/files/python/server.py' /app"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --include=python3-minimal,python3,ca-certificates + /app/server.py"
    config "$w/L" --config.entrypoint python3 --config.entrypoint /app/server.py \
        --config.exposedports 8000/tcp --config.workingdir /app \
        --config.env PYTHONUNBUFFERED=1
    export_image "$w/L" python "$w"
}

build_shell() {
    local w=$1
    rootfs "$w/rootfs.tar" "" \
        --customize-hook="copy-in '$HERE/files/shell/job.sh' /"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --variant=minbase + /job.sh"
    config "$w/L" --config.entrypoint /job.sh
    export_image "$w/L" shell "$w"
}

build_perl() {
    local w=$1
    rootfs "$w/rootfs.tar" perl \
        --customize-hook="copy-in '$HERE/files/perl/job.pl' /"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --include=perl + /job.pl"
    config "$w/L" --config.entrypoint /usr/bin/perl --config.cmd /job.pl
    export_image "$w/L" perl "$w"
}

build_postgres() {
    local w=$1
    rootfs "$w/rootfs.tar" postgresql-15 \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15/main' \
        --customize-hook='mkdir -p "$1"/usr/local/bin' \
        --customize-hook="copy-in '$HERE/files/postgres/entry.sh' /usr/local/bin"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --include=postgresql-15 + entry.sh"
    config "$w/L" --config.entrypoint /usr/local/bin/entry.sh \
        --config.exposedports 5432/tcp --config.env PGDATA=/var/lib/postgresql/data \
        --config.env PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.stopsignal SIGINT
    export_image "$w/L" postgres "$w"
}

# One-file layer of our own: no libc, no directories beyond what the file needs.
single_file_layout() { # WORK NAME BINARY DEST
    local w=$1
    mkdir -p "$w/root"
    install -m 0755 "$3" "$w/root/$4"
    touch -d "@$SOURCE_DATE_EPOCH" "$w/root/$4"
    tar --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --format=gnu \
        --blocking-factor=1 -C "$w/root" -cf "$w/layer.tar" "$4"
    layout_from_tar "$w/L" "$w/layer.tar" "$2: /$4"
}

build_static() {
    local w=$1
    gcc -static -O2 -Wall -Wextra -o "$w/server" "$HERE/src/static-server.c" >&2
    single_file_layout "$w" static "$w/server" server
    config "$w/L" --config.entrypoint /server --config.exposedports 8080/tcp
    export_image "$w/L" static "$w"
}

build_tiny() {
    local w=$1
    gcc -static -nostdlib -Os -s -Wall -Wextra -fno-asynchronous-unwind-tables -fno-pie -no-pie \
        -Wl,--build-id=none -Wl,-z,norelro -Wl,-z,noseparate-code \
        -o "$w/hello" "$HERE/src/tiny.c" >&2
    single_file_layout "$w" tiny "$w/hello" hello
    config "$w/L" --config.entrypoint /hello
    export_image "$w/L" tiny "$w"
}

build_redis() {
    local w=$1
    # umoci drops empty --config.cmd values (`--save ''`): the settings live in a config file
    rootfs "$w/rootfs.tar" redis-server \
        --customize-hook="copy-in '$HERE/files/redis/oci-slim.conf' /etc/redis"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --include=redis-server + /etc/redis/oci-slim.conf"
    config "$w/L" --config.entrypoint /usr/bin/redis-server --config.cmd /etc/redis/oci-slim.conf \
        --config.exposedports 6379/tcp --config.workingdir /var/lib/redis
    export_image "$w/L" redis "$w"
}

build_node() {
    local w=$1
    rootfs "$w/rootfs.tar" nodejs \
        --customize-hook='mkdir -p "$1"/app' \
        --customize-hook="copy-in '$HERE/files/node/server.js' /app"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --include=nodejs + /app/server.js"
    config "$w/L" --config.entrypoint node --config.entrypoint /app/server.js \
        --config.exposedports 3000/tcp --config.workingdir /app
    export_image "$w/L" node "$w"
}

build_java() {
    local w=$1
    mkdir -p "$w/classes"
    javac --release 17 -d "$w/classes" "$HERE/src/java/Server.java" >&2
    touch -d "@$SOURCE_DATE_EPOCH" "$w/classes/Server.class"
    rootfs "$w/rootfs.tar" openjdk-17-jre-headless \
        --customize-hook='mkdir -p "$1"/app' \
        --customize-hook="copy-in '$w/classes/Server.class' /app"
    layout_from_tar "$w/L" "$w/rootfs.tar" "mmdebstrap --include=openjdk-17-jre-headless + /app/Server.class"
    config "$w/L" --config.entrypoint java --config.entrypoint -cp --config.entrypoint /app \
        --config.entrypoint Server --config.exposedports 8080/tcp --config.workingdir /app
    export_image "$w/L" java "$w"
}

build_go() {
    local w=$1
    mkdir -p "$w/gocache" "$w/gopath"
    (
        cd "$HERE/src/go"
        CGO_ENABLED=0 GOCACHE="$w/gocache" GOPATH="$w/gopath" GO111MODULE=off GOFLAGS= \
            go build -trimpath -ldflags='-s -w -buildid=' -o "$w/server" main.go
    ) >&2
    single_file_layout "$w" go "$w/server" server
    config "$w/L" --config.entrypoint /server --config.exposedports 8080/tcp
    export_image "$w/L" go "$w"
}

outputs_of() { # NAME
    echo "$1.oci.tar" "$1.docker.tar"
    [ "$1" = nginx ] && echo nginx-zstd.oci.tar
    return 0
}

# Files (relative to testdata/) an image is built from, besides this script.
inputs_of() { # NAME
    case $1 in
    static) echo src/static-server.c ;;
    tiny) echo src/tiny.c ;;
    java) echo src/java ;;
    go) echo src/go ;;
    *) [ -d "$HERE/files/$1" ] && echo "files/$1" ;;
    esac
    return 0
}

# Text of shell function NAME as written in this script, comments and blank lines dropped.
function_text() { # NAME
    awk -v f="$1" '$0 ~ "^" f "\\(\\)" { on = 1 } on { print } on && /^}/ { exit }' "$HERE/build-images.sh" |
        grep -v -E '^[[:space:]]*(#|$)'
}

# Recipe hash of one image: what produces its bytes and nothing else.
recipe_of() { # NAME
    local fn inputs
    {
        printf 'suite=%s epoch=%s\n' "$SUITE" "$SOURCE_DATE_EPOCH"
        for fn in det_tar rootfs layout_from_tar config export_image single_file_layout "build_$1"; do
            function_text "$fn"
        done
        read -r -a inputs <<<"$(inputs_of "$1")"
        if [ ${#inputs[@]} -gt 0 ]; then
            (
                cd "$HERE"
                find "${inputs[@]}" -type f -print0 | sort -z | xargs -0 -r sha256sum
                find "${inputs[@]}" -print0 | sort -z | xargs -0 -r stat -c '%a %n'
            )
        fi
    } | sha256sum | cut -d' ' -f1
}

build_one() { # NAME
    local name=$1 stamp="$CACHE/$1.image-recipe" f fresh=1 recipe lockfd
    recipe=$(recipe_of "$name")
    # One builder per image and cache (tests may call this script concurrently).
    exec {lockfd}>"$CACHE/.lock-$name"
    flock "$lockfd"
    for f in $(outputs_of "$name"); do
        [ -s "$CACHE/$f" ] || fresh=0
    done
    if [ "$fresh" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$recipe" ]; then
        log "$name: up to date"
        exec {lockfd}>&-
        return 0
    fi
    local w start end
    check_tools "$name"
    w=$(mktemp -d "$CACHE/.build-$name.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$w'" EXIT
    start=$(date +%s%N)
    log "$name: building"
    "build_$name" "$w"
    rm -f "$stamp"
    for f in $(outputs_of "$name"); do
        mv -f "$w/$f" "$CACHE/$f"
    done
    printf '%s\n' "$recipe" >"$stamp"
    rm -rf "$w"
    trap - EXIT
    exec {lockfd}>&-
    end=$(date +%s%N)
    for f in $(outputs_of "$name"); do
        log "$(printf '%s: %-20s %12d bytes' "$name" "$f" "$(stat -c %s "$CACHE/$f")")"
    done
    local ms=$(((end - start) / 1000000))
    log "$(printf '%s: built in %d.%01d s' "$name" $((ms / 1000)) $((ms % 1000 / 100)))"
}

known() { # NAME
    case " ${ALL[*]} " in
    *" $1 "*) return 0 ;;
    *) die "unknown image \`$1\` (known: ${ALL[*]})" ;;
    esac
}

jobs_max=1
names=()
while [ $# -gt 0 ]; do
    case $1 in
    -j)
        [ $# -ge 2 ] || die "\`-j\` needs a number"
        jobs_max=$2
        shift 2
        ;;
    -j*)
        jobs_max=${1#-j}
        shift
        ;;
    --print-recipe)
        [ $# -eq 2 ] || die "usage: \`build-images.sh --print-recipe NAME\`"
        known "$2"
        recipe_of "$2"
        exit 0
        ;;
    -*) die "unknown option \`$1\`" ;;
    *)
        names+=("$1")
        shift
        ;;
    esac
done
[[ $jobs_max =~ ^[1-9][0-9]*$ ]] || die "\`-j\` needs a positive number, not \`$jobs_max\`"
[ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
for n in "${names[@]}"; do
    known "$n"
done

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
# Shared hold on the cache-wide lock: older versions of this script take it exclusively, so they
# never build while we do; builds of one image are serialized by its own lock in build_one.
exec 9>"$CACHE/.lock"
flock -s 9
# Each image downloads its own packages: a shared .deb cache (mmdebstrap sync-in/sync-out hooks)
# gave the same images and no clear speed-up here, so builds stay independent.
rm -rf "$CACHE/debs"

if [ "$jobs_max" = 1 ] || [ ${#names[@]} -le 1 ]; then
    for n in "${names[@]}"; do
        build_one "$n"
    done
else
    # Background builds, at most jobs_max at a time; each logs with its image name.
    pids=()
    for n in "${names[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
            sleep 1
        done
        (build_one "$n") &
        pids+=("$!")
    done
    failed=()
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${names[$i]}")
    done
    [ ${#failed[@]} -eq 0 ] || die "building failed: ${failed[*]}"
fi
for n in "${names[@]}"; do
    for f in $(outputs_of "$n"); do
        echo "$CACHE/$f"
    done
done
