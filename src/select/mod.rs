//! Policy and the kept set: which tree paths go into the output, each with its reasons.
//!
//! Glob semantics (includes and excludes): patterns are matched against absolute image paths
//! (`/usr/bin/ls`; a pattern without a leading `/` is anchored at the root), with globset's
//! `literal_separator(true)`: `*`, `?` and `[...]` never cross a `/`, `**` spans any depth
//! (`/usr/share/**/*.mo`). A pattern is a glob when it contains one of `*?[{`; otherwise it
//! is a literal path, followed through symlinks in the image.

use crate::deps::ldso::join;
use crate::deps::{Closure, ClosureBuilder};
use crate::image::ExecSpec;
use crate::rootfs::{display, Entry, FileSource, Kind, Tree};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;
use std::collections::BTreeSet;

/// Why a path is kept. Every kept path carries at least one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Accessed during the traced run.
    Traced { exe: String, syscall: String },
    /// Named by the image's Entrypoint/Cmd (static mode and always).
    Entrypoint,
    /// A DT_NEEDED library of an kept ELF.
    ElfNeeded { by: String, name: String },
    /// The PT_INTERP program interpreter of a kept ELF.
    ElfInterp { by: String },
    /// The `#!` interpreter of a kept script.
    Shebang { by: String },
    /// An NSS module or a file an NSS service reads.
    Nss { service: String },
    /// Data a kept program needs lazily (CA bundle, localtime, locale), by rule name.
    Data { rule: String },
    /// A `--include` rule or `--include-from` line.
    Include { rule: String },
    /// Content of a package named by `--include-pkg`.
    Package { name: String },
    /// An executable named by `--include-exe` or `--keep-shell`.
    Exe { rule: String },
    /// A symlink traversed to reach a kept path.
    SymlinkHop { to: String },
    /// A directory the run wrote into (the files it created there are not kept).
    WrittenDir,
    /// A parent directory of a kept path.
    Parent,
    /// Missing in a verify run but present in the original image.
    Repair { round: usize },
}

/// What the user asked to keep or drop on top of the traced and static closure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Literal paths or globs; a directory brings its whole tree.
    pub includes: Vec<String>,
    /// Globs (or literal paths, which also drop what is below them).
    pub excludes: Vec<String>,
    /// Debian (dpkg) or Alpine (apk) package names.
    pub include_pkgs: Vec<String>,
    /// Executables: a path, or a name looked up on the image PATH.
    pub include_exes: Vec<String>,
    /// Keep `/bin/sh` and its closure.
    pub keep_shell: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("parsing glob `{pattern}` failed")]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("package `{name}` not found in the image (looked for `/var/lib/dpkg/info/{name}.list` and in `/lib/apk/db/installed`)")]
    UnknownPackage { name: String },
    #[error("executable `{name}` not found in the image (searched the image PATH)")]
    ExeNotFound { name: String },
}

/// Whether a pattern is a glob rather than a literal path.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

fn anchored(pattern: &str) -> String {
    if pattern.starts_with('/') {
        pattern.to_owned()
    } else {
        format!("/{pattern}")
    }
}

fn glob(pattern: &str) -> Result<globset::Glob, SelectError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| SelectError::Glob {
            pattern: pattern.to_owned(),
            source,
        })
}

/// Lines of an `--include-from` file: trimmed, blank lines and `#` comments dropped.
pub fn read_include_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Apply includes, packages, executables and keep-shell to `builder`. Excludes are applied
/// later to the finished closure with [`apply_excludes`]. Returns warnings (include paths
/// and globs that matched nothing).
pub fn apply_policy(
    builder: &mut ClosureBuilder,
    tree: &Tree,
    src: &dyn FileSource,
    policy: &Policy,
) -> Result<Vec<String>, SelectError> {
    let mut warnings = Vec::new();
    for inc in &policy.includes {
        let reason = Reason::Include { rule: inc.clone() };
        if is_glob(inc) {
            let m = glob(&anchored(inc))?.compile_matcher();
            let mut matched = 0usize;
            let mut last_tree: Option<Vec<u8>> = None;
            let paths: Vec<Vec<u8>> = tree
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| !k.is_empty() && m.is_match(display(k)))
                .collect();
            for p in paths {
                matched += 1;
                // Entries sorted parents first: skip what a matched directory already brought.
                if let Some(t) = &last_tree {
                    if p.starts_with(t) && p.get(t.len()) == Some(&b'/') {
                        continue;
                    }
                }
                if tree.get(&p).is_some_and(|e| e.is_dir()) {
                    builder.add_tree(&p, reason.clone());
                    last_tree = Some(p);
                } else {
                    builder.add_path(&p, reason.clone());
                }
            }
            if matched == 0 {
                warnings.push(format!("include glob `{inc}` matched nothing"));
            }
        } else if builder.add_tree(anchored(inc).as_bytes(), reason).is_none() {
            warnings.push(format!("include path `{inc}` does not exist in the image"));
        }
    }
    for name in &policy.include_pkgs {
        let files = package_files(tree, src, name)?;
        let reason = Reason::Package { name: name.clone() };
        for f in files {
            // Listed directories are kept alone; their listed content comes line by line.
            builder.add_path(f.as_bytes(), reason.clone());
        }
    }
    for exe in &policy.include_exes {
        let found = builder
            .which(exe)
            .filter(|p| tree.resolve(p.as_bytes(), true).path.is_some())
            .ok_or_else(|| SelectError::ExeNotFound { name: exe.clone() })?;
        builder.add_path(found.as_bytes(), Reason::Exe { rule: exe.clone() });
    }
    if policy.keep_shell
        && builder
            .add_path(
                b"/bin/sh",
                Reason::Exe {
                    rule: "keep-shell".into(),
                },
            )
            .is_none()
    {
        warnings.push("`--keep-shell`: the image has no `/bin/sh`".into());
    }
    Ok(warnings)
}

/// Absolute paths a package installed: dpkg's `NAME.list` / `NAME:ARCH.list`, else the
/// Alpine apk database record `P:NAME`.
pub fn package_files(
    tree: &Tree,
    src: &dyn FileSource,
    name: &str,
) -> Result<Vec<String>, SelectError> {
    let unknown = || SelectError::UnknownPackage {
        name: name.to_owned(),
    };
    if name.is_empty() || name.contains(['/', '\0']) || name.starts_with('.') {
        return Err(unknown());
    }
    let read = |abs: &str| -> Option<String> {
        let p = tree.resolve(abs.as_bytes(), true).path?;
        matches!(tree.get(&p)?.kind, Kind::File { .. })
            .then(|| src.read(&p).ok())
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let info = "/var/lib/dpkg/info";
    let mut lists = vec![format!("{info}/{name}.list")];
    // `NAME:ARCH.list` for multi-arch packages, any architecture.
    if let Some(dir) = tree.resolve(info.as_bytes(), true).path {
        let prefix = format!("{name}:");
        for (k, _) in tree.descendants(&dir) {
            let base = String::from_utf8_lossy(&k[dir.len()..])
                .trim_start_matches('/')
                .to_owned();
            if base.starts_with(&prefix) && base.ends_with(".list") && !base.contains('/') {
                lists.push(join(info, &base));
            }
        }
    }
    let mut out = BTreeSet::new();
    let mut found = false;
    for l in &lists {
        if let Some(text) = read(l) {
            found = true;
            for line in text.lines().map(str::trim) {
                if line.starts_with('/') && line != "/." && line != "/" {
                    out.insert(line.to_owned());
                }
            }
        }
    }
    if found {
        let links = alternative_links(tree, src, &out);
        out.extend(links);
    }
    if !found {
        if let Some(db) = read("/lib/apk/db/installed") {
            let mut cur_pkg = false;
            let mut dir = String::new();
            for line in db.lines() {
                if line.trim().is_empty() {
                    cur_pkg = false;
                    continue;
                }
                if let Some(p) = line.strip_prefix("P:") {
                    cur_pkg = p == name;
                    found |= cur_pkg;
                    dir.clear();
                } else if !cur_pkg {
                } else if let Some(d) = line.strip_prefix("F:") {
                    dir = d.to_owned();
                    out.insert(join("/", d));
                } else if let Some(f) = line.strip_prefix("R:") {
                    out.insert(join(&join("/", &dir), f));
                }
            }
        }
    }
    if !found {
        return Err(unknown());
    }
    Ok(out.into_iter().collect())
}

/// The `update-alternatives` links that lead into `files` (a package's listed paths): dpkg
/// does not list them as the package's, yet `/usr/bin/awk` is how gawk is called. Read from
/// `/var/lib/dpkg/alternatives/NAME` (mode, master link, then slave name/link pairs up to a
/// blank line); a link counts when `/etc/alternatives/NAME` resolves to one of `files`.
fn alternative_links(tree: &Tree, src: &dyn FileSource, files: &BTreeSet<String>) -> Vec<String> {
    let real = |p: &str| tree.resolve(p.as_bytes(), true).path;
    let targets: BTreeSet<Vec<u8>> = files
        .iter()
        .filter_map(|f| real(f))
        .filter(|p| matches!(tree.get(p).map(|e| &e.kind), Some(Kind::File { .. })))
        .collect();
    let Some(dir) = real("/var/lib/dpkg/alternatives") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, e) in tree.descendants(&dir) {
        let name = String::from_utf8_lossy(&k[dir.len()..])
            .trim_start_matches('/')
            .to_owned();
        if name.contains('/') || !matches!(e.kind, Kind::File { .. }) {
            continue;
        }
        let Ok(text) = src.read(k) else { continue };
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.lines().map(str::trim).skip(1);
        let Some(master) = lines.next() else { continue };
        let mut pairs = vec![(name.clone(), master.to_owned())];
        while let (Some(n), Some(l)) = (lines.next(), lines.next()) {
            if n.is_empty() {
                break;
            }
            pairs.push((n.to_owned(), l.to_owned()));
        }
        for (alt, link) in pairs {
            let hop = format!("/etc/alternatives/{alt}");
            if alt.contains('/') || !link.starts_with('/') {
                continue;
            }
            if real(&hop).is_some_and(|t| targets.contains(&t)) {
                out.push(hop);
                out.push(link);
            }
        }
    }
    out
}

fn exclude_set(excludes: &[String]) -> Result<GlobSet, SelectError> {
    let mut b = GlobSetBuilder::new();
    for e in excludes {
        let pat = anchored(e);
        b.add(glob(&pat)?);
        // A literal directory drops its content too; a glob matches what it says.
        if !is_glob(e) {
            let below = format!("{}/**", pat.trim_end_matches('/'));
            b.add(glob(&below)?);
        }
    }
    b.build().map_err(|source| SelectError::Glob {
        pattern: excludes.join(" "),
        source,
    })
}

/// Remove kept paths matching any exclude: a glob removes what it matches (`/var/cache/*`
/// removes the entries of `/var/cache`, not their content unless they match too, so use
/// `/var/cache/**` for a whole tree); a literal path removes itself and everything below.
/// A directory that is still a parent of a kept path is never removed: it stays with
/// [`Reason::Parent`] only. Returns the number of paths removed.
pub fn apply_excludes(closure: &mut Closure, excludes: &[String]) -> Result<usize, SelectError> {
    if excludes.is_empty() {
        return Ok(0);
    }
    let set = exclude_set(excludes)?;
    let matched: BTreeSet<Vec<u8>> = closure
        .kept
        .keys()
        .filter(|k| set.is_match(display(k)))
        .cloned()
        .collect();
    let mut needed_parents = BTreeSet::new();
    for k in closure.kept.keys().filter(|k| !matched.contains(*k)) {
        let mut p: &[u8] = k;
        while let Some(i) = p.iter().rposition(|&b| b == b'/') {
            p = &p[..i];
            if matched.contains(p) {
                needed_parents.insert(p.to_vec());
            }
        }
    }
    let mut removed = 0;
    for m in matched {
        if needed_parents.contains(&m) {
            if let Some(r) = closure.kept.get_mut(&m) {
                *r = BTreeSet::from([Reason::Parent]);
            }
        } else {
            closure.kept.remove(&m);
            removed += 1;
        }
    }
    Ok(removed)
}

/// The outcome of [`select`]: the kept set and the policy's warnings.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub closure: Closure,
    /// Includes that matched nothing, a missing `/bin/sh` for `--keep-shell`.
    pub policy_warnings: Vec<String>,
    /// Paths removed by excludes.
    pub excluded: usize,
}

/// The whole selection in its order: Entrypoint/Cmd, then `observe` (call [`add_traced`] for
/// every traced path there; nothing for a static-only run), the policy's includes, packages
/// and executables, preloaded libraries, NSS, lazily read data, parent directories, and
/// excludes last.
pub fn select(
    tree: &Tree,
    src: &dyn FileSource,
    spec: &ExecSpec,
    policy: &Policy,
    observe: impl FnOnce(&mut ClosureBuilder),
) -> Result<Selection, SelectError> {
    let mut b = ClosureBuilder::new(tree, src, spec);
    b.add_entrypoint(spec);
    observe(&mut b);
    let policy_warnings = apply_policy(&mut b, tree, src, policy)?;
    b.add_preloads();
    b.add_nss();
    b.add_data_rules();
    let mut closure = b.finish();
    // Paths without which a kept program cannot even start, to warn about excluding them.
    let needed_to_start: Vec<(Vec<u8>, String)> = closure
        .kept
        .iter()
        .filter_map(|(p, reasons)| {
            reasons
                .iter()
                .find_map(|r| match r {
                    Reason::Entrypoint => Some("the entrypoint".to_string()),
                    Reason::ElfInterp { by } => Some(format!("the ELF interpreter of {by}")),
                    Reason::Shebang { by } => Some(format!("the `#!` interpreter of {by}")),
                    _ => None,
                })
                .map(|why| (p.clone(), why))
        })
        .collect();
    let excluded = apply_excludes(&mut closure, &policy.excludes)?;
    let mut policy_warnings = policy_warnings;
    for (p, why) in needed_to_start {
        if !closure.kept.contains_key(&p) {
            policy_warnings.push(format!(
                "--exclude removes {}, {why}: the image will not start",
                display(&p)
            ));
        }
    }
    Ok(Selection {
        closure,
        policy_warnings,
        excluded,
    })
}

/// Paths the container runtime mounts over the image (`/proc`, `/sys`, `/dev`): what a run
/// finds there says nothing about the image's own files.
pub fn runtime_provided(path: &[u8]) -> bool {
    let p = path.strip_prefix(b"/").unwrap_or(path);
    [&b"proc"[..], b"sys", b"dev"]
        .iter()
        .any(|d| p.starts_with(d) && matches!(p.get(d.len()), None | Some(b'/')))
}

/// Record one traced observation: `path` as seen inside the sandbox (absolute), the program
/// and syscall that named it, and whether it was a write/create. Existing paths are kept with
/// their closure; a missing path that was written keeps its nearest existing ancestor
/// directory ([`Reason::WrittenDir`]); `/proc`, `/sys` and `/dev` are ignored unless the image
/// has a regular file there.
pub fn add_traced(
    builder: &mut ClosureBuilder,
    path: &[u8],
    exe: &str,
    syscall: &str,
    wrote: bool,
) {
    let tree = builder.tree();
    let abs = if path.starts_with(b"/") {
        path.to_vec()
    } else {
        [b"/", path].concat()
    };
    let reason = Reason::Traced {
        exe: exe.to_owned(),
        syscall: syscall.to_owned(),
    };
    if runtime_provided(&abs) {
        let is_file = tree
            .resolve(&abs, true)
            .path
            .and_then(|p| tree.get(&p).map(|e| matches!(e.kind, Kind::File { .. })))
            .unwrap_or(false);
        if is_file {
            builder.add_path(&abs, reason);
        }
        return;
    }
    if tree.resolve(&abs, true).path.is_some() {
        builder.add_path(&abs, reason);
        return;
    }
    // A link whose target is missing (readlink/lstat of a dangling link).
    if tree.resolve(&abs, false).path.is_some() {
        builder.add_link(&abs, reason);
        if !wrote {
            return;
        }
    }
    if !wrote {
        return;
    }
    let mut cur: &[u8] = &abs;
    while let Some(i) = cur.iter().rposition(|&b| b == b'/') {
        cur = &cur[..i];
        let probe: &[u8] = if cur.is_empty() { b"/" } else { cur };
        if let Some(t) = tree.resolve(probe, true).path {
            if tree.get(&t).is_some_and(|e| e.is_dir()) {
                builder.add_path(probe, Reason::WrittenDir);
            }
            return;
        }
    }
}

/// Directories whose content in the image is program state, kept whole with the image's own
/// bytes (never what the run wrote):
/// * each declared `VOLUME` that is a directory in the image: a runtime copies that content
///   into the fresh volume, and the program may rely on it;
/// * the state directory of every existing image file the run modified (opened for writing,
///   renamed, removed) when that file has a non-root owner: the highest ancestor directory
///   with the same owner, e.g. `/var/lib/postgresql` for a cluster made at build time, whose
///   other files (catalogs of databases the probe did not open) a later client needs.
pub fn add_state(builder: &mut ClosureBuilder, volumes: &[String], modified: &[&[u8]]) {
    let tree = builder.tree();
    for v in volumes {
        let is_dir = tree
            .resolve(v.as_bytes(), true)
            .path
            .and_then(|p| tree.get(&p).map(Entry::is_dir))
            .unwrap_or(false);
        if is_dir {
            builder.add_tree(
                v.as_bytes(),
                Reason::Data {
                    rule: "volume".into(),
                },
            );
        }
    }
    let mut roots = BTreeSet::new();
    for p in modified {
        if runtime_provided(p) {
            continue;
        }
        let Some(real) = tree.resolve(p, false).path else {
            continue;
        };
        let Some(e) = tree.get(&real) else { continue };
        if e.uid == 0 || e.is_dir() {
            continue;
        }
        let owner = e.uid;
        let mut root: Option<&[u8]> = None;
        let mut cur: &[u8] = &real;
        while let Some(i) = cur.iter().rposition(|&b| b == b'/') {
            cur = &cur[..i];
            match tree.get(cur) {
                Some(d) if d.is_dir() && d.uid == owner => root = Some(cur),
                _ => break,
            }
        }
        if let Some(r) = root {
            roots.insert(r.to_vec());
        }
    }
    for r in roots {
        builder.add_tree(
            display(&r).as_bytes(),
            Reason::Data {
                rule: "state-dir".into(),
            },
        );
    }
}

#[cfg(test)]
mod tests;
