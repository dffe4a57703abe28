//! Policy and the kept set: which tree paths go into the output, each with its reasons.

use serde::Serialize;

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
