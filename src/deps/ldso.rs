//! The dynamic loader's library search, over the image tree: glibc's `ld.so` order (DT_RPATH
//! chain, LD_LIBRARY_PATH, DT_RUNPATH, `/etc/ld.so.cache`, default directories, glibc-hwcaps
//! subdirectories) and musl's (LD_LIBRARY_PATH, RPATH/RUNPATH chain, `/etc/ld-musl-ARCH.path`).
//!
//! Nothing here reads the host: every candidate is looked up in the [`Tree`] and its ELF header
//! read from the [`FileSource`].

use super::elf::{self, EM_386, EM_AARCH64, EM_ARM, EM_X86_64};
use crate::rootfs::{FileSource, Kind, Tree};
use std::io::Read;

/// Entry type: ELF object for glibc (libc6).
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// Plain ELF (accepted by every glibc loader).
pub const FLAG_ELF: i32 = 0x0001;
pub const FLAG_TYPE_MASK: i32 = 0x00ff;
pub const FLAG_REQUIRED_MASK: i32 = 0xff00;
pub const FLAG_X8664_LIB64: i32 = 0x0300;
pub const FLAG_ARM_LIBHF: i32 = 0x0900;
pub const FLAG_AARCH64_LIB64: i32 = 0x0a00;
/// `hwcap` bit marking a glibc-hwcaps subdirectory entry (glibc 2.33+).
pub const DL_CACHE_HWCAP_EXTENSION: u64 = 1 << 62;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// `struct cache_file_new`: magic+version (20), nlibs, len_strings, flags+pad (4),
/// extension_offset, unused[3].
const NEW_HEADER_LEN: usize = 48;
/// `struct file_entry_new`: flags, key, value, osversion, hwcap (u64).
const NEW_ENTRY_LEN: usize = 24;
/// `struct cache_file`: magic (11, padded to 12), nlibs.
const OLD_HEADER_LEN: usize = 16;
/// `struct file_entry`: flags, key, value.
const OLD_ENTRY_LEN: usize = 12;

/// One `ld.so.cache` record: library name → path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub flags: i32,
    /// The soname (`libc.so.6`).
    pub key: String,
    /// The absolute path (`/lib/x86_64-linux-gnu/libc.so.6`).
    pub value: String,
    /// 0, or [`DL_CACHE_HWCAP_EXTENSION`] plus a glibc-hwcaps subdirectory index.
    pub hwcap: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error(
        "reading `ld.so.cache`: unknown magic (expected `ld.so-1.7.0` or `glibc-ld.so.cache1.1`)"
    )]
    BadMagic,
    #[error("reading `ld.so.cache`: {what} at offset {offset} is past the end ({size} bytes)")]
    OutOfBounds {
        what: &'static str,
        offset: u64,
        size: usize,
    },
    #[error("reading `ld.so.cache`: string at offset {offset} has no terminating NUL")]
    Unterminated { offset: u64 },
    #[error("reading `ld.so.cache`: big-endian caches are not supported")]
    BigEndian,
}

fn u32_at(b: &[u8], off: usize, what: &'static str) -> Result<u32, CacheError> {
    b.get(off..off.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(CacheError::OutOfBounds {
            what,
            offset: off as u64,
            size: b.len(),
        })
}

fn u64_at(b: &[u8], off: usize, what: &'static str) -> Result<u64, CacheError> {
    b.get(off..off.saturating_add(8))
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(CacheError::OutOfBounds {
            what,
            offset: off as u64,
            size: b.len(),
        })
}

fn cstr_at(b: &[u8], base: usize, rel: u32) -> Result<String, CacheError> {
    let off = base.saturating_add(rel as usize);
    let rest = b.get(off..).ok_or(CacheError::OutOfBounds {
        what: "string",
        offset: off as u64,
        size: b.len(),
    })?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or(CacheError::Unterminated { offset: off as u64 })?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Parse `/etc/ld.so.cache` bytes: the new format (`glibc-ld.so.cache1.1`), alone or after
/// an old `ld.so-1.7.0` table, or the old format alone. Every offset is bounds-checked.
pub fn parse_ld_so_cache(bytes: &[u8]) -> Result<Vec<CacheEntry>, CacheError> {
    let mut new_at = None;
    if bytes.starts_with(NEW_MAGIC) {
        new_at = Some(0);
    } else if bytes.starts_with(OLD_MAGIC) {
        let nlibs = u32_at(bytes, 12, "old entry count")? as usize;
        let end_old = nlibs
            .checked_mul(OLD_ENTRY_LEN)
            .and_then(|n| n.checked_add(OLD_HEADER_LEN))
            .filter(|&n| n <= bytes.len())
            .ok_or(CacheError::OutOfBounds {
                what: "old entry table",
                offset: OLD_HEADER_LEN as u64,
                size: bytes.len(),
            })?;
        // The new table follows, aligned like `struct cache_file_new` (8 bytes).
        let aligned = end_old.next_multiple_of(8);
        if bytes
            .get(aligned..)
            .is_some_and(|r| r.starts_with(NEW_MAGIC))
        {
            new_at = Some(aligned);
        } else {
            // Old format only: string offsets are relative to the end of the entry table.
            let mut out = Vec::with_capacity(nlibs);
            for i in 0..nlibs {
                let e = OLD_HEADER_LEN + i * OLD_ENTRY_LEN;
                let flags = u32_at(bytes, e, "entry flags")? as i32;
                let key = cstr_at(bytes, end_old, u32_at(bytes, e + 4, "entry key")?)?;
                let value = cstr_at(bytes, end_old, u32_at(bytes, e + 8, "entry value")?)?;
                out.push(CacheEntry {
                    flags,
                    key,
                    value,
                    hwcap: 0,
                });
            }
            return Ok(out);
        }
    }
    let base = new_at.ok_or(CacheError::BadMagic)?;
    let nlibs = u32_at(bytes, base + 20, "entry count")? as usize;
    let endian = bytes.get(base + 28).copied().unwrap_or(0);
    if endian == 3 {
        return Err(CacheError::BigEndian);
    }
    let table_end = nlibs
        .checked_mul(NEW_ENTRY_LEN)
        .and_then(|n| n.checked_add(base + NEW_HEADER_LEN))
        .filter(|&n| n <= bytes.len())
        .ok_or(CacheError::OutOfBounds {
            what: "entry table",
            offset: (base + NEW_HEADER_LEN) as u64,
            size: bytes.len(),
        })?;
    let _ = table_end;
    let mut out = Vec::with_capacity(nlibs);
    for i in 0..nlibs {
        let e = base + NEW_HEADER_LEN + i * NEW_ENTRY_LEN;
        let flags = u32_at(bytes, e, "entry flags")? as i32;
        // New-format string offsets are relative to the start of the new header.
        let key = cstr_at(bytes, base, u32_at(bytes, e + 4, "entry key")?)?;
        let value = cstr_at(bytes, base, u32_at(bytes, e + 8, "entry value")?)?;
        let hwcap = u64_at(bytes, e + 16, "entry hwcap")?;
        out.push(CacheEntry {
            flags,
            key,
            value,
            hwcap,
        });
    }
    Ok(out)
}

/// Class and machine of the object whose dependencies are searched: candidates must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub class64: bool,
    pub machine: u16,
}

impl Target {
    /// The cache flags the glibc loader for this target accepts besides plain `FLAG_ELF`
    /// (`_DL_CACHE_DEFAULT_ID`); `None` when unknown (then any libc6 entry, checked by header).
    fn cache_id(self) -> Option<i32> {
        match (self.machine, self.class64) {
            (EM_X86_64, true) => Some(FLAG_ELF_LIBC6 | FLAG_X8664_LIB64),
            (EM_386, false) => Some(FLAG_ELF_LIBC6),
            (EM_AARCH64, true) => Some(FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64),
            (EM_ARM, false) => Some(FLAG_ELF_LIBC6 | FLAG_ARM_LIBHF),
            _ => None,
        }
    }

    /// Debian multiarch triplet.
    fn triplet(self) -> Option<&'static str> {
        Some(match (self.machine, self.class64) {
            (EM_X86_64, true) => "x86_64-linux-gnu",
            (EM_X86_64, false) => "x86_64-linux-gnux32",
            (EM_386, false) => "i386-linux-gnu",
            (EM_AARCH64, true) => "aarch64-linux-gnu",
            (EM_ARM, false) => "arm-linux-gnueabihf",
            (21, true) => "powerpc64le-linux-gnu",
            (22, true) => "s390x-linux-gnu",
            (243, true) => "riscv64-linux-gnu",
            _ => return None,
        })
    }

    /// `$PLATFORM`.
    fn platform(self) -> &'static str {
        match (self.machine, self.class64) {
            (EM_X86_64, true) => "x86_64",
            (EM_386, false) => "i686",
            (EM_AARCH64, true) => "aarch64",
            (EM_ARM, false) => "v7l",
            _ => "unknown",
        }
    }

    /// `$LIB` candidates: the slibdir basename differs between distributions (Debian
    /// `lib/x86_64-linux-gnu`, Fedora `lib64`), so every plausible one is tried.
    fn lib_candidates(self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(t) = self.triplet() {
            v.push(format!("lib/{t}"));
        }
        v.push(if self.class64 { "lib64" } else { "lib" }.to_owned());
        if self.class64 {
            v.push("lib".to_owned());
        }
        v
    }

    /// glibc-hwcaps subdirectories, most capable first.
    fn hwcaps(self) -> &'static [&'static str] {
        match (self.machine, self.class64) {
            (EM_X86_64, true) => &["x86-64-v4", "x86-64-v3", "x86-64-v2"],
            (21, true) => &["power10", "power9"],
            (22, true) => &["z16", "z15", "z14", "z13"],
            _ => &[],
        }
    }

    /// glibc's default directories. Debian builds its glibc with multiarch slibdir/libdir,
    /// other distributions with `lib64` or `lib`: all are listed, in that order.
    fn default_dirs(self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(t) = self.triplet() {
            v.push(format!("/lib/{t}"));
            v.push(format!("/usr/lib/{t}"));
        }
        if self.class64 {
            v.push("/lib64".to_owned());
            v.push("/usr/lib64".to_owned());
        }
        v.push("/lib".to_owned());
        v.push("/usr/lib".to_owned());
        v
    }
}

/// Which loader resolves the object's dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    Glibc,
    /// musl, with the arch named in its interpreter (`ld-musl-<arch>.so.1`).
    Musl {
        arch: String,
    },
}

impl Flavor {
    /// The flavor implied by a PT_INTERP path (glibc when absent or not musl's).
    pub fn from_interp(interp: Option<&str>) -> Flavor {
        match interp {
            Some(i) if elf::is_musl_interp(i) => {
                let base = i.rsplit('/').next().unwrap_or(i);
                let arch = base
                    .strip_prefix("ld-musl-")
                    .and_then(|s| s.strip_suffix(".so.1"))
                    .unwrap_or("")
                    .to_owned();
                Flavor::Musl { arch }
            }
            _ => Flavor::Glibc,
        }
    }
}

/// One object of a loader chain: where it was found and its search paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loader {
    /// `$ORIGIN`: absolute directory of the object's path as found.
    pub origin: String,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

/// Absolute directory of an absolute path (`/usr/bin/ls` → `/usr/bin`).
pub fn dir_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// `dir/name`, without doubled slashes.
pub fn join(dir: &str, name: &str) -> String {
    let d = dir.trim_end_matches('/');
    format!("{d}/{}", name.trim_start_matches('/'))
}

/// Expand `$ORIGIN`, `$LIB` and `$PLATFORM` (also `${...}`) in one search directory.
/// `$LIB` yields several candidates; unknown variables stay as written.
pub fn expand_dst(s: &str, origin: &str, target: Target) -> Vec<String> {
    let mut outs = vec![String::new()];
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        for o in &mut outs {
            o.push_str(&rest[..i]);
        }
        let after = &rest[i + 1..];
        let (var, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(j) => (&inner[..j], j + 2),
                None => ("", 0),
            }
        } else {
            let j = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..j], j)
        };
        let values: Vec<String> = match var {
            "ORIGIN" => vec![origin.trim_end_matches('/').to_owned()],
            "LIB" => target.lib_candidates(),
            "PLATFORM" => vec![target.platform().to_owned()],
            _ => vec![format!("${}", &after[..len])],
        };
        outs = outs
            .iter()
            .flat_map(|o| values.iter().map(move |v| format!("{o}{v}")))
            .collect();
        rest = &after[len..];
    }
    for o in &mut outs {
        o.push_str(rest);
    }
    outs
}

/// Split a colon (or, for ld.so.conf and musl path files, whitespace/newline) list.
fn split_list(s: &str) -> Vec<String> {
    s.split([':', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The library search over one image tree.
pub struct LdSearch<'a> {
    tree: &'a Tree,
    src: &'a dyn FileSource,
    ld_library_path: Vec<String>,
    cache: Option<Vec<CacheEntry>>,
    /// Why the image's cache was not used, when it exists but does not parse.
    pub cache_error: Option<CacheError>,
    /// Directories from `/etc/ld.so.conf` (used only when the cache is absent).
    conf_dirs: Vec<String>,
}

impl<'a> LdSearch<'a> {
    /// Read the image's `/etc/ld.so.cache` (or, when absent, `/etc/ld.so.conf` with its
    /// includes). `ld_library_path` is the image Env's value.
    pub fn new(tree: &'a Tree, src: &'a dyn FileSource, ld_library_path: Option<&str>) -> Self {
        let mut s = LdSearch {
            tree,
            src,
            ld_library_path: ld_library_path.map(split_list).unwrap_or_default(),
            cache: None,
            cache_error: None,
            conf_dirs: Vec::new(),
        };
        match read_file(tree, src, "/etc/ld.so.cache") {
            Some(bytes) => match parse_ld_so_cache(&bytes) {
                Ok(c) => s.cache = Some(c),
                Err(e) => s.cache_error = Some(e),
            },
            None => {
                s.conf_dirs = parse_ld_so_conf(tree, src, "/etc/ld.so.conf");
            }
        }
        s
    }

    /// Whether the image has a usable ld.so.cache.
    pub fn has_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// Tree path of a regular file reached from `abs`, when it is an ELF of `target`.
    fn verify(&self, abs: &str, target: Target) -> bool {
        let r = self.tree.resolve(abs.as_bytes(), true);
        let Some(p) = r.path else { return false };
        if !matches!(self.tree.get(&p).map(|e| &e.kind), Some(Kind::File { .. })) {
            return false;
        }
        let Ok(mut f) = self.src.open(&p) else {
            return false;
        };
        let mut head = Vec::with_capacity(64);
        if f.by_ref().take(64).read_to_end(&mut head).is_err() {
            return false;
        }
        elf::class_machine(&head) == Some((target.class64, target.machine))
    }

    /// Search one directory: every match, in the loader's order (glibc-hwcaps
    /// subdirectories, most capable first, then the directory itself).
    fn in_dir(&self, dir: &str, name: &str, target: Target, hwcaps: bool) -> Vec<String> {
        let mut found = Vec::new();
        if hwcaps {
            for h in target.hwcaps() {
                let p = join(&join(&join(dir, "glibc-hwcaps"), h), name);
                if self.verify(&p, target) {
                    found.push(p);
                }
            }
        }
        let p = join(dir, name);
        if self.verify(&p, target) {
            found.push(p);
        }
        found
    }

    fn in_dirs<'d>(
        &self,
        dirs: impl IntoIterator<Item = &'d String>,
        origin: &str,
        name: &str,
        target: Target,
        hwcaps: bool,
    ) -> Vec<String> {
        for d in dirs {
            for d in expand_dst(d, origin, target) {
                let f = self.in_dir(&d, name, target, hwcaps);
                if !f.is_empty() {
                    return f;
                }
            }
        }
        Vec::new()
    }

    fn in_cache(&self, name: &str, target: Target) -> Vec<String> {
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        let id = target.cache_id();
        let mut plain = Vec::new();
        let mut hw = Vec::new();
        for e in cache.iter().filter(|e| e.key == name) {
            let ok_flags = match id {
                Some(id) => e.flags == FLAG_ELF || e.flags == id,
                None => matches!(e.flags & FLAG_TYPE_MASK, FLAG_ELF | FLAG_ELF_LIBC6),
            };
            if !ok_flags || !self.verify(&e.value, target) {
                continue;
            }
            let list = if e.hwcap == 0 { &mut plain } else { &mut hw };
            if !list.contains(&e.value) {
                list.push(e.value.clone());
            }
        }
        plain.truncate(1);
        hw.extend(plain);
        hw
    }

    /// Find DT_NEEDED `name` of `chain[0]` (loaded by `chain[1]`, ..., up to the executable)
    /// as the loader of `flavor` would. Returns absolute image paths, possibly through
    /// symlinks, in the loader's preference order: glibc-hwcaps variants first (which one
    /// loads depends on the CPU, so all are returned), then the baseline. Empty when not found.
    pub fn find(
        &self,
        name: &str,
        chain: &[Loader],
        target: Target,
        flavor: &Flavor,
    ) -> Vec<String> {
        let origin = chain.first().map(|l| l.origin.as_str()).unwrap_or("/");
        if name.contains('/') {
            return expand_dst(name, origin, target)
                .into_iter()
                .find(|p| self.verify(p, target))
                .map(|p| vec![if p.starts_with('/') { p } else { join("/", &p) }])
                .unwrap_or_default();
        }
        match flavor {
            Flavor::Glibc => self.find_glibc(name, chain, target),
            Flavor::Musl { arch } => self.find_musl(name, chain, target, arch),
        }
    }

    /// As `dlopen(name)` from code with no RPATH/RUNPATH of its own would: LD_LIBRARY_PATH,
    /// cache, default directories (used for NSS modules).
    pub fn find_dlopen(&self, name: &str, target: Target, flavor: &Flavor) -> Vec<String> {
        self.find(name, &[], target, flavor)
    }

    fn find_glibc(&self, name: &str, chain: &[Loader], target: Target) -> Vec<String> {
        let obj = chain.first();
        // DT_RPATH of the object and of its loaders, only when the object has no DT_RUNPATH.
        // An object that has DT_RUNPATH has its DT_RPATH ignored (glibc get-dynamic-info.h),
        // also when it appears further up the chain.
        if obj.is_none_or(|o| o.runpath.is_empty()) {
            for l in chain.iter().filter(|l| l.runpath.is_empty()) {
                let f = self.in_dirs(&l.rpath, &l.origin, name, target, true);
                if !f.is_empty() {
                    return f;
                }
            }
        }
        let origin = obj.map(|l| l.origin.as_str()).unwrap_or("/");
        let f = self.in_dirs(&self.ld_library_path, origin, name, target, true);
        if !f.is_empty() {
            return f;
        }
        if let Some(o) = obj {
            let f = self.in_dirs(&o.runpath, &o.origin, name, target, true);
            if !f.is_empty() {
                return f;
            }
        }
        if self.cache.is_some() {
            let f = self.in_cache(name, target);
            if !f.is_empty() {
                return f;
            }
        } else {
            let f = self.in_dirs(&self.conf_dirs, origin, name, target, true);
            if !f.is_empty() {
                return f;
            }
        }
        self.in_dirs(&target.default_dirs(), origin, name, target, true)
    }

    fn find_musl(&self, name: &str, chain: &[Loader], target: Target, arch: &str) -> Vec<String> {
        let origin = chain.first().map(|l| l.origin.as_str()).unwrap_or("/");
        let f = self.in_dirs(&self.ld_library_path, origin, name, target, false);
        if !f.is_empty() {
            return f;
        }
        // musl uses DT_RUNPATH when present, else DT_RPATH, of every object up the chain.
        for l in chain {
            let dirs = if l.runpath.is_empty() {
                &l.rpath
            } else {
                &l.runpath
            };
            let f = self.in_dirs(dirs, &l.origin, name, target, false);
            if !f.is_empty() {
                return f;
            }
        }
        let sys = read_file(self.tree, self.src, &format!("/etc/ld-musl-{arch}.path"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split(['\n', ':'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| {
                ["/lib", "/usr/local/lib", "/usr/lib"]
                    .map(str::to_owned)
                    .to_vec()
            });
        self.in_dirs(&sys, origin, name, target, false)
    }
}

/// Bytes of the regular file at absolute image path `abs` (symlinks followed in the tree).
pub(crate) fn read_file(tree: &Tree, src: &dyn FileSource, abs: &str) -> Option<Vec<u8>> {
    let p = tree.resolve(abs.as_bytes(), true).path?;
    match tree.get(&p)?.kind {
        Kind::File { .. } => src.read(&p).ok(),
        _ => None,
    }
}

/// Most nested `include` levels followed in ld.so.conf.
const MAX_CONF_DEPTH: usize = 8;

/// Directories named by an `ld.so.conf` file and its `include` globs (matched over the tree;
/// relative patterns are relative to the including file's directory), in order, without
/// duplicates. `hwcap` lines and comments are ignored; each file is read once (include
/// cycles in a hostile image end there) and nesting is bounded.
pub fn parse_ld_so_conf(tree: &Tree, src: &dyn FileSource, conf: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    conf_file(tree, src, conf, 0, &mut seen, &mut out);
    out
}

fn conf_file(
    tree: &Tree,
    src: &dyn FileSource,
    conf: &str,
    depth: usize,
    seen: &mut std::collections::BTreeSet<Vec<u8>>,
    out: &mut Vec<String>,
) {
    if depth > MAX_CONF_DEPTH {
        return;
    }
    let Some(real) = tree.resolve(conf.as_bytes(), true).path else {
        return;
    };
    if !seen.insert(real) {
        return;
    }
    let Some(bytes) = read_file(tree, src, conf) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("hwcap") {
            continue;
        }
        if let Some(pats) = line.strip_prefix("include") {
            if !pats.starts_with([' ', '\t']) {
                continue;
            }
            for pat in pats.split_whitespace() {
                let pat = if pat.starts_with('/') {
                    pat.to_owned()
                } else {
                    join(&dir_of(conf), pat)
                };
                for f in glob_tree(tree, &pat) {
                    conf_file(tree, src, &f, depth + 1, seen, out);
                }
            }
            continue;
        }
        for d in line.split([' ', '\t', ':', ',']).filter(|d| !d.is_empty()) {
            let d = d.split('=').next().unwrap_or(d).to_owned();
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
}

/// Absolute paths of tree entries matching an absolute glob (`*` does not cross `/`),
/// sorted. A pattern without metacharacters matches itself when it exists.
pub fn glob_tree(tree: &Tree, pattern: &str) -> Vec<String> {
    let Ok(glob) = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
    else {
        return Vec::new();
    };
    let m = glob.compile_matcher();
    // Only entries under the literal prefix of the pattern can match.
    let lit_end = pattern.find(['*', '?', '[', '{']).unwrap_or(pattern.len());
    let prefix_dir = dir_of(&pattern[..lit_end]);
    let prefix = prefix_dir.trim_start_matches('/').as_bytes().to_vec();
    let mut out: Vec<String> = tree
        .descendants(&prefix)
        .map(|(k, _)| format!("/{}", String::from_utf8_lossy(k)))
        .filter(|p| m.is_match(p))
        .collect();
    out.sort();
    out
}
