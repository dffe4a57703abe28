#!/usr/bin/env python3
"""Generate the bad-input corpus: hostile or broken image archives for oci-slim.

Usage: make-corpus.py OUTDIR

Writes OUTDIR/<case>.tar for every case and OUTDIR/cases.json, a list of
{"name", "file", "kind", "cmd", "args", "expect", "note"}:

* cmd    "flatten" (archive and layer cases) or "slim" (config abuse; run with --no-run or a
         short --timeout as given in args)
* expect "error": one-line `error:` message, exit 1, no output file
         "ok":    documented safe handling (see note), exit 0, output written

Python 3 standard library only (tarfile, gzip, json, hashlib); the zstd cases use the `zstd`
CLI when it is installed and are left out otherwise. Output is deterministic: every tar member
has mtime 0, owner 0:0 and no user/group names, gzip streams have mtime 0.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

# A path the hostile layers aim at. The runner creates this "victim" directory beside the output
# and checks that it is unchanged afterwards; layers also aim at it through `..` chains.
VICTIM = "/tmp/oci-slim-victim"

CASES = []


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


# ---- tar building --------------------------------------------------------------------------


def ti(name, type_=tarfile.REGTYPE, size=0, mode=0o644, linkname="", **kw):
    t = tarfile.TarInfo(name)
    t.type = type_
    t.size = size
    t.mode = mode
    t.linkname = linkname
    t.mtime = 0
    t.uid = t.gid = 0
    t.uname = t.gname = ""
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def f(name, data=b"x\n", mode=0o644, **kw):
    if isinstance(data, str):
        data = data.encode()
    return (ti(name, size=len(data), mode=mode, **kw), data)


def d(name, mode=0o755):
    return (ti(name, tarfile.DIRTYPE, mode=mode), None)


def sym(name, target):
    return (ti(name, tarfile.SYMTYPE, mode=0o777, linkname=target), None)


def hard(name, target):
    return (ti(name, tarfile.LNKTYPE, linkname=target), None)


def tar_bytes(members, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def raw_tar(members):
    """Outer-archive tar from (name, bytes) pairs, or ready (TarInfo, data) tuples."""
    out = []
    for m in members:
        if isinstance(m[0], tarfile.TarInfo):
            out.append(m)
        else:
            out.append(f(m[0], m[1]))
    return tar_bytes(out)


def gz(b):
    return gzip.compress(b, compresslevel=6, mtime=0)


def base_layer():
    return tar_bytes(
        [
            d("etc/"),
            f("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            d("bin/"),
            f("bin/app", b"#!/bin/sh\necho hi\n", mode=0o755),
        ]
    )


def config(diff_ids, **cfg):
    c = {"Entrypoint": ["/bin/app"], "Env": ["PATH=/usr/bin:/bin"]}
    c.update(cfg)
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": c,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "make-corpus"}],
    }


def docker_save(layers, cfg=None, manifest=None, extra=(), diff_ids=None, tags=None):
    """A docker-save archive: layers are uncompressed tar bytes or (stored, uncompressed)."""
    pairs = []
    names = []
    ids = []
    for i, layer in enumerate(layers):
        stored, plain = layer if isinstance(layer, tuple) else (layer, layer)
        name = "%064x/layer.tar" % (i + 1)
        pairs.append((name, stored))
        names.append(name)
        ids.append(sha(plain))
    c = cfg if cfg is not None else config(diff_ids if diff_ids is not None else ids)
    cbytes = c if isinstance(c, bytes) else json.dumps(c).encode()
    cname = sha(cbytes)[7:] + ".json"
    m = manifest
    if m is None:
        m = [{"Config": cname, "RepoTags": tags or ["bad/case:latest"], "Layers": names}]
    mbytes = m if isinstance(m, bytes) else json.dumps(m).encode()
    return raw_tar([(cname, cbytes)] + pairs + [("manifest.json", mbytes)] + list(extra))


def blob(b):
    return ("blobs/sha256/" + sha(b)[7:], b)


def desc(media, b, **kw):
    x = {"mediaType": media, "digest": sha(b), "size": len(b)}
    x.update(kw)
    return x


MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_ZST = "application/vnd.oci.image.layer.v1.tar+zstd"
AMD64 = {"os": "linux", "architecture": "amd64"}


def oci_image(layer_stored=None, layer_plain=None, media=MT_LAYER, cfg=None, layer_desc=None):
    """Blobs and the manifest descriptor of one single-layer OCI image."""
    plain = layer_plain if layer_plain is not None else base_layer()
    stored = layer_stored if layer_stored is not None else plain
    c = json.dumps(cfg if cfg is not None else config([sha(plain)])).encode()
    ld = layer_desc if layer_desc is not None else desc(media, stored)
    man = json.dumps(
        {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": desc(MT_CONFIG, c), "layers": [ld]}
    ).encode()
    return [blob(stored), blob(c), blob(man)], man


def oci_layout(index, blobs, extra=()):
    ib = index if isinstance(index, bytes) else json.dumps(index).encode()
    return raw_tar(
        [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", ib)] + blobs + list(extra)
    )


def index_of(*descs):
    return {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": list(descs)}


# ---- registering cases -----------------------------------------------------------------------


def case(name, kind, data, expect, note, cmd="flatten", args=()):
    CASES.append(
        {
            "name": name,
            "file": name + ".tar",
            "kind": kind,
            "cmd": cmd,
            "args": list(args),
            "expect": expect,
            "note": note,
            "_data": data,
        }
    )


def layer_case(name, members, expect, note, more_layers=(), fmt=tarfile.GNU_FORMAT):
    layers = [tar_bytes(members, fmt)] + [tar_bytes(m, fmt) for m in more_layers]
    case(name, "layer", docker_save(layers), expect, note)


# ---- the cases -------------------------------------------------------------------------------


def outer_cases():
    L = base_layer()
    ids = [sha(L)]
    cfg = json.dumps(config(ids)).encode()
    cname = sha(cfg)[7:] + ".json"

    def man(layers, config_name=cname):
        return [{"Config": config_name, "RepoTags": ["bad/case:latest"], "Layers": layers}]

    case("valid-docker", "outer", docker_save([L]), "ok", "control: a valid docker-save archive")
    blobs, mb = oci_image()
    case("valid-oci", "outer", oci_layout(index_of(desc(MT_MANIFEST, mb, platform=AMD64)), blobs),
         "ok", "control: a valid OCI layout archive")
    case("manifest-layer-dotdot", "outer",
         docker_save([L], manifest=man(["../../etc/passwd"])), "error",
         "manifest.json names a layer outside the archive with `../`")
    case("manifest-config-dotdot", "outer",
         raw_tar([("manifest.json", json.dumps(man(["l.tar"], "../../../etc/passwd")).encode()),
                  ("l.tar", L)]), "error",
         "manifest.json names the config outside the archive")
    case("manifest-layer-absolute", "outer",
         docker_save([L], manifest=man(["/etc/passwd"])), "error",
         "manifest.json names a layer by an absolute host path that is not in the archive")
    case("layer-symlink-to-host", "outer",
         raw_tar([("manifest.json", json.dumps(man(["l/layer.tar"])).encode()), (cname, cfg),
                  sym("l/layer.tar", "/etc/passwd")]), "error",
         "the layer file is a symlink entry pointing at a host file")
    case("layer-symlink-dotdot", "outer",
         raw_tar([("manifest.json", json.dumps(man(["l/layer.tar"])).encode()), (cname, cfg),
                  sym("l/layer.tar", "../../../../etc/passwd")]), "error",
         "the layer file is a symlink entry escaping the archive")
    case("layer-hardlink-missing", "outer",
         raw_tar([("manifest.json", json.dumps(man(["l/layer.tar"])).encode()), (cname, cfg),
                  hard("l/layer.tar", "nowhere/layer.tar")]), "error",
         "the layer file is a hardlink entry to a member that does not exist")
    case("layer-symlink-loop", "outer",
         raw_tar([("manifest.json", json.dumps(man(["a/layer.tar"])).encode()), (cname, cfg),
                  sym("a/layer.tar", "../b/layer.tar"), sym("b/layer.tar", "../a/layer.tar")]),
         "error", "layer files are symlinks pointing at each other")
    blobs, mb = oci_image()
    bad = desc(MT_MANIFEST, mb, platform=AMD64)
    bad["digest"] = "sha256:../../../../etc/passwd"
    case("digest-path-traversal", "outer", oci_layout(index_of(bad), blobs), "error",
         "a descriptor digest is a `../` path")
    bad = desc(MT_MANIFEST, mb, platform=AMD64)
    bad["digest"] = "sha256/../../index.json"
    case("digest-malformed", "outer", oci_layout(index_of(bad), blobs), "error",
         "a descriptor digest that is not `algorithm:hex`")
    bad = desc(MT_MANIFEST, mb, platform=AMD64)
    bad["digest"] = "sha512:" + "0" * 128
    case("digest-unsupported-algorithm", "outer", oci_layout(index_of(bad), blobs), "error",
         "a sha512 digest (only sha256 is supported)")

    L2 = base_layer() + b"\0" * 1024
    blobs, mb = oci_image(layer_stored=L2, layer_plain=L2,
                          layer_desc={"mediaType": MT_LAYER, "digest": sha(L), "size": len(L2)})
    blobs[0] = ("blobs/sha256/" + sha(L)[7:], L2)
    case("layer-digest-mismatch", "outer",
         oci_layout(index_of(desc(MT_MANIFEST, mb, platform=AMD64)), blobs), "error",
         "the layer blob's content does not hash to its name and descriptor digest")
    blobs, mb = oci_image(layer_desc={"mediaType": MT_LAYER, "digest": sha(L), "size": len(L) + 1})
    case("layer-size-mismatch", "outer",
         oci_layout(index_of(desc(MT_MANIFEST, mb, platform=AMD64)), blobs), "error",
         "the layer descriptor's size differs from the blob")
    blobs, mb = oci_image()
    md = desc(MT_MANIFEST, mb, platform=AMD64)
    md["size"] = len(mb) - 1
    case("manifest-size-mismatch", "outer", oci_layout(index_of(md), blobs), "error",
         "the manifest descriptor's size differs from the blob")
    case("diff-id-mismatch", "outer", docker_save([L], diff_ids=[sha(b"other")]), "error",
         "config rootfs.diff_ids does not match the layer's uncompressed digest")
    case("diff-id-count-mismatch", "outer", docker_save([L], diff_ids=[sha(L), sha(L)]), "error",
         "config lists more diff_ids than the manifest has layers")
    case("manifests-null", "outer",
         oci_layout({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": None}, []), "error",
         "index.json has `\"manifests\": null` and there is no manifest.json")
    blobs, mb = oci_image()
    case("docker-and-oci-null", "outer",
         raw_tar([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                  ("index.json", b'{"schemaVersion":2,"manifests":null}')]
                 + [(n, b) for n, b in tarfile_members(docker_save([L]))]),
         "ok", "Docker 25.0.0 style: a broken OCI half (`manifests: null`) beside a good "
         "manifest.json; manifest.json wins (warning)")
    two = [{"Config": cname, "RepoTags": ["a/one:latest"], "Layers": ["%064x/layer.tar" % 1]},
           {"Config": cname, "RepoTags": ["a/two:latest"], "Layers": ["%064x/layer.tar" % 1]}]
    case("several-images-no-selector", "outer", docker_save([L], manifest=two), "error",
         "two images and no `--image`: the error lists the choices")
    blobs, mb = oci_image()
    case("missing-platform", "outer",
         oci_layout(index_of(desc(MT_MANIFEST, mb, platform={"os": "linux",
                                                           "architecture": "s390x"})), blobs),
         "error", "the only manifest is for another platform")
    # A real digest cycle is impossible (it needs a hash fixed point), so the cycle is a blob
    # stored under a name that is not its digest and that refers to that name again.
    nested = json.dumps(index_of({"mediaType": MT_INDEX, "digest": "sha256:" + "ab" * 32,
                                  "size": 0})).encode()
    cyc = json.dumps(index_of({"mediaType": MT_INDEX, "digest": "sha256:" + "ab" * 32,
                               "size": len(nested)})).encode()
    case("index-cycle", "outer",
         oci_layout(index_of({"mediaType": MT_INDEX, "digest": "sha256:" + "ab" * 32,
                              "size": len(cyc)}),
                    [("blobs/sha256/" + "ab" * 32, cyc)]), "error",
         "a nested index refers to itself by digest (its content cannot match, and the depth "
         "limit stops the chain anyway)")
    blobs, mb = oci_image()
    top = desc(MT_MANIFEST, mb, platform=AMD64)
    chain = []
    for _ in range(12):
        ib = json.dumps(index_of(top)).encode()
        chain.append(blob(ib))
        top = desc(MT_INDEX, ib)
    case("index-depth", "outer", oci_layout(index_of(top), blobs + chain), "error",
         "12 nested indexes (limit 4)")
    good = docker_save([L])
    case("duplicate-outer-entries", "outer",
         raw_tar([(n, b) for n, b in tarfile_members(good)]
                 + [("manifest.json", json.dumps(man(["../x"])).encode())]),
         "error", "manifest.json appears twice in the outer tar (ambiguous)")
    case("truncated", "outer", good[: len(good) // 2 + 100], "error",
         "the archive is cut in the middle of a layer")
    case("truncated-header", "outer", good[:700], "error", "the archive ends inside a member")
    case("trailing-garbage", "outer", good + b"GARBAGE" * 1000, "error",
         "non-zero bytes after the end-of-archive blocks are refused (a sign of concatenation "
         "or corruption)")
    case("trailing-zero-blocks", "outer", good + b"\0" * 10240, "ok",
         "extra zero blocks after the end-of-archive marker (common padding) are fine")
    case("not-a-tar", "outer", b"\x7fELF" + bytes(range(256)) * 8, "error", "random bytes")
    case("empty-file", "outer", b"", "error", "a zero-length file")
    case("gzip-outer", "outer", gz(good), "error",
         "a gzip-compressed archive (the hint says to decompress it)")
    case("oversized-json", "outer",
         docker_save([L], manifest=b"[" + b'"' + b"x" * (9 << 20) + b'"]'), "error",
         "a 9 MiB manifest.json (limit 8 MiB)")
    case("deeply-nested-json", "outer", docker_save([L], manifest=b"[" * 100000 + b"]" * 100000),
         "error", "manifest.json nested 100000 levels deep")
    case("config-not-object", "outer", docker_save([L], cfg=b"[1,2,3]"), "error",
         "the config JSON is an array")
    case("manifest-missing-layer", "outer",
         docker_save([L], manifest=man(["%064x/layer.tar" % 99])), "error",
         "manifest.json names a layer that is not in the archive")


def tarfile_members(b):
    with tarfile.open(fileobj=io.BytesIO(b)) as t:
        return [(m.name, t.extractfile(m).read()) for m in t.getmembers() if m.isfile()]


def layer_cases():
    layer_case("layer-traversal", [f("../../../../tmp/oci-slim-victim/pwned")], "error",
               "a layer entry name climbs out with `..`")
    layer_case("layer-absolute-names", [d("/etc/"), f("/etc/hostname", "x\n")], "ok",
               "absolute entry names are taken relative to the image root")
    # Entries below a symlink land where the link leads *inside the image* (as docker and
    # containerd apply layers): the host path the link names is never touched.
    layer_case("symlink-then-write", [sym("evil", VICTIM), f("evil/pwned")], "ok",
               "a symlink to a host directory, then a file written through it (same layer): "
               "the file lands at that path inside the image")
    layer_case("symlink-then-write-across-layers", [sym("evil", VICTIM)], "ok",
               "the symlink is in layer 1, the write through it in layer 2 (inside the image)",
               more_layers=[[f("evil/pwned")]])
    layer_case("symlink-relative-escape-write", [sym("evil", "../../../../../tmp/oci-slim-victim"),
                                                 f("evil/pwned")], "ok",
               "a relative symlink climbing out, then a write through it: `..` stops at the "
               "image root")
    layer_case("two-hop-symlink-write", [sym("a", "b"), sym("b", VICTIM), f("a/pwned")], "ok",
               "a -> b -> host dir, then a write through a (inside the image)")
    layer_case("symlink-loop-write", [sym("a", "b"), sym("b", "a"), f("a/pwned")], "error",
               "a -> b -> a, then a write through a")
    layer_case("write-below-file", [f("file"), sym("l", "file"), f("l/pwned")], "error",
               "a write below a symlink to a regular file")
    layer_case("symlink-parent-dir-entry", [sym("evil", VICTIM), d("evil/sub/")], "ok",
               "a directory entry below a symlink (inside the image)")
    layer_case("hardlink-outside", [hard("passwd", "../../../../etc/passwd")], "error",
               "a hardlink to a path outside the root")
    layer_case("hardlink-absolute-missing", [hard("shadow", "/etc/shadow")], "error",
               "a hardlink to an absolute path that is not in the image (never the host's)")
    layer_case("hardlink-to-dir", [d("dir/"), hard("link", "dir")], "error",
               "a hardlink to a directory")
    layer_case("hardlink-through-symlink", [sym("evil", VICTIM), hard("h", "evil/keep")], "error",
               "a hardlink whose target goes through a symlink to the host")
    layer_case("bad-whiteout-dotdot", [f(".wh..."), ], "error", "whiteout `.wh...` names `..`")
    layer_case("bad-whiteout-dot", [d("a/"), f("a/.wh..")], "error", "whiteout `.wh..` names `.`")
    layer_case("bad-whiteout-empty", [d("a/"), f("a/.wh.")], "error", "whiteout with no name")
    layer_case("whiteout-through-symlink", [sym("evil", VICTIM)], "ok",
               "a whiteout under a symlink to a host dir applies inside the image, never to "
               "host files",
               more_layers=[[f("evil/.wh.keep", b"")]])
    layer_case("chmod-through-symlink", [sym("evil", VICTIM)], "ok",
               "a directory entry replacing a symlink replaces it in the tree; the host dir "
               "it pointed at keeps its mode",
               more_layers=[[d("evil/", mode=0o777)]])
    layer_case("chmod-through-symlink-file", [d("etc/"), sym("etc/target", VICTIM + "/keep")], "ok",
               "a file entry over a symlink replaces the link, never writes its target",
               more_layers=[[f("etc/target", "new\n", mode=0o4777)]])
    layer_case("devices-and-setuid",
               [d("dev/"), (ti("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3), None),
                (ti("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0), None),
                (ti("dev/fifo", tarfile.FIFOTYPE, mode=0o644), None),
                d("bin/"), f("bin/su", b"\x7fELF", mode=0o4755), f("bin/wall", b"x", mode=0o2755),
                d("tmp/", mode=0o1777)], "ok",
               "devices and fifos are kept in the tree and re-emitted in the output, never "
               "created on disk; setuid/setgid/sticky bits are kept in the tree only")
    layer_case("sparse-gnu", [(ti("big", tarfile.GNUTYPE_SPARSE, size=0), None)], "error",
               "a GNU sparse member (type S) is refused, never written wrongly")
    # PAX sparse (GNU tar --sparse --format=pax, 1.0): name GNUSparseFile.<pid>/name
    pax = ti("GNUSparseFile.123/big", size=512)
    pax.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                       "GNU.sparse.name": "big", "GNU.sparse.realsize": "1048576"}
    layer_case("sparse-pax", [(pax, b"1\n0\n512\n" + b"\0" * 504)], "error",
               "a PAX 1.0 sparse member is refused", fmt=tarfile.PAX_FORMAT)
    # PAX size desync: the PAX header says 1 GiB, the data is 10 bytes, then the tar ends.
    case("pax-size-desync", "layer",
         docker_save([pax_desync_layer()]), "error",
         "a PAX `size` record larger than the data that follows (truncated member)")
    layer_case("deep-names", [f("a/" * 300 + "f")], "error", "a name with 300 components (limit 256)",
               fmt=tarfile.PAX_FORMAT)
    layer_case("long-names", [f("d/" + "x" * 5000)], "error",
               "a 5000-byte name (limit 4096 bytes per path)", fmt=tarfile.PAX_FORMAT)
    layer_case("colliding-names", [d("a/"), f("a/b", "one\n"), f("a//b", "two\n"),
                                    f("./a/./b", "three\n"), d("a/b/"), f("a/b/c")], "error",
               "names in one layer that normalize to the same path are refused as duplicates "
               "(docker and podman refuse them too)")
    layer_case("file-over-dir-across-layers", [d("a/"), f("a/x")], "ok",
               "a file in a later layer replaces a whole directory tree",
               more_layers=[[f("a", "now a file\n")]])
    layer_case("nul-free-odd-bytes", [f("caf\xe9/\x01\x7f\n\tname", "x")], "ok",
               "control characters and non-UTF-8 bytes in names are kept as bytes",
               fmt=tarfile.GNU_FORMAT)


def pax_desync_layer():
    """A layer tar whose PAX header claims a size far beyond the data present."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = ti("file", size=10)
        t.addfile(info, io.BytesIO(b"0123456789"))
    raw = bytearray(buf.getvalue())
    # Insert a PAX extended header before the file header saying size=1 GiB.
    body = "size=%d\n" % (1 << 30)
    n = len(body) + 3  # the record length counts its own digits and the space
    rec = ("%d %s" % (n, body)).encode()
    h = tarfile.TarInfo("PaxHeader/file")
    h.type = tarfile.XHDTYPE
    h.size = len(rec)
    h.mtime = 0
    hdr = h.tobuf(format=tarfile.USTAR_FORMAT)
    pad = b"\0" * ((512 - len(rec) % 512) % 512)
    return hdr + rec + pad + bytes(raw)


def bomb_cases():
    # 256 MiB of zeros after a tiny layer: streamed and hashed, never held in memory; the
    # diff_id (of the real content) does not match so the run ends with an error.
    L = base_layer()
    zeros = b"\0" * (1 << 20)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(L)
        for _ in range(64):
            g.write(zeros)
    case("gzip-bomb", "bomb", docker_save([(buf.getvalue(), L)]), "error",
         "a gzip layer expanding ~1000:1 to 64 MiB: streamed in bounded memory; the trailing "
         "zeros change the diff_id, so it fails the check")
    # Multi-member gzip with many empty members.
    many = b"".join(gzip.compress(b"", mtime=0) for _ in range(20000))
    case("gzip-many-members", "bomb", docker_save([(gz(L) + many, L)]), "ok",
         "a gzip layer followed by 20000 empty gzip members: the data is the same")
    case("gzip-corrupt", "bomb", docker_save([(gz(L)[:-12] + b"\xff" * 12, L)]), "error",
         "a gzip layer with a broken CRC trailer")
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c", "-19"], input=L + b"\0" * (64 << 20),
                           capture_output=True, check=True).stdout
        case("zstd-bomb", "bomb", docker_save([(z, L)]), "error",
             "a zstd layer expanding to 64 MiB of zeros after the tar: diff_id mismatch")
        big = subprocess.run(["zstd", "-q", "-c", "--long=31", "--zstd=wlog=31"],
                             input=L, capture_output=True, check=True).stdout
        case("zstd-window-bomb", "bomb", docker_save([(big, L)]), "error",
             "a zstd frame asking for a 2 GiB window (limit 2^27): refused before allocating")


def config_cases():
    L = base_layer()

    def img(**cfg):
        return docker_save([L], cfg=config([sha(L)], **cfg))

    case("config-workdir-dotdot", "config", img(WorkingDir="../../../.."), "ok",
         "WorkingDir `../..` resolves inside the image root (static mode: nothing runs)",
         cmd="slim", args=["--no-run"])
    case("config-entrypoint-proc-self-exe", "config", img(Entrypoint=["/proc/self/exe"]), "ok",
         "Entrypoint /proc/self/exe names no file of the image: nothing of the host is copied "
         "(static mode)", cmd="slim", args=["--no-run"])
    case("config-entrypoint-proc-self-exe-run", "config", img(Entrypoint=["/proc/self/exe"]),
         "error", "Entrypoint /proc/self/exe in a real run: not a file of the image, refused",
         cmd="slim", args=["--timeout", "10"])
    case("config-ld-preload", "config",
         img(Env=["PATH=/bin", "LD_PRELOAD=/tmp/oci-slim-victim/evil.so ../../../etc/passwd"]),
         "ok", "LD_PRELOAD entries are looked up in the image tree only; missing ones are "
         "warnings", cmd="slim", args=["--no-run"])
    case("config-entrypoint-host-path", "config",
         img(Entrypoint=["../../../../bin/sh"]), "ok",
         "a relative `..` entrypoint stays in the image root (static mode)",
         cmd="slim", args=["--no-run"])
    case("config-huge-env", "config", img(Env=["A%d=%s" % (i, "x" * 100) for i in range(20000)]),
         "ok", "20000 environment variables (2 MiB of config)", cmd="slim", args=["--no-run"])


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make-corpus.py OUTDIR\n")
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    outer_cases()
    layer_cases()
    bomb_cases()
    config_cases()
    names = set()
    for c in CASES:
        assert c["name"] not in names, c["name"]
        names.add(c["name"])
        with open(os.path.join(out, c["file"]), "wb") as fh:
            fh.write(c.pop("_data"))
    with open(os.path.join(out, "cases.json"), "w") as fh:
        json.dump(CASES, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print("%d cases in %s" % (len(CASES), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
