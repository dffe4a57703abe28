//! Tests of the closure over hand-built trees, plus a shared fixture (also used by
//! `select` tests): a tree with a MemSource and a tiny ELF writer.

use super::closure::{Closure, ClosureBuilder};
use super::elf::{self, EM_X86_64};
use super::ldso::{self, CacheEntry, Flavor, LdSearch, Loader, Target};
use crate::image::ExecSpec;
use crate::rootfs::{Entry, Kind, MemSource, Tree};
use crate::select::Reason;
use std::collections::BTreeMap;

/// A tree plus file bytes, built path by path (parents created as 0755 directories).
#[derive(Default)]
pub(crate) struct Fx {
    pub tree: Tree,
    pub src: MemSource,
}

impl Fx {
    pub fn new() -> Self {
        Fx::default()
    }

    fn put(&mut self, path: &str, kind: Kind, mode: u32) {
        let rel = path.trim_start_matches('/').as_bytes().to_vec();
        let mut i = 0;
        while let Some(j) = rel[i..].iter().position(|&b| b == b'/') {
            let parent = rel[..i + j].to_vec();
            if !self.tree.contains(&parent) {
                let inode = self.tree.new_inode();
                self.tree.insert(parent, entry(Kind::Dir, 0o755, inode));
            }
            i += j + 1;
        }
        let inode = self.tree.new_inode();
        self.tree.insert(rel, entry(kind, mode, inode));
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.put(path, Kind::Dir, 0o750);
        self
    }

    pub fn file(&mut self, path: &str, bytes: &[u8]) -> &mut Self {
        self.put(
            path,
            Kind::File {
                size: bytes.len() as u64,
            },
            0o755,
        );
        self.src.0.insert(
            path.trim_start_matches('/').as_bytes().to_vec(),
            bytes.to_vec(),
        );
        self
    }

    pub fn link(&mut self, path: &str, target: &str) -> &mut Self {
        self.put(
            path,
            Kind::Symlink {
                target: target.as_bytes().to_vec(),
            },
            0o777,
        );
        self
    }

    /// Give the entries at `paths` the owner `uid:uid`.
    pub fn owner(&mut self, uid: u64, paths: &[&str]) -> &mut Self {
        for p in paths {
            let rel = p.trim_start_matches('/').as_bytes().to_vec();
            let mut e = self
                .tree
                .get(&rel)
                .cloned()
                .expect("owner of a fixture path");
            e.uid = uid;
            e.gid = uid;
            self.tree.insert(rel, e);
        }
        self
    }

    /// Debian 12 merged-/usr skeleton: /bin, /lib, /lib64, /sbin links.
    pub fn merged_usr(&mut self) -> &mut Self {
        self.dir("/usr/bin")
            .dir("/usr/sbin")
            .dir("/usr/lib/x86_64-linux-gnu")
            .dir("/usr/lib64")
            .link("/bin", "usr/bin")
            .link("/sbin", "usr/sbin")
            .link("/lib", "usr/lib")
            .link("/lib64", "usr/lib64")
    }

    pub fn builder(&self, env: &[&str]) -> ClosureBuilder<'_> {
        let spec = ExecSpec {
            env: env.iter().map(|s| (*s).to_owned()).collect(),
            ..ExecSpec::default()
        };
        ClosureBuilder::new(&self.tree, &self.src, &spec)
    }
}

fn entry(kind: Kind, mode: u32, inode: u64) -> Entry {
    Entry {
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: BTreeMap::new(),
        inode,
        layer: 0,
    }
}

/// A minimal ELF64 little-endian shared object: PT_LOAD over the file, optional PT_INTERP,
/// PT_DYNAMIC with DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_STRTAB, DT_STRSZ. No sections.
#[derive(Default, Clone)]
pub(crate) struct ElfSpec<'a> {
    pub interp: Option<&'a str>,
    pub needed: &'a [&'a str],
    pub rpath: Option<&'a str>,
    pub runpath: Option<&'a str>,
    pub machine: Option<u16>,
}

pub(crate) fn make_elf(spec: &ElfSpec) -> Vec<u8> {
    let phnum = if spec.interp.is_some() { 3 } else { 2 };
    let ph_end = 64 + 56 * phnum;
    let mut strtab = vec![0u8];
    let mut add = |s: &str| {
        let off = strtab.len() as u64;
        strtab.extend_from_slice(s.as_bytes());
        strtab.push(0);
        off
    };
    let mut dyns: Vec<(u64, u64)> = Vec::new();
    for n in spec.needed {
        dyns.push((1, add(n)));
    }
    if let Some(r) = spec.rpath {
        dyns.push((15, add(r)));
    }
    if let Some(r) = spec.runpath {
        dyns.push((29, add(r)));
    }
    let interp_off = ph_end as u64;
    let interp_bytes: Vec<u8> = spec
        .interp
        .map(|i| [i.as_bytes(), b"\0"].concat())
        .unwrap_or_default();
    let str_off = interp_off + interp_bytes.len() as u64;
    let dyn_off = (str_off + strtab.len() as u64).next_multiple_of(8);
    dyns.push((5, str_off));
    dyns.push((10, strtab.len() as u64));
    dyns.push((0, 0));
    let total = dyn_off + 16 * dyns.len() as u64;

    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
    b.extend_from_slice(&spec.machine.unwrap_or(EM_X86_64).to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // entry
    b.extend_from_slice(&64u64.to_le_bytes()); // phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, phnum as u16, 64, 0, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let ph = |b: &mut Vec<u8>, ty: u32, flags: u32, off: u64, size: u64, align: u64| {
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        for v in [off, off, off, size, size, align] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    };
    if spec.interp.is_some() {
        ph(&mut b, 3, 4, interp_off, interp_bytes.len() as u64, 1);
    }
    ph(&mut b, 1, 5, 0, total, 0x1000);
    ph(&mut b, 2, 6, dyn_off, 16 * dyns.len() as u64, 8);
    b.extend_from_slice(&interp_bytes);
    b.extend_from_slice(&strtab);
    b.resize(dyn_off as usize, 0);
    for (t, v) in dyns {
        b.extend_from_slice(&t.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

pub(crate) fn lib(needed: &[&str]) -> Vec<u8> {
    make_elf(&ElfSpec {
        needed,
        ..Default::default()
    })
}

/// A 32-bit i386 ELF header, enough for the class check.
fn elf32() -> Vec<u8> {
    let mut h = vec![0u8; 52];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 1;
    h[5] = 1;
    h[6] = 1;
    h[16] = 3;
    h[18..20].copy_from_slice(&elf::EM_386.to_le_bytes());
    h
}

fn kept(c: &Closure) -> Vec<String> {
    c.kept
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn has(c: &Closure, p: &str) -> bool {
    c.kept.contains_key(p.trim_start_matches('/').as_bytes())
}

const X64: Target = Target {
    class64: true,
    machine: EM_X86_64,
};

#[test]
fn synthetic_elf_parses() {
    let bytes = make_elf(&ElfSpec {
        interp: Some("/lib64/ld-linux-x86-64.so.2"),
        needed: &["libfoo.so.1", "libc.so.6"],
        rpath: Some("/opt/a:$ORIGIN/../lib"),
        runpath: Some("/opt/r"),
        machine: None,
    });
    let info = elf::parse(&bytes).expect("parses");
    assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    assert_eq!(info.needed, ["libfoo.so.1", "libc.so.6"]);
    assert_eq!(info.rpath, ["/opt/a", "$ORIGIN/../lib"]);
    assert_eq!(info.runpath, ["/opt/r"]);
    assert!(info.class64);
}

#[test]
fn expand_dst_table() {
    let cases: &[(&str, &[&str])] = &[
        ("$ORIGIN/../lib", &["/app/bin/../lib"]),
        ("${ORIGIN}/x", &["/app/bin/x"]),
        ("/opt/$PLATFORM", &["/opt/x86_64"]),
        (
            "/usr/$LIB/foo",
            &[
                "/usr/lib/x86_64-linux-gnu/foo",
                "/usr/lib64/foo",
                "/usr/lib/foo",
            ],
        ),
        ("/plain", &["/plain"]),
        ("$UNKNOWN/x", &["$UNKNOWN/x"]),
        ("${BROKEN", &["${BROKEN"]),
    ];
    for (input, want) in cases {
        assert_eq!(ldso::expand_dst(input, "/app/bin", X64), *want, "{input}");
    }
}

/// Search-order table: which directory a DT_NEEDED is found in, for a given chain.
#[test]
fn search_order_table() {
    let mut fx = Fx::new();
    let l = lib(&[]);
    for d in [
        "/opt/rp",
        "/opt/llp",
        "/opt/run",
        "/opt/loader",
        "/usr/lib/x86_64-linux-gnu",
    ] {
        fx.file(&format!("{d}/libz.so.1"), &l);
    }
    fx.file("/opt/only-rp/libonly.so", &l);
    let s = |llp: Option<&str>| LdSearch::new(&fx.tree, &fx.src, llp);
    let obj = |rpath: &[&str], runpath: &[&str]| Loader {
        origin: "/app".into(),
        rpath: rpath.iter().map(|s| (*s).into()).collect(),
        runpath: runpath.iter().map(|s| (*s).into()).collect(),
    };
    struct Case {
        what: &'static str,
        llp: Option<&'static str>,
        chain: Vec<Loader>,
        name: &'static str,
        want: Option<&'static str>,
    }
    let cases = vec![
        Case {
            what: "RPATH before LD_LIBRARY_PATH",
            llp: Some("/opt/llp"),
            chain: vec![obj(&["/opt/rp"], &[])],
            name: "libz.so.1",
            want: Some("/opt/rp/libz.so.1"),
        },
        Case {
            what: "RUNPATH disables RPATH, LD_LIBRARY_PATH first",
            llp: Some("/opt/llp"),
            chain: vec![obj(&["/opt/rp"], &["/opt/run"])],
            name: "libz.so.1",
            want: Some("/opt/llp/libz.so.1"),
        },
        Case {
            what: "RUNPATH before the default dirs",
            llp: None,
            chain: vec![obj(&["/opt/rp"], &["/opt/run"])],
            name: "libz.so.1",
            want: Some("/opt/run/libz.so.1"),
        },
        Case {
            what: "RPATH inherited from the loader",
            llp: Some("/opt/llp"),
            chain: vec![obj(&[], &[]), obj(&["/opt/loader"], &[])],
            name: "libz.so.1",
            want: Some("/opt/loader/libz.so.1"),
        },
        Case {
            what: "loader RPATH ignored when the object has RUNPATH",
            llp: None,
            chain: vec![obj(&[], &["/nonexistent"]), obj(&["/opt/only-rp"], &[])],
            name: "libonly.so",
            want: None,
        },
        Case {
            what: "loader's RPATH ignored when the loader has RUNPATH",
            llp: None,
            chain: vec![obj(&[], &[]), obj(&["/opt/only-rp"], &["/x"])],
            name: "libonly.so",
            want: None,
        },
        Case {
            what: "RUNPATH not inherited",
            llp: None,
            chain: vec![obj(&[], &[]), obj(&[], &["/opt/only-rp"])],
            name: "libonly.so",
            want: None,
        },
        Case {
            what: "grandparent RPATH inherited",
            llp: None,
            chain: vec![obj(&[], &[]), obj(&[], &[]), obj(&["/opt/only-rp"], &[])],
            name: "libonly.so",
            want: Some("/opt/only-rp/libonly.so"),
        },
        Case {
            what: "default dirs",
            llp: None,
            chain: vec![obj(&[], &[])],
            name: "libz.so.1",
            want: Some("/usr/lib/x86_64-linux-gnu/libz.so.1"),
        },
        Case {
            what: "name with a slash is a path",
            llp: None,
            chain: vec![obj(&[], &[])],
            name: "/opt/run/libz.so.1",
            want: Some("/opt/run/libz.so.1"),
        },
    ];
    for c in cases {
        let got = s(c.llp).find(c.name, &c.chain, X64, &Flavor::Glibc);
        assert_eq!(got.first().map(String::as_str), c.want, "{}", c.what);
    }
}

#[test]
fn origin_rpath_end_to_end() {
    let mut fx = Fx::new();
    fx.merged_usr();
    fx.file(
        "/app/bin/prog",
        &make_elf(&ElfSpec {
            needed: &["libapp.so"],
            rpath: Some("$ORIGIN/../lib"),
            ..Default::default()
        }),
    );
    // libapp has no RUNPATH: libdeep comes through the inherited RPATH ($ORIGIN of prog).
    fx.file("/app/lib/libapp.so", &lib(&["libdeep.so"]));
    fx.file("/app/lib/libdeep.so", &lib(&[]));
    fx.link("/usr/local/bin/prog", "/app/bin/prog");
    let mut b = fx.builder(&[]);
    assert!(b
        .add_path(b"/usr/local/bin/prog", Reason::Entrypoint)
        .is_some());
    let c = b.finish();
    for p in [
        "usr/local/bin/prog",
        "app/bin/prog",
        "app/lib/libapp.so",
        "app/lib/libdeep.so",
    ] {
        assert!(has(&c, p), "{p} kept: {:?}", kept(&c));
    }
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(
        c.kept[&b"app/lib/libdeep.so"[..]].contains(&Reason::ElfNeeded {
            by: "/app/lib/libapp.so".into(),
            name: "libdeep.so".into()
        })
    );
}

#[test]
fn runpath_not_inherited_end_to_end() {
    let mut fx = Fx::new();
    fx.file(
        "/app/prog",
        &make_elf(&ElfSpec {
            needed: &["libapp.so"],
            runpath: Some("$ORIGIN/lib"),
            ..Default::default()
        }),
    );
    fx.file("/app/lib/libapp.so", &lib(&["libdeep.so"]));
    fx.file("/app/lib/libdeep.so", &lib(&[]));
    let mut b = fx.builder(&[]);
    b.add_path(b"app/prog", Reason::Entrypoint);
    let c = b.finish();
    assert!(has(&c, "app/lib/libapp.so"));
    assert!(!has(&c, "app/lib/libdeep.so"));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].message.contains("libdeep.so"));
}

#[test]
fn ld_library_path_from_env() {
    let mut fx = Fx::new();
    fx.file("/app/prog", &lib(&["libx.so"]));
    fx.file("/opt/x/libx.so", &lib(&[]));
    fx.file("/usr/lib/libx.so", &lib(&[]));
    for (env, want) in [
        (&["LD_LIBRARY_PATH=/nope:/opt/x"][..], "opt/x/libx.so"),
        (&[][..], "usr/lib/libx.so"),
    ] {
        let mut b = fx.builder(env);
        b.add_path(b"/app/prog", Reason::Entrypoint);
        let c = b.finish();
        assert!(has(&c, want), "{env:?}: {:?}", kept(&c));
        assert_eq!(c.kept.keys().filter(|k| k.ends_with(b"libx.so")).count(), 1);
    }
}

#[test]
fn hwcaps_preferred_and_all_kept() {
    let mut fx = Fx::new();
    let l = lib(&[]);
    let d = "/usr/lib/x86_64-linux-gnu";
    fx.file(&format!("{d}/libm.so.6"), &l);
    fx.file(&format!("{d}/glibc-hwcaps/x86-64-v3/libm.so.6"), &l);
    fx.file(&format!("{d}/glibc-hwcaps/x86-64-v2/libm.so.6"), &l);
    let s = LdSearch::new(&fx.tree, &fx.src, None);
    assert_eq!(
        s.find("libm.so.6", &[], X64, &Flavor::Glibc),
        [
            format!("{d}/glibc-hwcaps/x86-64-v3/libm.so.6"),
            format!("{d}/glibc-hwcaps/x86-64-v2/libm.so.6"),
            format!("{d}/libm.so.6"),
        ]
    );
    fx.file("/app/prog", &lib(&["libm.so.6"]));
    let mut b = fx.builder(&[]);
    b.add_path(b"/app/prog", Reason::Entrypoint);
    let c = b.finish();
    assert_eq!(
        c.kept.keys().filter(|k| k.ends_with(b"libm.so.6")).count(),
        3
    );
}

#[test]
fn wrong_class_or_machine_skipped() {
    let mut fx = Fx::new();
    fx.file("/opt/a/libfoo.so", &elf32());
    fx.file(
        "/opt/b/libfoo.so",
        &make_elf(&ElfSpec {
            machine: Some(elf::EM_AARCH64),
            ..Default::default()
        }),
    );
    fx.file(
        "/opt/c/libfoo.so",
        b"/* GNU ld script */ INPUT(libfoo.so.1)",
    );
    fx.file("/usr/lib/libfoo.so", &lib(&[]));
    let chain = [Loader {
        origin: "/".into(),
        rpath: vec!["/opt/a".into(), "/opt/b".into(), "/opt/c".into()],
        runpath: vec![],
    }];
    let s = LdSearch::new(&fx.tree, &fx.src, None);
    assert_eq!(
        s.find("libfoo.so", &chain, X64, &Flavor::Glibc),
        ["/usr/lib/libfoo.so"]
    );
    // The 32-bit search finds the 32-bit one.
    let t32 = Target {
        class64: false,
        machine: elf::EM_386,
    };
    assert_eq!(
        s.find("libfoo.so", &chain, t32, &Flavor::Glibc),
        ["/opt/a/libfoo.so"]
    );
}

#[test]
fn merged_usr_hops_kept() {
    let mut fx = Fx::new();
    fx.merged_usr();
    fx.file("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", &lib(&[]));
    fx.link(
        "/usr/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    fx.file(
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        &lib(&["ld-linux-x86-64.so.2"]),
    );
    fx.file(
        "/usr/bin/true",
        &make_elf(&ElfSpec {
            interp: Some("/lib64/ld-linux-x86-64.so.2"),
            needed: &["libc.so.6"],
            ..Default::default()
        }),
    );
    let mut b = fx.builder(&[]);
    b.add_path(b"/bin/true", Reason::Entrypoint);
    let c = b.finish();
    let want = [
        "bin",
        "lib",
        "lib64",
        "usr",
        "usr/bin",
        "usr/bin/true",
        "usr/lib",
        "usr/lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "usr/lib64",
        "usr/lib64/ld-linux-x86-64.so.2",
    ];
    assert_eq!(kept(&c), want);
    assert!(c.kept[&b"lib64"[..]].contains(&Reason::SymlinkHop {
        to: "usr/lib64".into()
    }));
    assert_eq!(c.kept[&b"usr"[..]], [Reason::Parent].into());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// Hand-built cache: optional old header, new header, entries, strings.
fn tiny_cache(old_header: bool, entries: &[(i32, &str, &str, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    if old_header {
        out.extend_from_slice(b"ld.so-1.7.0\0");
        out.extend_from_slice(&0u32.to_le_bytes());
        while out.len() % 8 != 0 {
            out.push(0);
        }
    }
    let base = out.len();
    let mut strings = Vec::new();
    let str_base = 48 + 24 * entries.len();
    let mut offs = Vec::new();
    for (_, k, v, _) in entries {
        let ko = str_base + strings.len();
        strings.extend_from_slice(k.as_bytes());
        strings.push(0);
        let vo = str_base + strings.len();
        strings.extend_from_slice(v.as_bytes());
        strings.push(0);
        offs.push((ko as u32, vo as u32));
    }
    out.extend_from_slice(b"glibc-ld.so.cache1.1");
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&[0; 16]);
    assert_eq!(out.len() - base, 48);
    for ((flags, _, _, hw), (ko, vo)) in entries.iter().zip(offs) {
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&ko.to_le_bytes());
        out.extend_from_slice(&vo.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&hw.to_le_bytes());
    }
    out.extend_from_slice(&strings);
    out
}

#[test]
fn cache_tiny_both_layouts() {
    let entries = [
        (0x0303, "libfoo.so.1", "/opt/x/libfoo.so.1", 0),
        (0x0003, "libfoo.so.1", "/opt/x32/libfoo.so.1", 0),
    ];
    for old in [false, true] {
        let bytes = tiny_cache(old, &entries);
        let parsed = ldso::parse_ld_so_cache(&bytes).expect("parses");
        assert_eq!(
            parsed,
            entries
                .iter()
                .map(|(f, k, v, h)| CacheEntry {
                    flags: *f,
                    key: (*k).into(),
                    value: (*v).into(),
                    hwcap: *h
                })
                .collect::<Vec<_>>(),
            "old header: {old}"
        );
        // Every truncation fails cleanly (or parses a prefix-consistent table), never panics.
        for cut in 0..bytes.len() {
            let _ = ldso::parse_ld_so_cache(&bytes[..cut]);
        }
        assert!(ldso::parse_ld_so_cache(&bytes[..bytes.len() - 3]).is_err());
    }
    assert_eq!(
        ldso::parse_ld_so_cache(b"garbage"),
        Err(ldso::CacheError::BadMagic)
    );
}

#[test]
fn cache_used_with_flags_and_hwcaps() {
    let mut fx = Fx::new();
    let l = lib(&[]);
    fx.file("/opt/x/libfoo.so.1", &l);
    fx.file("/opt/x32/libfoo.so.1", &elf32());
    fx.file("/opt/hw/libfoo.so.1", &l);
    fx.file("/usr/lib/libfoo.so.1", &l);
    fx.file(
        "/etc/ld.so.cache",
        &tiny_cache(
            false,
            &[
                (0x0003, "libfoo.so.1", "/opt/x32/libfoo.so.1", 0),
                (
                    0x0303,
                    "libfoo.so.1",
                    "/opt/hw/libfoo.so.1",
                    ldso::DL_CACHE_HWCAP_EXTENSION,
                ),
                (0x0303, "libfoo.so.1", "/opt/x/libfoo.so.1", 0),
                (0x0303, "libgone.so", "/opt/gone/libgone.so", 0),
            ],
        ),
    );
    fx.file("/usr/lib/libgone.so", &l);
    let s = LdSearch::new(&fx.tree, &fx.src, None);
    assert!(s.has_cache());
    assert_eq!(
        s.find("libfoo.so.1", &[], X64, &Flavor::Glibc),
        ["/opt/hw/libfoo.so.1", "/opt/x/libfoo.so.1"]
    );
    // A stale cache entry falls through to the default directories.
    assert_eq!(
        s.find("libgone.so", &[], X64, &Flavor::Glibc),
        ["/usr/lib/libgone.so"]
    );
}

#[test]
fn host_cache_parses() {
    let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
        eprintln!("skipping: no /etc/ld.so.cache on this host");
        return;
    };
    let entries = ldso::parse_ld_so_cache(&bytes).expect("host cache parses");
    assert!(entries.len() > 10);
    assert!(entries.iter().any(|e| e.key == "libc.so.6"
        && e.value == "/lib/x86_64-linux-gnu/libc.so.6"
        && e.flags == 0x0303));
    for cut in (0..bytes.len()).step_by(61) {
        let _ = ldso::parse_ld_so_cache(&bytes[..cut]);
    }
}

#[test]
fn ld_so_conf_fallback_with_include() {
    let mut fx = Fx::new();
    fx.file(
        "/etc/ld.so.conf",
        b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/late\n",
    );
    fx.file("/etc/ld.so.conf.d/b.conf", b"/opt/b\n");
    fx.file(
        "/etc/ld.so.conf.d/a.conf",
        b"/opt/a # trailing\ninclude a.conf\n",
    );
    fx.file("/etc/ld.so.conf.d/skip.txt", b"/opt/skip\n");
    let dirs = ldso::parse_ld_so_conf(&fx.tree, &fx.src, "/etc/ld.so.conf");
    assert_eq!(dirs, ["/opt/a", "/opt/b", "/opt/late"]);
    // Hostile: every file includes every file; each is read once.
    let mut evil = Fx::new();
    for i in 0..12 {
        evil.file(
            &format!("/etc/ld.so.conf.d/{i}.conf"),
            format!("include /etc/ld.so.conf.d/*.conf\n/opt/{i}\n").as_bytes(),
        );
    }
    evil.file("/etc/ld.so.conf", b"include ld.so.conf.d/*.conf\n");
    assert_eq!(
        ldso::parse_ld_so_conf(&evil.tree, &evil.src, "/etc/ld.so.conf").len(),
        12
    );
    fx.file("/opt/b/libq.so", &lib(&[]));
    fx.file("/usr/lib/libq.so", &lib(&[]));
    let s = LdSearch::new(&fx.tree, &fx.src, None);
    assert_eq!(
        s.find("libq.so", &[], X64, &Flavor::Glibc),
        ["/opt/b/libq.so"]
    );
}

#[test]
fn musl_search() {
    let mut fx = Fx::new();
    fx.file("/lib/ld-musl-x86_64.so.1", &lib(&[]));
    fx.link("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1");
    fx.file("/usr/local/lib/libssl.so.3", &lib(&[]));
    fx.file("/custom/libz.so.1", &lib(&[]));
    fx.file("/usr/lib/libz.so.1", &lib(&[]));
    fx.file(
        "/app/prog",
        &make_elf(&ElfSpec {
            interp: Some("/lib/ld-musl-x86_64.so.1"),
            needed: &["libssl.so.3", "libz.so.1", "libc.musl-x86_64.so.1"],
            ..Default::default()
        }),
    );
    let mut b = fx.builder(&[]);
    b.add_path(b"/app/prog", Reason::Entrypoint);
    let c = b.finish();
    for p in [
        "lib/ld-musl-x86_64.so.1",
        "lib/libc.musl-x86_64.so.1",
        "usr/local/lib/libssl.so.3",
        "usr/lib/libz.so.1",
    ] {
        assert!(has(&c, p), "{p}: {:?}", kept(&c));
    }
    // The path file replaces the default list.
    fx.file(
        "/etc/ld-musl-x86_64.path",
        b"/lib\n/custom:/usr/local/lib\n",
    );
    let mut b = fx.builder(&[]);
    b.add_path(b"/app/prog", Reason::Entrypoint);
    let c = b.finish();
    assert!(has(&c, "custom/libz.so.1") && !has(&c, "usr/lib/libz.so.1"));
    assert_eq!(
        Flavor::from_interp(Some("/lib/ld-musl-aarch64.so.1")),
        Flavor::Musl {
            arch: "aarch64".into()
        }
    );
}

#[test]
fn shebang_with_env_and_direct() {
    let mut fx = Fx::new();
    fx.merged_usr();
    fx.file("/usr/bin/env", &lib(&[]));
    fx.file("/usr/bin/python3.11", &lib(&[]));
    fx.link("/usr/bin/python3", "python3.11");
    fx.file("/usr/bin/dash", &lib(&[]));
    fx.link("/usr/bin/sh", "dash");
    fx.file("/app/run.py", b"#!/usr/bin/env -S python3 -u\nprint(1)\n");
    fx.file("/app/run.sh", b"#! /bin/sh -e\r\necho\n");
    fx.file("/app/bad.py", b"#!/usr/bin/env nosuch\n");
    let mut b = fx.builder(&["PATH=/usr/local/bin:/usr/bin"]);
    b.add_path(b"/app/run.py", Reason::Entrypoint);
    b.add_path(b"/app/run.sh", Reason::Entrypoint);
    b.add_path(b"/app/bad.py", Reason::Entrypoint);
    let c = b.finish();
    for p in [
        "usr/bin/env",
        "usr/bin/python3",
        "usr/bin/python3.11",
        "bin",
        "usr/bin/dash",
    ] {
        assert!(has(&c, p), "{p}: {:?}", kept(&c));
    }
    // `bin/sh` is kept as a hop of `/bin/sh` (a link inside the linked `/bin`).
    assert!(has(&c, "usr/bin/sh"));
    assert!(
        c.kept[&b"usr/bin/python3.11"[..]].contains(&Reason::Shebang {
            by: "/app/run.py".into()
        })
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].message.contains("nosuch"));
}

#[test]
fn nss_defaults_and_config() {
    let mut fx = Fx::new();
    fx.merged_usr();
    let d = "/usr/lib/x86_64-linux-gnu";
    fx.file(&format!("{d}/libc.so.6"), &lib(&[]));
    fx.file(&format!("{d}/libnss_files.so.2"), &lib(&["libc.so.6"]));
    fx.file(&format!("{d}/libnss_dns.so.2"), &lib(&["libc.so.6"]));
    fx.file(&format!("{d}/libnss_myhostname.so.2"), &lib(&["libc.so.6"]));
    fx.file(&format!("{d}/libnss_systemd.so.2"), &lib(&["libc.so.6"]));
    fx.file("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    fx.file("/etc/group", b"root:x:0:\n");
    fx.file("/etc/shadow", b"root:*:1::::::\n");
    fx.file("/usr/bin/prog", &lib(&["libc.so.6"]));
    // Without nsswitch.conf: files and dns.
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/bin/prog", Reason::Entrypoint);
    b.add_nss();
    let c = b.finish();
    assert!(has(&c, "usr/lib/x86_64-linux-gnu/libnss_files.so.2"));
    assert!(has(&c, "usr/lib/x86_64-linux-gnu/libnss_dns.so.2"));
    assert!(!has(&c, "usr/lib/x86_64-linux-gnu/libnss_systemd.so.2"));
    assert!(has(&c, "etc/passwd") && has(&c, "etc/group"));
    assert!(!has(&c, "etc/shadow"));
    // With one: its services, a missing module reported.
    fx.file(
        "/etc/nsswitch.conf",
        b"passwd: files systemd\nhosts: files myhostname [NOTFOUND=return] mdns4_minimal\n",
    );
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/bin/prog", Reason::Entrypoint);
    b.add_nss();
    let c = b.finish();
    assert!(has(&c, "usr/lib/x86_64-linux-gnu/libnss_systemd.so.2"));
    assert!(has(&c, "usr/lib/x86_64-linux-gnu/libnss_myhostname.so.2"));
    assert!(has(&c, "etc/nsswitch.conf"));
    assert!(
        c.kept[&b"usr/lib/x86_64-linux-gnu/libnss_systemd.so.2"[..]].contains(&Reason::Nss {
            service: "systemd".into()
        })
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].message.contains("libnss_mdns4_minimal.so.2"));
    // No glibc program kept: no modules.
    let mut b = fx.builder(&[]);
    b.add_nss();
    let c = b.finish();
    assert!(!c.kept.keys().any(|k| k.ends_with(b".so.2")));
    assert!(has(&c, "etc/passwd"));
}

#[test]
fn data_rules() {
    let mut fx = Fx::new();
    fx.merged_usr();
    let d = "/usr/lib/x86_64-linux-gnu";
    fx.file(&format!("{d}/libssl.so.3"), &lib(&[]));
    fx.file("/usr/bin/curl", &lib(&["libssl.so.3"]));
    fx.file("/usr/bin/cat", &lib(&[]));
    fx.file("/etc/ssl/certs/ca-certificates.crt", b"PEM");
    fx.file("/etc/ssl/certs/other.pem", b"PEM");
    fx.link("/usr/lib/ssl/certs", "/etc/ssl/certs");
    fx.file("/usr/share/zoneinfo/Europe/Paris", b"TZif");
    fx.file("/usr/share/zoneinfo/Asia/Tokyo", b"TZif");
    fx.link("/etc/localtime", "/usr/share/zoneinfo/Europe/Paris");
    fx.file("/usr/lib/locale/C.utf8/LC_CTYPE", b"x");
    fx.file("/usr/lib/locale/de_DE.utf8/LC_CTYPE", b"x");
    fx.file("/usr/lib/x86_64-linux-gnu/gconv/gconv-modules", b"x");
    fx.file("/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache", b"x");
    fx.file("/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", &lib(&[]));
    fx.file("/usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so", &lib(&[]));
    let env = ["LANG=C.UTF-8", "TZ=:Asia/Tokyo"];
    // A program without TLS: no CA bundle; localtime and the locale still apply.
    let mut b = fx.builder(&env);
    b.add_path(b"/usr/bin/cat", Reason::Entrypoint);
    b.add_data_rules();
    let c = b.finish();
    assert!(!has(&c, "etc/ssl/certs/ca-certificates.crt"));
    assert!(has(&c, "etc/localtime") && has(&c, "usr/share/zoneinfo/Europe/Paris"));
    assert!(has(&c, "usr/share/zoneinfo/Asia/Tokyo"));
    assert!(has(&c, "usr/lib/locale/C.utf8/LC_CTYPE"));
    assert!(!has(&c, "usr/lib/locale/de_DE.utf8/LC_CTYPE"));
    assert!(!has(&c, "usr/lib/x86_64-linux-gnu/gconv/gconv-modules"));
    // With TLS and a gconv module.
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/bin/curl", Reason::Entrypoint);
    b.add_path(
        b"/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so",
        Reason::Entrypoint,
    );
    b.add_data_rules();
    let c = b.finish();
    assert!(has(&c, "etc/ssl/certs/ca-certificates.crt"));
    assert!(has(&c, "etc/ssl/certs") && has(&c, "usr/lib/ssl/certs"));
    assert!(!has(&c, "etc/ssl/certs/other.pem"));
    assert!(
        c.kept[&b"etc/ssl/certs/ca-certificates.crt"[..]].contains(&Reason::Data {
            rule: "ca-bundle".into()
        })
    );
    assert!(has(&c, "usr/lib/x86_64-linux-gnu/gconv/gconv-modules"));
    assert!(has(
        &c,
        "usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache"
    ));
    assert!(!has(&c, "usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so"));
    assert!(!has(&c, "usr/lib/locale/C.utf8/LC_CTYPE"));
    assert!(!has(&c, "tmp"), "no /tmp in this image: none added");
    // Scratch dirs are kept empty, with their own metadata.
    fx.dir("/tmp");
    fx.file("/tmp/leftover", b"x");
    fx.link("/var/run", "/run");
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/bin/cat", Reason::Entrypoint);
    b.add_data_rules();
    let c = b.finish();
    assert!(c.kept[&b"tmp"[..]].contains(&Reason::Data {
        rule: "scratch-dir".into()
    }));
    assert!(!has(&c, "tmp/leftover") && !has(&c, "var/run"));
    // PostgreSQL's server brings PL/pgSQL, present in every database.
    fx.file("/usr/lib/postgresql/15/bin/postgres", &lib(&[]));
    fx.file("/usr/lib/postgresql/15/bin/psql", &lib(&[]));
    fx.file("/usr/lib/postgresql/15/lib/plpgsql.so", &lib(&[]));
    fx.file("/usr/lib/postgresql/15/lib/llvmjit.so", &lib(&[]));
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/lib/postgresql/15/bin/psql", Reason::Entrypoint);
    b.add_data_rules();
    assert!(!has(&b.finish(), "usr/lib/postgresql/15/lib/plpgsql.so"));
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/lib/postgresql/15/bin/postgres", Reason::Entrypoint);
    b.add_data_rules();
    let c = b.finish();
    assert!(has(&c, "usr/lib/postgresql/15/lib/plpgsql.so"));
    assert!(!has(&c, "usr/lib/postgresql/15/lib/llvmjit.so"));
    // A JVM brings its security configuration (through Debian's links to /etc).
    let jh = "/usr/lib/jvm/java-17-openjdk-amd64";
    fx.file(&format!("{jh}/lib/server/libjvm.so"), &lib(&[]));
    fx.file("/etc/java-17-openjdk/security/java.security", b"conf");
    fx.link(
        &format!("{jh}/conf/security/java.security"),
        "/etc/java-17-openjdk/security/java.security",
    );
    fx.file("/etc/ssl/certs/java/cacerts", b"ks");
    fx.link(
        &format!("{jh}/lib/security/cacerts"),
        "/etc/ssl/certs/java/cacerts",
    );
    fx.file(&format!("{jh}/lib/security/public_suffix_list.dat"), b"big");
    let mut b = fx.builder(&[]);
    b.add_path(
        format!("{jh}/lib/server/libjvm.so").as_bytes(),
        Reason::Entrypoint,
    );
    b.add_data_rules();
    let c = b.finish();
    assert!(has(&c, "etc/java-17-openjdk/security/java.security"));
    assert!(has(
        &c,
        "usr/lib/jvm/java-17-openjdk-amd64/conf/security/java.security"
    ));
    assert!(has(&c, "etc/ssl/certs/java/cacerts"));
    assert!(!has(
        &c,
        "usr/lib/jvm/java-17-openjdk-amd64/lib/security/public_suffix_list.dat"
    ));
}

#[test]
fn locale_candidate_names() {
    assert_eq!(
        super::closure::locale_candidates("en_US.UTF-8@euro"),
        [
            "/usr/lib/locale/en_US.UTF-8@euro",
            "/usr/lib/locale/en_US.utf8@euro",
            "/usr/lib/locale/en_US.UTF-8",
            "/usr/lib/locale/en_US.utf8",
            "/usr/lib/locale/en_US",
            "/usr/lib/locale/en",
        ]
    );
}

#[test]
fn add_tree_follows_links_and_parents_have_metadata() {
    let mut fx = Fx::new();
    fx.dir("/srv/www");
    fx.file("/srv/www/index.html", b"hi");
    fx.file("/data/shared.css", b"css");
    fx.link("/srv/www/style.css", "/data/shared.css");
    fx.file("/other/x", b"x");
    let mut b = fx.builder(&[]);
    b.add_tree(b"/srv/www", Reason::Entrypoint);
    let c = b.finish();
    assert_eq!(
        kept(&c),
        [
            "data",
            "data/shared.css",
            "srv",
            "srv/www",
            "srv/www/index.html",
            "srv/www/style.css"
        ]
    );
    assert_eq!(c.kept[&b"data"[..]], [Reason::Parent].into());
    // Parents come with the tree's own metadata (the output reads it from the tree).
    assert_eq!(
        fx.tree.get(b"data").map(|e| (e.is_dir(), e.mode)),
        Some((true, 0o755))
    );
    assert_eq!(fx.tree.get(b"srv/www").map(|e| e.mode), Some(0o750));
}

/// The host's `/usr/bin/ls` with its libraries at their Debian 12 paths, the real
/// `/etc/ld.so.cache` and merged-/usr links: the closure must equal `ldd /usr/bin/ls`.
#[test]
fn real_ls_matches_ldd() {
    let Ok(out) = std::process::Command::new("ldd")
        .arg("/usr/bin/ls")
        .output()
    else {
        eprintln!("skipping: ldd not available");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // Lines: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `/lib64/ld-linux... (0x..)`.
    let mut ldd: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, r)) => r.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect();
    assert!(ldd.len() >= 3, "ldd output: {text}");
    let mut fx = Fx::new();
    fx.merged_usr();
    let host = |p: &str| std::fs::read(p).unwrap_or_else(|e| panic!("reading {p}: {e}"));
    let canon = |p: &str| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .to_string_lossy()
            .into_owned()
    };
    fx.file("/usr/bin/ls", &host("/usr/bin/ls"));
    fx.file("/etc/ld.so.cache", &host("/etc/ld.so.cache"));
    for p in &ldd {
        // Place each library at its real (usr) location, with the soname link if the
        // host has one.
        let real = canon(p);
        fx.file(&real, &host(&real));
        let under_usr = if p.starts_with("/usr/") {
            p.clone()
        } else {
            format!("/usr{p}")
        };
        // Copy the host's link chain from the /usr path to the real file.
        let mut q = under_usr;
        for _ in 0..8 {
            let Ok(t) = std::fs::read_link(&q) else { break };
            let t = t.to_string_lossy().into_owned();
            fx.link(&q, &t);
            let next = if t.starts_with('/') {
                t
            } else {
                ldso::join(&ldso::dir_of(&q), &t)
            };
            q = if next.starts_with("/usr/") {
                next
            } else {
                format!("/usr{next}")
            };
        }
    }
    let mut b = fx.builder(&[]);
    b.add_path(b"/usr/bin/ls", Reason::Entrypoint);
    let c = b.finish();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Every file ldd names is kept, by its path and its real location.
    for p in &ldd {
        assert!(
            has(&c, p.trim_start_matches('/').trim_start_matches("usr/"))
                || has(&c, &format!("usr{p}")),
            "{p} not kept: {:?}",
            kept(&c)
        );
        assert!(has(&c, &canon(p)), "{p} target not kept");
    }
    // And nothing else besides directories, links and ls itself.
    let files: Vec<String> = c
        .kept
        .keys()
        .filter(|k| matches!(fx.tree.get(k).map(|e| &e.kind), Some(Kind::File { .. })))
        .map(|k| format!("/{}", String::from_utf8_lossy(k)))
        .collect();
    let mut want: Vec<String> = ldd.iter().map(|p| canon(p)).collect();
    want.push("/usr/bin/ls".into());
    want.sort();
    want.dedup();
    ldd.sort();
    assert_eq!(files, want, "ldd: {ldd:?}");
    // The merged-/usr links the loader goes through are kept.
    for hop in ["lib64", "lib", "usr/lib64/ld-linux-x86-64.so.2"] {
        assert!(c.kept[hop.as_bytes()]
            .iter()
            .any(|r| matches!(r, Reason::SymlinkHop { .. })));
    }
}

/// Reads tree paths from the host root: for the host-as-image oracle test only.
struct HostSource;

impl crate::rootfs::FileSource for HostSource {
    fn read(&self, path: &[u8]) -> std::io::Result<Vec<u8>> {
        std::fs::read(format!("/{}", String::from_utf8_lossy(path)))
    }
    fn open(&self, path: &[u8]) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(std::fs::File::open(format!(
            "/{}",
            String::from_utf8_lossy(path)
        ))?))
    }
}

fn host_tree(roots: &[&str]) -> Tree {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mut t = Tree::new();
    let mut stack: Vec<std::path::PathBuf> = roots.iter().map(std::path::PathBuf::from).collect();
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p.as_os_str().as_bytes()[1..].to_vec();
        let kind = if md.file_type().is_symlink() {
            let Ok(target) = std::fs::read_link(&p) else {
                continue;
            };
            Kind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
            }
            Kind::Dir
        } else if md.is_file() {
            Kind::File { size: md.len() }
        } else {
            continue;
        };
        let inode = t.new_inode();
        t.insert(rel, entry(kind, md.permissions().mode() & 0o7777, inode));
    }
    t
}

/// The host root as an image: for every ELF program in /usr/bin and /usr/sbin, the ELF files
/// of the closure equal the files `ldd` loads. Slow (walks /usr): run with `--ignored`.
#[test]
#[ignore = "walks the host's /usr and runs ldd per program"]
fn host_root_matches_ldd_for_every_program() {
    let tree = host_tree(&["/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin"]);
    let src = HostSource;
    let spec = ExecSpec::default();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    let progs: Vec<Vec<u8>> = tree
        .iter()
        .filter(|(k, e)| {
            (k.starts_with(b"usr/bin/") || k.starts_with(b"usr/sbin/"))
                && matches!(e.kind, Kind::File { .. })
        })
        .map(|(k, _)| k.clone())
        .collect();
    for prog in progs {
        let abs = format!("/{}", String::from_utf8_lossy(&prog));
        let Ok(bytes) = std::fs::read(&abs) else {
            continue;
        };
        if elf::parse(&bytes).is_none_or(|i| i.interp.is_none()) {
            continue;
        }
        let Ok(out) = std::process::Command::new("ldd").arg(&abs).output() else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("not found") || !out.status.success() {
            continue;
        }
        let mut want: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let p = match l.split_once("=>") {
                    Some((_, r)) => r.split_whitespace().next()?,
                    None => l.split_whitespace().next()?,
                };
                p.starts_with('/').then(|| p.to_owned())
            })
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        want.push(abs.clone());
        want.sort();
        want.dedup();
        let mut b = ClosureBuilder::new(&tree, &src, &spec);
        b.add_path(abs.as_bytes(), Reason::Entrypoint);
        let c = b.finish();
        let got: Vec<String> = c
            .kept
            .keys()
            .filter(|k| matches!(tree.get(k).map(|e| &e.kind), Some(Kind::File { .. })))
            .map(|k| format!("/{}", String::from_utf8_lossy(k)))
            .collect();
        checked += 1;
        if got != want {
            mismatches.push(format!("{abs}: got {got:?} want {want:?}"));
        }
    }
    eprintln!("checked {checked} programs");
    assert!(checked > 50, "only {checked} programs checked");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn preloads() {
    let mut fx = Fx::new();
    fx.merged_usr();
    let d = "/usr/lib/x86_64-linux-gnu";
    fx.file(&format!("{d}/libc.so.6"), &lib(&[]));
    fx.file(&format!("{d}/libjemalloc.so.2"), &lib(&["libc.so.6"]));
    fx.file("/opt/hook.so", &lib(&["libdep.so"]));
    fx.file(&format!("{d}/libdep.so"), &lib(&[]));
    fx.file("/etc/ld.so.preload", b"# hooks\n/opt/hook.so\n");
    fx.file("/usr/bin/prog", &lib(&["libc.so.6"]));
    let mut b = fx.builder(&["LD_PRELOAD=libjemalloc.so.2 libmissing.so"]);
    b.add_path(b"/usr/bin/prog", Reason::Entrypoint);
    b.add_preloads();
    let c = b.finish();
    for p in [
        "usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "opt/hook.so",
        "usr/lib/x86_64-linux-gnu/libdep.so",
        "etc/ld.so.preload",
    ] {
        assert!(has(&c, p), "{p}: {:?}", kept(&c));
    }
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].message.contains("libmissing.so"));
}

#[test]
fn needed_library_already_kept_under_its_name_is_not_a_warning() {
    let mut fx = Fx::new();
    fx.merged_usr();
    // A JVM layout: libjava.so needs libjvm.so, which lives in server/ and is not on its
    // search path; the launcher dlopens it first, and ld.so reuses it by soname.
    fx.file(
        "/opt/jdk/lib/libjava.so",
        &lib(&["libjvm.so", "libmissing.so"]),
    );
    fx.file("/opt/jdk/lib/server/libjvm.so", &lib(&[]));
    let mut b = fx.builder(&[]);
    b.add_path(b"/opt/jdk/lib/server/libjvm.so", Reason::Entrypoint);
    b.add_path(b"/opt/jdk/lib/libjava.so", Reason::Entrypoint);
    let c = b.finish();
    let msgs: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(!msgs.iter().any(|m| m.contains("libjvm.so")), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("`libmissing.so` not found")),
        "{msgs:?}"
    );
}
