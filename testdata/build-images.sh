#!/bin/bash
# Build the real Debian 12 (bookworm) test images used by the integration tests.
#
#   testdata/build-images.sh [NAME...]      # default: all images
#
# Each image X is written to the cache dir ($OCI_SLIM_IMAGE_CACHE, default
# testdata/cache) as X.oci.tar (OCI layout tar, gzip layers) and X.docker.tar
# (docker-save archive named oci-slim-test/X:latest); `nginx` also yields
# nginx-zstd.oci.tar. An image is skipped when its outputs exist and the recipe
# hash (this script + testdata/src + testdata/files) is unchanged. The paths of
# the requested images are printed on stdout, one per line; progress and timings
# go to stderr.
#
# Needs: mmdebstrap, umoci, skopeo, gcc + libc6-dev (static), GNU tar, sha256sum.
# As root mmdebstrap runs in its default (root) mode; otherwise in `unshare` mode.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${OCI_SLIM_IMAGE_CACHE:-$HERE/cache}
SUITE=bookworm
# Fixed timestamp for everything we create (mmdebstrap clamps mtimes to it too).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600} # 2025-01-01T00:00:00Z
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
ALL=(nginx python shell static tiny postgres perl)

log() { printf 'build-images: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

check_tools() {
    local tool
    for tool in mmdebstrap umoci skopeo gcc; do
        command -v "$tool" >/dev/null || die "missing tool \`$tool\` (hint: apt-get install mmdebstrap umoci skopeo gcc libc6-dev)"
    done
}

if [ "$(id -u)" = 0 ]; then
    MM_MODE=(--mode=root)
    UMOCI_ROOTLESS=()
else
    MM_MODE=(--mode=unshare)
    UMOCI_ROOTLESS=(--rootless)
fi

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
# One builder at a time per cache (tests may call this script concurrently).
exec 9>"$CACHE/.lock"
flock 9

RECIPE=$(
    cd "$HERE"
    {
        # comments and blank lines do not change the recipe
        grep -v -E '^[[:space:]]*(#|$)' build-images.sh | sha256sum
        find src files -type f -print0 | sort -z | xargs -0 sha256sum
        find files -print0 | sort -z | xargs -0 stat -c '%a %n'
    } | sha256sum | cut -d' ' -f1
)

# Each image downloads its own packages: a shared .deb cache (mmdebstrap sync-in/sync-out hooks)
# gave the same images and no clear speed-up here, so builds stay independent.
rm -rf "$CACHE/debs"

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

outputs_of() { # NAME
    echo "$1.oci.tar" "$1.docker.tar"
    [ "$1" = nginx ] && echo nginx-zstd.oci.tar
    return 0
}

build_one() { # NAME
    local name=$1 stamp="$CACHE/$1.recipe" f fresh=1
    for f in $(outputs_of "$name"); do
        [ -s "$CACHE/$f" ] || fresh=0
    done
    if [ "$fresh" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$RECIPE" ]; then
        log "$name: up to date"
        return 0
    fi
    local w start end
    check_tools
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
    printf '%s\n' "$RECIPE" >"$stamp"
    rm -rf "$w"
    trap - EXIT
    end=$(date +%s%N)
    for f in $(outputs_of "$name"); do
        log "$(printf '%s: %-20s %12d bytes' "$name" "$f" "$(stat -c %s "$CACHE/$f")")"
    done
    local ms=$(((end - start) / 1000000))
    log "$(printf '%s: built in %d.%01d s' "$name" $((ms / 1000)) $((ms % 1000 / 100)))"
}

names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
for n in "${names[@]}"; do
    case " ${ALL[*]} " in
    *" $n "*) ;;
    *) die "unknown image \`$n\` (known: ${ALL[*]})" ;;
    esac
done
for n in "${names[@]}"; do
    build_one "$n"
done
for n in "${names[@]}"; do
    for f in $(outputs_of "$n"); do
        echo "$CACHE/$f"
    done
done
