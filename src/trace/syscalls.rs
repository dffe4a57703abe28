//! Which syscalls name paths, where the path arguments are, and whether they write.

/// How a path argument is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathArg {
    /// `args[i]` is a path relative to the cwd.
    Cwd(usize),
    /// `args[path]` relative to the dirfd in `args[dirfd]`.
    At { dirfd: usize, path: usize },
    /// `args[addr]` is a `sockaddr` of length `args[len]`; only `AF_UNIX` paths count.
    SockAddr { addr: usize, len: usize },
}

/// Whether the syscall modifies the file system at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    No,
    Yes,
    /// Decided by the open flags.
    OpenFlags,
}

#[derive(Debug, Clone, Copy)]
pub struct SysDef {
    pub name: &'static str,
    pub nr: u32,
    /// Path arguments with their write kind (rename: source and target both write).
    pub paths: &'static [(PathArg, Write)],
    /// Index of the open-flags argument (`openat2`: the `open_how` pointer).
    pub flags: Option<usize>,
    /// Index of an `AT_*` flags argument (for `AT_EMPTY_PATH`).
    pub at_flags: Option<usize>,
}

use PathArg::{At, Cwd, SockAddr};
use Write::{No, OpenFlags, Yes};

const fn d(
    name: &'static str,
    nr: u32,
    paths: &'static [(PathArg, Write)],
    flags: Option<usize>,
    at_flags: Option<usize>,
) -> SysDef {
    SysDef {
        name,
        nr,
        paths,
        flags,
        at_flags,
    }
}

const AT01: PathArg = At { dirfd: 0, path: 1 };

/// x86_64 path-bearing syscalls (traced).
pub const X86_64: &[SysDef] = &[
    d("open", 2, &[(Cwd(0), OpenFlags)], Some(1), None),
    d("stat", 4, &[(Cwd(0), No)], None, None),
    d("lstat", 6, &[(Cwd(0), No)], None, None),
    d("access", 21, &[(Cwd(0), No)], None, None),
    d(
        "connect",
        42,
        &[(SockAddr { addr: 1, len: 2 }, No)],
        None,
        None,
    ),
    d(
        "bind",
        49,
        &[(SockAddr { addr: 1, len: 2 }, Yes)],
        None,
        None,
    ),
    d("execve", 59, &[(Cwd(0), No)], None, None),
    d("truncate", 76, &[(Cwd(0), Yes)], None, None),
    d("chdir", 80, &[(Cwd(0), No)], None, None),
    d("rename", 82, &[(Cwd(0), Yes), (Cwd(1), Yes)], None, None),
    d("mkdir", 83, &[(Cwd(0), Yes)], None, None),
    d("rmdir", 84, &[(Cwd(0), Yes)], None, None),
    d("creat", 85, &[(Cwd(0), Yes)], None, None),
    d("link", 86, &[(Cwd(0), No), (Cwd(1), Yes)], None, None),
    d("unlink", 87, &[(Cwd(0), Yes)], None, None),
    d("symlink", 88, &[(Cwd(1), Yes)], None, None),
    d("readlink", 89, &[(Cwd(0), No)], None, None),
    d("chmod", 90, &[(Cwd(0), Yes)], None, None),
    d("chown", 92, &[(Cwd(0), Yes)], None, None),
    d("lchown", 94, &[(Cwd(0), Yes)], None, None),
    d("mknod", 133, &[(Cwd(0), Yes)], None, None),
    d("uselib", 134, &[(Cwd(0), No)], None, None),
    d("statfs", 137, &[(Cwd(0), No)], None, None),
    d("chroot", 161, &[(Cwd(0), No)], None, None),
    d("inotify_add_watch", 254, &[(Cwd(1), No)], None, None),
    d("openat", 257, &[(AT01, OpenFlags)], Some(2), None),
    d("mkdirat", 258, &[(AT01, Yes)], None, None),
    d("mknodat", 259, &[(AT01, Yes)], None, None),
    d("fchownat", 260, &[(AT01, Yes)], None, Some(4)),
    d("newfstatat", 262, &[(AT01, No)], None, Some(3)),
    d("unlinkat", 263, &[(AT01, Yes)], None, None),
    d(
        "renameat",
        264,
        &[(AT01, Yes), (At { dirfd: 2, path: 3 }, Yes)],
        None,
        None,
    ),
    d(
        "linkat",
        265,
        &[(AT01, No), (At { dirfd: 2, path: 3 }, Yes)],
        None,
        Some(4),
    ),
    d(
        "symlinkat",
        266,
        &[(At { dirfd: 1, path: 2 }, Yes)],
        None,
        None,
    ),
    d("readlinkat", 267, &[(AT01, No)], None, None),
    d("fchmodat", 268, &[(AT01, Yes)], None, None),
    d("faccessat", 269, &[(AT01, No)], None, None),
    d("utimensat", 280, &[(AT01, Yes)], None, None),
    d("name_to_handle_at", 303, &[(AT01, No)], None, Some(4)),
    d(
        "renameat2",
        316,
        &[(AT01, Yes), (At { dirfd: 2, path: 3 }, Yes)],
        None,
        None,
    ),
    d("execveat", 322, &[(AT01, No)], None, Some(4)),
    d("statx", 332, &[(AT01, No)], None, Some(2)),
    d("openat2", 437, &[(AT01, OpenFlags)], Some(2), None),
    d("faccessat2", 439, &[(AT01, No)], None, Some(3)),
    d("fchmodat2", 452, &[(AT01, Yes)], None, Some(3)),
];

/// i386 (compat) path-bearing syscalls (traced). 32-bit programs are rare in images; the
/// common calls are covered, `socketcall` (connect/bind) is not.
pub const I386: &[SysDef] = &[
    d("open", 5, &[(Cwd(0), OpenFlags)], Some(1), None),
    d("creat", 8, &[(Cwd(0), Yes)], None, None),
    d("link", 9, &[(Cwd(0), No), (Cwd(1), Yes)], None, None),
    d("unlink", 10, &[(Cwd(0), Yes)], None, None),
    d("execve", 11, &[(Cwd(0), No)], None, None),
    d("chdir", 12, &[(Cwd(0), No)], None, None),
    d("mknod", 14, &[(Cwd(0), Yes)], None, None),
    d("chmod", 15, &[(Cwd(0), Yes)], None, None),
    d("access", 33, &[(Cwd(0), No)], None, None),
    d("rename", 38, &[(Cwd(0), Yes), (Cwd(1), Yes)], None, None),
    d("mkdir", 39, &[(Cwd(0), Yes)], None, None),
    d("rmdir", 40, &[(Cwd(0), Yes)], None, None),
    d("symlink", 83, &[(Cwd(1), Yes)], None, None),
    d("readlink", 85, &[(Cwd(0), No)], None, None),
    d("uselib", 86, &[(Cwd(0), No)], None, None),
    d("truncate", 92, &[(Cwd(0), Yes)], None, None),
    d("statfs", 99, &[(Cwd(0), No)], None, None),
    d("stat", 106, &[(Cwd(0), No)], None, None),
    d("lstat", 107, &[(Cwd(0), No)], None, None),
    d("truncate64", 193, &[(Cwd(0), Yes)], None, None),
    d("stat64", 195, &[(Cwd(0), No)], None, None),
    d("lstat64", 196, &[(Cwd(0), No)], None, None),
    d("openat", 295, &[(AT01, OpenFlags)], Some(2), None),
    d("mkdirat", 296, &[(AT01, Yes)], None, None),
    d("fstatat64", 300, &[(AT01, No)], None, Some(3)),
    d("unlinkat", 301, &[(AT01, Yes)], None, None),
    d(
        "renameat",
        302,
        &[(AT01, Yes), (At { dirfd: 2, path: 3 }, Yes)],
        None,
        None,
    ),
    d("readlinkat", 305, &[(AT01, No)], None, None),
    d("faccessat", 307, &[(AT01, No)], None, None),
    d("execveat", 358, &[(AT01, No)], None, Some(4)),
    d("statx", 383, &[(AT01, No)], None, Some(2)),
    d("openat2", 437, &[(AT01, OpenFlags)], Some(2), None),
    d("faccessat2", 439, &[(AT01, No)], None, Some(3)),
];

/// io_uring_setup/enter/register: file operations that bypass syscall tracing.
pub const IO_URING: &[u32] = &[425, 426, 427];

/// x86_64 id-changing and chown calls made to succeed without effect under a single-id map.
/// (chown-family calls are also traced: faked calls return before the tracer sees them, so they
/// are listed here only by number and still named paths are lost; chown does not read files.)
pub const X86_64_FAKE_IDS: &[u32] = &[
    105, // setuid
    106, // setgid
    113, // setreuid
    114, // setregid
    116, // setgroups
    117, // setresuid
    119, // setresgid
    122, // setfsuid
    123, // setfsgid
    92,  // chown
    93,  // fchown
    94,  // lchown
    260, // fchownat
];

pub const I386_FAKE_IDS: &[u32] = &[
    23, 46, 70, 71, 81, 164, 170, 16, 182, 95, 198, 207, 212, 203, 204, 206, 208, 210, 213, 214,
    215, 216, 298,
];

pub fn lookup(table: &'static [SysDef], nr: u64) -> Option<&'static SysDef> {
    table.iter().find(|s| u64::from(s.nr) == nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_libc() {
        let cases: &[(&str, i64)] = &[
            ("open", libc::SYS_open),
            ("openat", libc::SYS_openat),
            ("openat2", libc::SYS_openat2),
            ("execve", libc::SYS_execve),
            ("execveat", libc::SYS_execveat),
            ("newfstatat", libc::SYS_newfstatat),
            ("statx", libc::SYS_statx),
            ("faccessat2", libc::SYS_faccessat2),
            ("renameat2", libc::SYS_renameat2),
            ("connect", libc::SYS_connect),
            ("bind", libc::SYS_bind),
            ("readlinkat", libc::SYS_readlinkat),
            ("symlinkat", libc::SYS_symlinkat),
            ("inotify_add_watch", libc::SYS_inotify_add_watch),
            ("name_to_handle_at", libc::SYS_name_to_handle_at),
            ("utimensat", libc::SYS_utimensat),
            ("mknodat", libc::SYS_mknodat),
        ];
        for (name, nr) in cases {
            let def = X86_64.iter().find(|d| d.name == *name).expect(name);
            assert_eq!(i64::from(def.nr), *nr, "{name}");
        }
        assert_eq!(IO_URING[0] as i64, libc::SYS_io_uring_setup);
        assert_eq!(i64::from(X86_64_FAKE_IDS[0]), libc::SYS_setuid);
        assert_eq!(i64::from(X86_64_FAKE_IDS[5]), libc::SYS_setresuid);
    }

    #[test]
    fn no_duplicate_numbers() {
        for t in [X86_64, I386] {
            let mut nrs: Vec<u32> = t.iter().map(|d| d.nr).collect();
            nrs.sort();
            let n = nrs.len();
            nrs.dedup();
            assert_eq!(n, nrs.len());
        }
    }
}
