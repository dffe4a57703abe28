//! What the kernel itself loads at exec, which no syscall shows: the `#!` interpreter of a
//! script and the PT_INTERP program interpreter of an ELF, recursively (binfmt_script allows a
//! few levels of interpreters; we follow the same bound).

use crate::rootfs::{FileSource, Tree};

/// How deep the kernel follows interpreters (`BINPRM_MAX_RECURSION` is 4).
const MAX_DEPTH: usize = 4;

/// Something the kernel loads when `exe` is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLoad {
    /// Absolute path as named by the script or the ELF header.
    pub path: String,
    /// `"shebang"` or `"pt_interp"`.
    pub how: &'static str,
}

/// The interpreters the kernel loads to execute `exe` (an absolute path inside the image),
/// in order, resolved over `tree`; empty for a static binary or an unknown file.
pub fn kernel_loads(tree: &Tree, src: &dyn FileSource, exe: &[u8]) -> Vec<KernelLoad> {
    let mut out = Vec::new();
    let mut cur = exe.to_vec();
    for _ in 0..MAX_DEPTH {
        let Some(real) = tree.resolve(&cur, true).path else {
            break;
        };
        let Ok(bytes) = src.read(&real) else { break };
        let next = if let Some(rest) = bytes.strip_prefix(b"#!") {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or(b"");
            let line = String::from_utf8_lossy(line);
            match line.split([' ', '\t']).find(|t| !t.is_empty()) {
                Some(interp) => KernelLoad {
                    path: interp.trim_end_matches('\r').to_owned(),
                    how: "shebang",
                },
                None => break,
            }
        } else {
            match super::elf::parse(&bytes).and_then(|e| e.interp) {
                Some(interp) => KernelLoad {
                    path: interp,
                    how: "pt_interp",
                },
                None => break,
            }
        };
        cur = next.path.as_bytes().to_vec();
        let elf = next.how == "pt_interp";
        out.push(next);
        if elf {
            // An ELF interpreter is itself static: nothing further.
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{Entry, Kind, MemSource};
    use std::collections::BTreeMap;

    fn tree(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> (Tree, MemSource) {
        let mut t = Tree::new();
        let mut m = MemSource::default();
        let add = |t: &mut Tree, p: &str, kind: Kind| {
            let p = p.trim_start_matches('/');
            let parts: Vec<&str> = p.split('/').collect();
            for i in 1..parts.len() {
                let d = parts[..i].join("/").into_bytes();
                if !t.contains(&d) {
                    let inode = t.new_inode();
                    t.insert(d, Entry::implicit_dir(inode, 0));
                }
            }
            let inode = t.new_inode();
            t.insert(
                p.as_bytes().to_vec(),
                Entry {
                    kind,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    xattrs: BTreeMap::new(),
                    inode,
                    layer: 0,
                },
            );
        };
        for (p, data) in files {
            add(
                &mut t,
                p,
                Kind::File {
                    size: data.len() as u64,
                },
            );
            m.0.insert(p.trim_start_matches('/').as_bytes().to_vec(), data.to_vec());
        }
        for (p, target) in links {
            add(
                &mut t,
                p,
                Kind::Symlink {
                    target: target.as_bytes().to_vec(),
                },
            );
        }
        (t, m)
    }

    #[test]
    fn script_chain_to_a_real_elf() {
        let ls = std::fs::read("/usr/bin/ls").expect("host /usr/bin/ls");
        let (t, m) = tree(
            &[
                ("/app/run", b"#!/app/wrapper arg\n"),
                ("/app/wrapper", b"#! /usr/bin/dash -e\r\n"),
                ("/usr/bin/dash", &ls),
            ],
            &[("/bin", "usr/bin")],
        );
        let got = kernel_loads(&t, &m, b"/app/run");
        let paths: Vec<(&str, &str)> = got.iter().map(|k| (k.path.as_str(), k.how)).collect();
        assert_eq!(
            paths,
            [
                ("/app/wrapper", "shebang"),
                ("/usr/bin/dash", "shebang"),
                ("/lib64/ld-linux-x86-64.so.2", "pt_interp")
            ]
        );
    }

    #[test]
    fn static_unknown_and_loops() {
        let (t, m) = tree(
            &[("/s", b"\x7fELF-not-really"), ("/loop", b"#!/loop\n")],
            &[],
        );
        assert!(kernel_loads(&t, &m, b"/s").is_empty());
        assert!(kernel_loads(&t, &m, b"/missing").is_empty());
        assert_eq!(kernel_loads(&t, &m, b"/loop").len(), MAX_DEPTH);
    }
}
