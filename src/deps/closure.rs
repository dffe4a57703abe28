//! The kept set and its builder: paths added for a reason bring their symlink hops, ELF
//! interpreters and libraries, script interpreters, NSS modules and lazily read data.

use super::elf::{self, ElfInfo};
use super::ldso::{self, dir_of, Flavor, LdSearch, Loader, Target};
use super::nss;
use crate::image::ExecSpec;
use crate::rootfs::{display, FileSource, Kind, Tree};
use crate::select::Reason;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::rc::Rc;

/// Default PATH when the image Env has none (what Docker sets).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The kinds of problems met while building a closure; not fatal, reported.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Warning {
    /// Absolute image path the warning is about.
    pub path: String,
    pub message: String,
}

/// Every kept tree path with the reasons it is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    pub kept: BTreeMap<Vec<u8>, BTreeSet<Reason>>,
    /// Libraries not found, unreadable files, and the like.
    pub warnings: Vec<Warning>,
}

impl Closure {
    pub fn contains(&self, path: &[u8]) -> bool {
        self.kept.contains_key(path)
    }
}

/// One file to analyse: its tree path, the path the loader used, the loader chain above it.
struct Work {
    path: Vec<u8>,
    as_found: String,
    loaders: Rc<Vec<Loader>>,
    flavor: Option<Flavor>,
}

/// Builds a [`Closure`] over one tree. Pure: reads only the tree and the file source.
pub struct ClosureBuilder<'a> {
    tree: &'a Tree,
    src: &'a dyn FileSource,
    search: LdSearch<'a>,
    path_dirs: Vec<String>,
    env: Vec<String>,
    kept: BTreeMap<Vec<u8>, BTreeSet<Reason>>,
    scanned: BTreeSet<Vec<u8>>,
    queue: VecDeque<Work>,
    /// Targets of the glibc programs seen, for NSS modules.
    glibc_targets: BTreeSet<(bool, u16)>,
    default_flavor: Flavor,
    warnings: Vec<Warning>,
    /// DT_NEEDED names the search did not find: (needed by, name). Decided in `finish`:
    /// ld.so reuses an already loaded object with that soname (a JVM's `libjvm.so`, loaded by
    /// the launcher with dlopen, satisfies `libjava.so`), so a kept file of that name is fine.
    unresolved: Vec<(String, String)>,
}

/// Most bytes of a `#!` line the kernel reads (BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

impl<'a> ClosureBuilder<'a> {
    /// A builder over `tree`; `env` gives LD_LIBRARY_PATH, PATH, LANG/LC_* and TZ.
    pub fn new(tree: &'a Tree, src: &'a dyn FileSource, env: &ExecSpec) -> Self {
        let search = LdSearch::new(tree, src, env.env_var("LD_LIBRARY_PATH"));
        let mut warnings = Vec::new();
        if let Some(e) = &search.cache_error {
            warnings.push(Warning {
                path: "/etc/ld.so.cache".into(),
                message: format!("ignored: {e}"),
            });
        }
        let path_dirs = env
            .env_var("PATH")
            .unwrap_or(DEFAULT_PATH)
            .split(':')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        ClosureBuilder {
            tree,
            src,
            search,
            path_dirs,
            env: env.env.clone(),
            kept: BTreeMap::new(),
            scanned: BTreeSet::new(),
            queue: VecDeque::new(),
            glibc_targets: BTreeSet::new(),
            default_flavor: detect_flavor(tree),
            warnings,
            unresolved: Vec::new(),
        }
    }

    pub fn tree(&self) -> &'a Tree {
        self.tree
    }

    /// Whether `path` (a tree path) is kept so far.
    pub fn is_kept(&self, path: &[u8]) -> bool {
        self.kept.contains_key(path)
    }

    /// Kept tree paths so far.
    pub fn kept_paths(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.kept.keys()
    }

    fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    fn keep(&mut self, path: Vec<u8>, reason: Reason) {
        if path.is_empty() {
            return; // the root is always in the output
        }
        self.kept.entry(path).or_default().insert(reason);
    }

    fn warn(&mut self, path: &str, message: String) {
        let w = Warning {
            path: path.to_owned(),
            message,
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// Keep `path` (absolute or relative to the root; symlinks followed in the tree): every
    /// symlink hop, the target, and the target's dependencies. A directory target is kept
    /// alone (see [`Self::add_tree`]). Returns the target's tree path, `None` when it does not
    /// exist (the hops that exist are still kept).
    pub fn add_path(&mut self, path: &[u8], reason: Reason) -> Option<Vec<u8>> {
        let r = self.add_resolved(path, reason, "", Rc::new(Vec::new()), None);
        self.drain();
        r
    }

    /// Keep `path` without following a symlink in its last component (`lstat`, `readlink`):
    /// the hops on the way and the entry itself. A link kept this way does not bring its
    /// target. Returns the entry's tree path.
    pub fn add_link(&mut self, path: &[u8], reason: Reason) -> Option<Vec<u8>> {
        let r = self.tree.resolve(path, false);
        self.keep_hops(&r.hops);
        let p = r.path?;
        if matches!(
            self.tree.get(&p).map(|e| &e.kind),
            Some(Kind::Symlink { .. })
        ) {
            self.keep(p.clone(), reason);
            Some(p)
        } else {
            self.add_path(&p, reason)
        }
    }

    /// Keep hops and target, queue the target for analysis; no draining. `as_found` is the
    /// path a loader found a library by; empty for programs and data.
    fn add_resolved(
        &mut self,
        path: &[u8],
        reason: Reason,
        as_found: &str,
        loaders: Rc<Vec<Loader>>,
        flavor: Option<Flavor>,
    ) -> Option<Vec<u8>> {
        let r = self.tree.resolve(path, true);
        self.keep_hops(&r.hops);
        let target = r.path?;
        self.keep(target.clone(), reason);
        let is_file = matches!(
            self.tree.get(&target).map(|e| &e.kind),
            Some(Kind::File { .. })
        );
        if is_file && self.scanned.insert(target.clone()) {
            // A program's $ORIGIN is its real location (/proc/self/exe); a library's is the
            // directory of the path it was found by (`as_found`, given for libraries only).
            let as_found = if as_found.is_empty() {
                display(&target)
            } else {
                as_found.to_owned()
            };
            self.queue.push_back(Work {
                path: target.clone(),
                as_found,
                loaders,
                flavor,
            });
        }
        Some(target)
    }

    fn keep_hops(&mut self, hops: &[Vec<u8>]) {
        for h in hops {
            let to = match self.tree.get(h).map(|e| &e.kind) {
                Some(Kind::Symlink { target }) => String::from_utf8_lossy(target).into_owned(),
                _ => String::new(),
            };
            self.keep(h.clone(), Reason::SymlinkHop { to });
        }
    }

    /// Keep `dir` and everything below it (links inside followed, files analysed).
    pub fn add_tree(&mut self, dir: &[u8], reason: Reason) -> Option<Vec<u8>> {
        let target = self.add_path(dir, reason.clone())?;
        if !self.tree.get(&target).is_some_and(|e| e.is_dir()) {
            return Some(target);
        }
        let below: Vec<(Vec<u8>, bool)> = self
            .tree
            .descendants(&target)
            .map(|(k, e)| (k.clone(), matches!(e.kind, Kind::Symlink { .. })))
            .collect();
        for (p, is_link) in below {
            if is_link {
                // The link itself, then what it points to.
                self.keep(p.clone(), reason.clone());
                let abs = display(&p);
                self.add_resolved(abs.as_bytes(), reason.clone(), "", Rc::new(vec![]), None);
            } else {
                self.add_resolved(&p, reason.clone(), "", Rc::new(vec![]), None);
            }
        }
        self.drain();
        Some(target)
    }

    /// Analyse queued files until none is left.
    fn drain(&mut self) {
        while let Some(w) = self.queue.pop_front() {
            self.analyse(w);
        }
    }

    fn head(&self, path: &[u8]) -> Option<Vec<u8>> {
        let mut f = self.src.open(path).ok()?;
        let mut buf = Vec::with_capacity(SHEBANG_MAX);
        f.by_ref()
            .take(SHEBANG_MAX as u64)
            .read_to_end(&mut buf)
            .ok()?;
        Some(buf)
    }

    fn analyse(&mut self, w: Work) {
        let shown = display(&w.path);
        let Some(head) = self.head(&w.path) else {
            self.warn(&shown, "cannot read file content".into());
            return;
        };
        if head.starts_with(b"#!") {
            self.shebang(&w.path, &head);
        } else if head.starts_with(b"\x7fELF") {
            match self.src.read(&w.path) {
                Ok(bytes) => match elf::parse(&bytes) {
                    Some(info) => self.elf(w, info),
                    None => self.warn(&shown, "malformed ELF: dependencies not analysed".into()),
                },
                Err(e) => self.warn(&shown, format!("reading failed: {e}")),
            }
        }
    }

    fn elf(&mut self, w: Work, info: ElfInfo) {
        let by = display(&w.path);
        let target = Target {
            class64: info.class64,
            machine: info.machine,
        };
        if let Some(interp) = &info.interp {
            let r = self.add_resolved(
                interp.as_bytes(),
                Reason::ElfInterp { by: by.clone() },
                "",
                Rc::new(vec![]),
                None,
            );
            if r.is_none() {
                self.warn(&by, format!("program interpreter `{interp}` not found"));
            }
        }
        let flavor = match (&info.interp, &w.flavor) {
            (Some(i), _) => Flavor::from_interp(Some(i)),
            (None, Some(f)) => f.clone(),
            (None, None) => self.default_flavor.clone(),
        };
        if flavor == Flavor::Glibc && (info.interp.is_some() || !info.needed.is_empty()) {
            self.glibc_targets.insert((target.class64, target.machine));
        }
        if info.needed.is_empty() {
            return;
        }
        let me = Loader {
            origin: dir_of(&w.as_found),
            rpath: info.rpath.clone(),
            runpath: info.runpath.clone(),
        };
        let mut chain = Vec::with_capacity(w.loaders.len() + 1);
        chain.push(me);
        chain.extend(w.loaders.iter().cloned());
        let chain = Rc::new(chain);
        for name in &info.needed {
            let found = self.search.find(name, &chain, target, &flavor);
            if found.is_empty() {
                self.unresolved.push((by.clone(), name.clone()));
            }
            for f in found {
                self.add_resolved(
                    f.as_bytes(),
                    Reason::ElfNeeded {
                        by: by.clone(),
                        name: name.clone(),
                    },
                    &f,
                    chain.clone(),
                    Some(flavor.clone()),
                );
            }
        }
    }

    /// Keep what the image's Entrypoint+Cmd names, with [`Reason::Entrypoint`]: the program
    /// (found on the image PATH when it has no `/`, relative to WorkingDir when relative) and
    /// every later argument that names an existing regular file (a script given to an
    /// interpreter, a config file). Returns the program's tree path, `None` when not found
    /// (also recorded as a warning).
    pub fn add_entrypoint(&mut self, spec: &ExecSpec) -> Option<Vec<u8>> {
        let argv = spec.argv();
        let prog = argv.first()?;
        let workdir = if spec.workdir.is_empty() {
            "/"
        } else {
            spec.workdir.as_str()
        };
        let abs = |p: &str| {
            if p.starts_with('/') {
                p.to_owned()
            } else {
                ldso::join(workdir, p)
            }
        };
        let found = if prog.contains('/') {
            Some(abs(prog))
        } else {
            self.which(prog)
        };
        let r = found.and_then(|p| self.add_path(p.as_bytes(), Reason::Entrypoint));
        if r.is_none() {
            self.warn(prog, "entrypoint program not found in the image".into());
        }
        for a in argv.iter().skip(1) {
            if a.is_empty() || a.starts_with('-') || a.contains('\0') {
                continue;
            }
            let p = abs(a);
            let is_file = self
                .tree
                .resolve(p.as_bytes(), true)
                .path
                .and_then(|t| {
                    self.tree
                        .get(&t)
                        .map(|e| matches!(e.kind, Kind::File { .. }))
                })
                .unwrap_or(false);
            if is_file {
                self.add_path(p.as_bytes(), Reason::Entrypoint);
            }
        }
        r
    }

    /// Find an executable by name on the image PATH: its absolute path.
    pub fn which(&self, name: &str) -> Option<String> {
        if name.contains('/') {
            return Some(name.to_owned());
        }
        self.path_dirs.iter().find_map(|d| {
            let p = ldso::join(d, name);
            let t = self.tree.resolve(p.as_bytes(), true).path?;
            let e = self.tree.get(&t)?;
            (matches!(e.kind, Kind::File { .. }) && e.mode & 0o111 != 0).then_some(p)
        })
    }

    fn shebang(&mut self, path: &[u8], head: &[u8]) {
        let by = display(path);
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or(b"");
        let line = String::from_utf8_lossy(line);
        let mut toks = line
            .split([' ', '\t'])
            .filter(|t| !t.is_empty() && *t != "\r");
        let Some(interp) = toks.next().map(|t| t.trim_end_matches('\r').to_owned()) else {
            self.warn(&by, "empty `#!` line".into());
            return;
        };
        let r = self.add_resolved(
            interp.as_bytes(),
            Reason::Shebang { by: by.clone() },
            "",
            Rc::new(vec![]),
            None,
        );
        if r.is_none() {
            self.warn(&by, format!("script interpreter `{interp}` not found"));
        }
        if interp.rsplit('/').next() == Some("env") {
            // `#!/usr/bin/env [-S] [-i] [VAR=x] prog args`: the program comes from PATH.
            let rest: Vec<&str> = toks.collect();
            let prog = rest
                .iter()
                .flat_map(|t| t.split_whitespace())
                .map(|t| t.trim_end_matches('\r'))
                .find(|t| !t.starts_with('-') && !t.contains('=') && !t.is_empty());
            if let Some(prog) = prog {
                match self.which(prog) {
                    Some(p) => {
                        self.add_resolved(
                            p.as_bytes(),
                            Reason::Shebang { by: by.clone() },
                            "",
                            Rc::new(vec![]),
                            None,
                        );
                    }
                    None => self.warn(&by, format!("`{prog}` (via `env`) not found on PATH")),
                }
            }
        }
    }

    /// NSS: the image's nsswitch.conf services (glibc defaults when missing) as
    /// `libnss_<service>.so.2` with their closure, for every glibc program kept so far,
    /// plus the name-service files present. Call after the programs are added.
    pub fn add_nss(&mut self) {
        let conf = ldso::read_file(self.tree, self.src, "/etc/nsswitch.conf")
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        for (file, service) in nss::FILES {
            if self.tree.resolve(file.as_bytes(), true).path.is_some() {
                self.add_resolved(
                    file.as_bytes(),
                    Reason::Nss {
                        service: (*service).to_owned(),
                    },
                    "",
                    Rc::new(vec![]),
                    None,
                );
            }
        }
        let targets: Vec<(bool, u16)> = self.glibc_targets.iter().copied().collect();
        for service in nss::services(conf.as_deref()) {
            let lib = nss::module_name(&service);
            let mut found_any = false;
            for &(class64, machine) in &targets {
                let t = Target { class64, machine };
                for f in self.search.find_dlopen(&lib, t, &Flavor::Glibc) {
                    found_any = true;
                    self.add_resolved(
                        f.as_bytes(),
                        Reason::Nss {
                            service: service.clone(),
                        },
                        &f,
                        Rc::new(vec![]),
                        Some(Flavor::Glibc),
                    );
                }
            }
            // Debian's default nsswitch.conf names `db` and `nis`, whose modules are usually
            // absent; glibc skips a missing module silently, so only others are worth a warning.
            let legacy = matches!(service.as_str(), "db" | "nis" | "nisplus" | "hesiod");
            if !found_any && !targets.is_empty() && !nss::is_builtin(&service) && !legacy {
                self.warn(
                    "/etc/nsswitch.conf",
                    format!("nss module `{lib}` for service `{service}` not found"),
                );
            }
        }
        self.drain();
    }

    /// Libraries the glibc loader preloads into every program: `LD_PRELOAD` from the image
    /// Env and `/etc/ld.so.preload` (kept itself) with their closure. Names without `/` are
    /// searched as DT_NEEDED names of the programs kept so far. Call after the programs.
    pub fn add_preloads(&mut self) {
        let mut items: Vec<(String, String)> = Vec::new();
        if let Some(v) = self.env_var("LD_PRELOAD") {
            items.extend(
                v.split([' ', ':', '\t'])
                    .filter(|s| !s.is_empty())
                    .map(|s| ("LD_PRELOAD".to_owned(), s.to_owned())),
            );
        }
        if let Some(b) = ldso::read_file(self.tree, self.src, "/etc/ld.so.preload") {
            self.add_path(
                b"/etc/ld.so.preload",
                Reason::Data {
                    rule: "ld-preload".into(),
                },
            );
            let text = String::from_utf8_lossy(&b).into_owned();
            items.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .flat_map(|l| l.split([' ', ':', '\t']))
                    .filter(|s| !s.is_empty())
                    .map(|s| ("/etc/ld.so.preload".to_owned(), s.to_owned())),
            );
        }
        let targets: Vec<(bool, u16)> = self.glibc_targets.iter().copied().collect();
        for (by, name) in items {
            let reason = Reason::ElfNeeded {
                by: by.clone(),
                name: name.clone(),
            };
            let found: Vec<String> = if name.contains('/') {
                vec![name.clone()]
            } else {
                targets
                    .iter()
                    .flat_map(|&(class64, machine)| {
                        self.search
                            .find_dlopen(&name, Target { class64, machine }, &Flavor::Glibc)
                    })
                    .collect()
            };
            let mut any = false;
            for f in found {
                any |= self
                    .add_resolved(f.as_bytes(), reason.clone(), &f, Rc::new(vec![]), None)
                    .is_some();
            }
            if !any {
                self.warn(&by, format!("preloaded library `{name}` not found"));
            }
        }
        self.drain();
    }

    fn keep_existing(&mut self, paths: &[&str], rule: &str) {
        for p in paths {
            if self.tree.resolve(p.as_bytes(), true).path.is_some() {
                self.add_path(
                    p.as_bytes(),
                    Reason::Data {
                        rule: rule.to_owned(),
                    },
                );
            }
        }
    }

    /// Data read lazily by kept programs: CA bundle when a TLS library is kept, the
    /// `/etc/localtime` chain and `TZ`, locale data named by `LANG`/`LC_*`, gconv module
    /// lists when a gconv module is kept, and the scratch directories `/tmp`, `/var/tmp` and
    /// `/run` (empty). Call after everything else is added.
    pub fn add_data_rules(&mut self) {
        let basenames: Vec<String> = self
            .kept
            .keys()
            .map(|k| {
                let b = k.rsplit(|&c| c == b'/').next().unwrap_or(k);
                String::from_utf8_lossy(b).into_owned()
            })
            .collect();
        let tls = basenames.iter().any(|b| is_tls_library(b));
        if tls {
            self.keep_existing(CA_PATHS, "ca-bundle");
        }
        self.keep_existing(&["/etc/localtime", "/etc/timezone"], "localtime");
        // Scratch space a program may need on a path the probe run did not take (temp files,
        // pid files): the empty directories with their own modes (1777 for /tmp), never their
        // content. They cost a tar header each.
        self.keep_existing(&["/tmp", "/var/tmp", "/run"], "scratch-dir");
        // PostgreSQL: initdb installs PL/pgSQL in every database, so the first `DO` block or
        // PL/pgSQL function loads `$libdir/plpgsql.so`, whatever the probe did.
        let pg_libdirs: BTreeSet<Vec<u8>> = self
            .kept
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix(b"usr/lib/postgresql/")?;
                let (ver, bin) = rest.split_at(rest.iter().position(|&b| b == b'/')?);
                (bin == b"/bin/postgres").then(|| [b"/usr/lib/postgresql/", ver, b"/lib"].concat())
            })
            .collect();
        for lib in pg_libdirs {
            let p = String::from_utf8_lossy(&lib).into_owned() + "/plpgsql.so";
            self.keep_existing(&[&p], "postgres-plpgsql");
        }
        // Java: the security configuration is read lazily, on the first MessageDigest,
        // SecureRandom (UUID.randomUUID) or TLS use; without it those fail with "Error loading
        // java.security file". The trust store and policy come along (~0.25 MB together).
        let java_homes: BTreeSet<String> = self
            .kept
            .keys()
            .filter_map(|k| {
                let home = k.strip_suffix(b"/lib/server/libjvm.so")?;
                Some(format!("/{}", String::from_utf8_lossy(home)))
            })
            .collect();
        for home in java_homes {
            let files = [
                "conf/security/java.security",
                "lib/security/cacerts",
                "lib/security/default.policy",
                "lib/security/blocked.certs",
            ]
            .map(|f| format!("{home}/{f}"));
            let refs: Vec<&str> = files.iter().map(String::as_str).collect();
            self.keep_existing(&refs, "java-security");
        }
        if let Some(tz) = self.env_var("TZ").map(str::to_owned) {
            let name = tz.trim_start_matches(':');
            let p = if name.starts_with('/') {
                name.to_owned()
            } else {
                ldso::join("/usr/share/zoneinfo", name)
            };
            if !name.contains("..") && !name.is_empty() {
                self.keep_existing(&[&p], "localtime");
            }
        }
        for name in self.locale_names() {
            for cand in locale_candidates(&name) {
                if self.tree.resolve(cand.as_bytes(), true).path.is_some() {
                    self.add_tree(
                        cand.as_bytes(),
                        Reason::Data {
                            rule: "locale".into(),
                        },
                    );
                }
            }
            self.keep_existing(&["/usr/lib/locale/locale-archive"], "locale");
        }
        let gconv_dirs: BTreeSet<Vec<u8>> = self
            .kept
            .keys()
            .filter_map(|k| {
                let i = k.windows(7).position(|w| w == b"/gconv/")?;
                Some(k[..i + 6].to_vec())
            })
            .collect();
        for d in gconv_dirs {
            let entries: Vec<Vec<u8>> = self
                .tree
                .descendants(&d)
                .map(|(k, _)| k.clone())
                .filter(|k| {
                    let rest = &k[d.len() + 1..];
                    rest.starts_with(b"gconv-modules")
                })
                .collect();
            for e in entries {
                self.add_path(
                    &e,
                    Reason::Data {
                        rule: "gconv".into(),
                    },
                );
            }
        }
    }

    /// Locale names from `LC_ALL`, `LC_*` and `LANG`, other than `C`/`POSIX`.
    fn locale_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .env
            .iter()
            .filter_map(|kv| {
                let (k, val) = kv.split_once('=')?;
                (k == "LANG" || k.starts_with("LC_")).then(|| val.to_owned())
            })
            .filter(|v| !v.is_empty() && v != "C" && v != "POSIX" && !v.contains(['/', '\0']))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Add parent directories of every kept path (with [`Reason::Parent`] when not kept
    /// for another reason) and return the closure.
    pub fn finish(mut self) -> Closure {
        self.drain();
        let mut parents = Vec::new();
        for k in self.kept.keys() {
            let mut p: &[u8] = k;
            while let Some(i) = p.iter().rposition(|&b| b == b'/') {
                p = &p[..i];
                if !self.kept.contains_key(p) {
                    parents.push(p.to_vec());
                }
            }
        }
        for p in parents {
            self.kept.entry(p).or_default().insert(Reason::Parent);
        }
        for (by, name) in std::mem::take(&mut self.unresolved) {
            let suffix = format!("/{name}");
            let loaded = self.kept.keys().any(|k| k.ends_with(suffix.as_bytes()));
            if !loaded {
                self.warn(&by, format!("needed library `{name}` not found"));
            }
        }
        Closure {
            kept: self.kept,
            warnings: self.warnings,
        }
    }

    /// Warnings so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Record a warning from a caller (policy evaluation, tracing).
    pub fn push_warning(&mut self, path: &str, message: String) {
        self.warn(path, message);
    }
}

/// CA bundle files and links kept by the `ca-bundle` rule (those present).
const CA_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/certs",
    "/etc/ssl/cert.pem",
    "/etc/ssl/openssl.cnf",
    "/usr/lib/ssl/cert.pem",
    "/usr/lib/ssl/certs",
    "/usr/lib/ssl/openssl.cnf",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/tls/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/certs/java/cacerts",
];

/// A TLS library or runtime module whose users read the CA bundle.
pub fn is_tls_library(basename: &str) -> bool {
    [
        "libssl.so",
        "libcrypto.so",
        "libgnutls.so",
        "libnss3.so",
        "libmbedtls.so",
        "libwolfssl.so",
    ]
    .iter()
    .any(|p| basename.starts_with(p))
        || (basename.starts_with("_ssl") && basename.ends_with(".so"))
        || basename == "cacerts"
        || basename == "libjvm.so"
}

/// glibc's normalized codeset (`UTF-8` → `utf8`): lowercase alphanumerics only.
fn normalize_codeset(cs: &str) -> String {
    cs.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Locale directories glibc tries for a name (`en_US.UTF-8@euro` → `en_US.UTF-8@euro`,
/// `en_US.utf8@euro`, `en_US.UTF-8`, `en_US.utf8`, `en_US`, `en`).
pub fn locale_candidates(name: &str) -> Vec<String> {
    let (base, modifier) = match name.split_once('@') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    let (lang_terr, codeset) = match base.split_once('.') {
        Some((l, c)) => (l, Some(c)),
        None => (base, None),
    };
    let mut names = vec![name.to_owned()];
    let mut push = |s: String| {
        if !names.contains(&s) {
            names.push(s);
        }
    };
    let suffix = modifier.map(|m| format!("@{m}")).unwrap_or_default();
    if let Some(cs) = codeset {
        push(format!("{lang_terr}.{}{suffix}", normalize_codeset(cs)));
        push(format!("{lang_terr}.{cs}"));
        push(format!("{lang_terr}.{}", normalize_codeset(cs)));
    }
    push(lang_terr.to_owned());
    if let Some((lang, _)) = lang_terr.split_once('_') {
        push(lang.to_owned());
    }
    names
        .into_iter()
        .map(|n| format!("/usr/lib/locale/{n}"))
        .collect()
}

/// musl when the tree has a musl loader in `/lib` and no glibc one, else glibc.
fn detect_flavor(tree: &Tree) -> Flavor {
    let mut musl = None;
    let mut glibc = false;
    for dir in [&b"lib"[..], b"lib64", b"usr/lib"] {
        let Some(d) = tree.resolve(dir, true).path else {
            continue;
        };
        for (k, _) in tree.descendants(&d) {
            let base = k.rsplit(|&c| c == b'/').next().unwrap_or(k);
            let b = String::from_utf8_lossy(base);
            if b.starts_with("ld-linux") {
                glibc = true;
            } else if musl.is_none() && elf::is_musl_interp(&b) {
                musl = Some(Flavor::from_interp(Some(&b)));
            }
        }
    }
    match musl {
        Some(m) if !glibc => m,
        _ => Flavor::Glibc,
    }
}
