#!/usr/bin/env python3
"""Generate a deterministic synthetic OCI image archive for benchmarks.

    bench/gen-image.py SIZE_MB FILES OUT.tar [--entrypoint-binary FILE] [--cmd ARG ...]

Writes an OCI image layout tarball (oci-layout, index.json, blobs/sha256/...) with three gzip
layers of about SIZE_MB uncompressed file bytes and about FILES regular files in total:

- layer 1: a directory tree holding most files (80% small 0-4 KiB, 19% medium, 1% large; half of
  the bytes compressible text, half incompressible);
- layer 2: more files, plus whiteouts of some layer-1 files, one whole layer-1 directory, and an
  opaque directory;
- layer 3: overwrites of some files, symlinks and hardlinks, and the entrypoint: a hand-made
  static x86_64 ELF that exits 0 (120 bytes, no libc), or the --entrypoint-binary FILE.

Same arguments => byte-identical archive (seeded PRNG, fixed mtimes, gzip header mtime 0).
Python stdlib only. Layers are compressed with zlib level 1 to keep generation fast; decompression
speed hardly depends on the level, and benchmarks compare against the same blobs.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import struct
import sys
import tarfile
import tempfile

MTIME = 1_700_000_000
POOL = 16 << 20


def exit0_elf() -> bytes:
    """A minimal static ELF64 x86_64 executable: exit(0)."""
    base = 0x400000
    code = bytes.fromhex("b83c000000" "31ff" "0f05")  # mov eax,60; xor edi,edi; syscall
    ehsize, phsize = 64, 56
    entry = base + ehsize + phsize
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0)
    total = ehsize + phsize + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return ehdr + phdr + code


class Pools:
    """Content pools: file bytes are slices of these (fast to produce, deterministic)."""

    def __init__(self, rng: random.Random):
        self.rand = rng.randbytes(POOL)
        words = [
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
            for _ in range(4096)
        ]
        parts, n = [], 0
        while n < POOL:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + "\n"
            parts.append(line)
            n += len(line)
        self.text = "".join(parts).encode()[:POOL]

    def content(self, rng: random.Random, size: int) -> bytes:
        pool = self.text if rng.random() < 0.5 else self.rand
        if size <= POOL:
            off = rng.randrange(0, POOL - size + 1)
            return pool[off : off + size]
        out = bytearray()
        while len(out) < size:
            off = rng.randrange(0, POOL)
            out += pool[off : off + min(size - len(out), POOL - off)]
        return bytes(out)


def file_sizes(rng: random.Random, files: int, total: int) -> list:
    """FILES sizes summing to about TOTAL bytes: 80% small, 19% medium, 1% large."""
    n_small = files * 80 // 100
    n_large = max(1, files // 100)
    n_medium = max(0, files - n_small - n_large)
    sizes = [rng.randint(0, 4096) for _ in range(n_small)]
    rest = max(0, total - sum(sizes))
    for n, share in ((n_medium, 0.3), (n_large, 0.7)):
        if n == 0:
            continue
        mean = rest * share / n
        sizes += [max(0, int(mean * rng.uniform(0.5, 1.5))) for _ in range(n)]
    rng.shuffle(sizes)
    return sizes


class HashTee(io.RawIOBase):
    """Writes to an inner file while hashing and counting (the uncompressed layer stream)."""

    def __init__(self, inner):
        self.inner, self.h, self.n = inner, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        self.inner.write(b)
        return len(b)


class Layer:
    def __init__(self, tmpdir: str):
        self.raw = tempfile.NamedTemporaryFile(dir=tmpdir, delete=False)
        self.gz = gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=self.raw, mtime=0)
        self.tee = HashTee(self.gz)
        self.tar = tarfile.open(fileobj=self.tee, mode="w|", format=tarfile.PAX_FORMAT, bufsize=1 << 20)

    def _info(self, name, typ, mode, size=0):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime = typ, mode, size, MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    def dir(self, name, mode=0o755):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name, data, mode=0o644):
        self.tar.addfile(self._info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target):
        ti = self._info(name, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tar.addfile(ti)

    def close(self):
        """Finish; returns (path, compressed digest, compressed size, diff_id)."""
        self.tar.close()
        self.gz.close()
        self.raw.close()
        h = hashlib.sha256()
        with open(self.raw.name, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return self.raw.name, h.hexdigest(), os.path.getsize(self.raw.name), self.tee.h.hexdigest()


def build(args):
    rng = random.Random(f"oci-slim-bench/{args.size_mb}/{args.files}")
    pools = Pools(rng)
    total = args.size_mb << 20
    nfiles = max(10, args.files)
    sizes = file_sizes(rng, nfiles, total)
    # 70% of files in layer 1, 25% in layer 2, 5% overwrites in layer 3.
    n1 = nfiles * 70 // 100
    n2 = nfiles * 25 // 100
    per_dir = 64
    tmpdir = os.path.dirname(os.path.abspath(args.out)) or "."
    layers = []

    # Layer 1: /data/dNNNN/fNNNNN, /etc basics.
    l1 = Layer(tmpdir)
    for d in ("bin", "etc", "data", "app", "tmp"):
        l1.dir(d, 0o1777 if d == "tmp" else 0o755)
    l1.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    l1.file("etc/group", b"root:x:0:\n")
    l1_files = []
    for i in range(n1):
        d = f"data/d{i // per_dir:05d}"
        if i % per_dir == 0:
            l1.dir(d)
        name = f"{d}/f{i:06d}"
        l1.file(name, pools.content(rng, sizes[i]))
        l1_files.append(name)
    layers.append(l1.close())

    # Layer 2: /data2/..., whiteouts of ~2% of layer-1 files, one layer-1 dir removed, one opaque.
    l2 = Layer(tmpdir)
    l2.dir("data")
    l2.dir("data2")
    for i in range(n2):
        d = f"data2/d{i // per_dir:05d}"
        if i % per_dir == 0:
            l2.dir(d)
        l2.file(f"{d}/f{i:06d}", pools.content(rng, sizes[n1 + i]))
    ndirs1 = (n1 + per_dir - 1) // per_dir
    dead_dir = f"data/d{ndirs1 // 2:05d}" if ndirs1 > 2 else None
    opaque_dir = f"data/d{ndirs1 // 3:05d}" if ndirs1 > 3 else None
    whiteouts = sorted(rng.sample(l1_files, max(1, len(l1_files) // 50)))
    seen_dirs = set()
    for name in whiteouts:
        d, base = name.rsplit("/", 1)
        if d in (dead_dir, opaque_dir):
            continue
        if d not in seen_dirs:
            l2.dir(d)
            seen_dirs.add(d)
        l2.file(f"{d}/.wh.{base}", b"")
    if dead_dir:
        l2.file(f"data/.wh.{dead_dir.split('/')[1]}", b"")
    if opaque_dir:
        l2.dir(opaque_dir)
        l2.file(f"{opaque_dir}/.wh..wh..opq", b"")
        l2.file(f"{opaque_dir}/replaced", b"opaque dir content\n")
    layers.append(l2.close())

    # Layer 3: overwrites, links, entrypoint.
    l3 = Layer(tmpdir)
    l3.dir("app")
    l3.dir("data")
    rest = nfiles - n1 - n2
    done_dirs = set()
    for j in range(rest):
        name = l1_files[(j * 7919) % len(l1_files)]
        d = name.rsplit("/", 1)[0]
        if d in (dead_dir, opaque_dir):
            continue
        if d not in done_dirs:
            l3.dir(d)
            done_dirs.add(d)
        l3.file(name, pools.content(rng, sizes[n1 + n2 + j]))
    l3.symlink("app/link-to-passwd", "../etc/passwd")
    l3.hardlink("app/passwd-hardlink", "etc/passwd")
    entry = open(args.entrypoint_binary, "rb").read() if args.entrypoint_binary else exit0_elf()
    l3.file("app/entry", entry, 0o755)
    layers.append(l3.close())
    return layers


def write_archive(args, layers):
    def blob_bytes(obj):
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        return data, hashlib.sha256(data).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {
            "Entrypoint": ["/app/entry"],
            "Cmd": args.cmd or None,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{l[3]}" for l in layers]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"gen-image layer {i}"} for i in range(len(layers))],
    }
    if not args.cmd:
        del config["config"]["Cmd"]
    cfg, cfg_hex = blob_bytes(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{cfg_hex}", "size": len(cfg)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{l[1]}", "size": l[2]}
            for l in layers
        ],
    }
    man, man_hex = blob_bytes(manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{man_hex}",
                "size": len(man),
                "annotations": {"org.opencontainers.image.ref.name": args.tag},
            }
        ],
    }
    idx, _ = blob_bytes(index)

    def info(name, size, typ=tarfile.REGTYPE):
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.mtime, ti.mode = typ, size, MTIME, 0o755 if typ == tarfile.DIRTYPE else 0o644
        return ti

    tmp = args.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
        t.addfile(info("oci-layout", 30), io.BytesIO(b'{"imageLayoutVersion":"1.0.0"}'))
        t.addfile(info("index.json", len(idx)), io.BytesIO(idx))
        t.addfile(info("blobs", 0, tarfile.DIRTYPE))
        t.addfile(info("blobs/sha256", 0, tarfile.DIRTYPE))
        t.addfile(info(f"blobs/sha256/{man_hex}", len(man)), io.BytesIO(man))
        t.addfile(info(f"blobs/sha256/{cfg_hex}", len(cfg)), io.BytesIO(cfg))
        for path, hexd, size, _ in layers:
            with open(path, "rb") as f:
                t.addfile(info(f"blobs/sha256/{hexd}", size), f)
    os.replace(tmp, args.out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("size_mb", type=int, help="uncompressed file bytes, in MiB")
    p.add_argument("files", type=int, help="number of regular files")
    p.add_argument("out", help="output OCI archive (.tar)")
    p.add_argument("--entrypoint-binary", help="use this file as /app/entry instead of the exit-0 ELF")
    p.add_argument("--cmd", nargs="*", default=[], help="Cmd arguments for the entrypoint")
    p.add_argument("--tag", default="latest")
    args = p.parse_args()
    layers = build(args)
    try:
        write_archive(args, layers)
    finally:
        for path, *_ in layers:
            os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
