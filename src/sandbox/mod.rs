//! Run the image's entrypoint rootless in user+mount+pid+net+ipc+uts namespaces on an overlay of
//! the staged root, traced by [`crate::trace`].
//!
//! Process layout (all forks go through [`crate::sys`], no allocation between fork and exec):
//!
//! ```text
//! oci-slim (tracer, outside every namespace; ptrace loop on the calling thread, a control thread
//! │         for probes and timers, reader threads for stdout/stderr)
//! └─ A: setsid, unshare(user|pid|net|ipc|uts), waits for the id maps, forks the init, waits for
//!    │  it, then execs `rm -rf <scratch>` inside the user namespace (files of subordinate ids)
//!    └─ B: PID 1, traced: unshare(mnt), overlay + /proc + /dev, pivot_root, lo up, hostname,
//!       │  RLIMIT_NPROC; reaps orphans; forks exec commands on request (control pipe)
//!       └─ C: the app: user switch, chdir WorkingDir, no_new_privs, seccomp filter, execve
//! ```
//!
//! Users ([`IdMode`]): as root, ids 0 → 0 and 1..65536 → a subordinate range; as a user with
//! `newuidmap`/`newgidmap` and /etc/subuid + /etc/subgid entries, 0 → the user and 1..=N → the
//! range; otherwise a single mapping 0 → the user, and the seccomp filter makes id changes and
//! chown calls succeed without effect: the program then runs as root of the namespace even when
//! the image names another user (reported as `SingleIdFaked`).
//!
//! Probes reach the sandbox's loopback from forked children that join its user and network
//! namespaces (`setns`); no helper re-exec is needed, so [`helper_main`] only answers `None`.

pub mod users;

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::Pid;
use serde::Serialize;

use crate::sys::{self, CArgv, ExecPlan, SetupOp};
use crate::trace::{self, Event, Status, Tracer};
use users::UserError;

/// An HTTP probe: `GET path` on 127.0.0.1:port inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpProbe {
    pub port: u16,
    pub path: String,
}

/// What to run and how to drive it.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Staged image root (read-only lower dir of the overlay); never modified.
    pub lower: PathBuf,
    pub exec: crate::image::ExecSpec,
    /// Extra commands run inside the image root (traced) after the app is ready.
    pub exec_cmds: Vec<Vec<String>>,
    pub http_probes: Vec<HttpProbe>,
    /// Default probes: HTTP GET / on each, falling back to a TCP connect.
    pub tcp_ports: Vec<u16>,
    /// Host shell commands run inside the sandbox's network namespace (must exit 0).
    pub probe_cmds: Vec<String>,
    /// After probes, before stopping.
    pub wait: Duration,
    /// How long to wait for ports to accept.
    pub ready_timeout: Duration,
    /// Hard limit for the whole run.
    pub timeout: Duration,
    /// Where to create temporary dirs (overlay mount point); removed at the end.
    pub scratch_parent: PathBuf,
    /// Resource limits of the sandboxed processes.
    pub limits: SandboxLimits,
    /// Paths of `lower` (relative, as tree paths) whose image owner is not root, with that
    /// owner. The staging dir belongs to the invoking user; during the run these paths are
    /// given their image owners inside the user namespace (so a program that switches to
    /// `postgres` finds its data directory owned by `postgres`) and handed back afterwards.
    /// Ignored in [`IdMode::SingleIdFaked`], where only one id exists.
    pub owners: Vec<(Vec<u8>, u32, u32)>,
    /// The image's `StopSignal`, sent to the app to stop a server (default SIGTERM).
    pub stop_signal: Option<i32>,
}

/// Resource limits of a sandbox run. Each is enforced by the kernel without cgroups, so they
/// apply rootless too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SandboxLimits {
    /// Size of the tmpfs that holds everything the run writes to its root (the overlay upper
    /// dir): a program that fills its disk gets ENOSPC there, never on a host file system.
    pub disk_bytes: u64,
    /// `RLIMIT_DATA` of every sandboxed process: heap and private writable mappings.
    pub memory_bytes: u64,
    /// `RLIMIT_NPROC` of the sandbox's users (threads count); the tracer also stops the run
    /// beyond [`MAX_TRACEES`] live threads.
    pub processes: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            disk_bytes: 2 << 30,
            memory_bytes: 8 << 30,
            processes: 4096,
        }
    }
}

/// How the app ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum ExitInfo {
    Exited(i32),
    Signaled(i32),
    /// A server we stopped after the probes.
    StoppedByUs,
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub name: String,
    pub ok: bool,
    /// e.g. `HTTP/1.1 200 OK`, `connect: ECONNREFUSED`, `exit 0`.
    pub detail: String,
}

/// What happened with user ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum IdMode {
    /// Unprivileged, `newuidmap`: ids 1..=count map to the user's subordinate range.
    SubidRange { count: u32 },
    /// Unprivileged without subordinate ids: one id; id changes and chown succeed without effect.
    SingleIdFaked,
    /// Run as real root: 0 → 0 and 1..=65535 → a high range.
    RootRange,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub observations: Vec<trace::Observation>,
    pub exit: ExitInfo,
    pub probes: Vec<ProbeResult>,
    pub exec_results: Vec<(Vec<String>, i32)>,
    /// Last bytes (at most [`CAPTURE_LIMIT`]) of the app's stdout and stderr.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub id_mode: IdMode,
    pub duration: Duration,
    /// Things that went wrong without failing the run (e.g. a scratch dir left behind).
    pub warnings: Vec<String>,
}

/// Bytes of stdout/stderr kept (the tail).
pub const CAPTURE_LIMIT: usize = 1 << 20;
/// Most live traced threads before the sandbox is killed (fork bombs).
pub const MAX_TRACEES: usize = 2048;
/// Grace period between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

const USERNS_HINT: &str = "hint: unprivileged user namespaces may be disabled: check `sysctl kernel.unprivileged_userns_clone` (Debian) and `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu), or run as root";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the command to run is empty (no Entrypoint or Cmd)")]
    EmptyCommand,
    #[error("image root `{0}` is not a directory")]
    LowerNotDir(PathBuf),
    #[error("path `{0}` contains `,`, `:` or a newline, which overlay mount options cannot hold")]
    BadPathChars(PathBuf),
    #[error("image path `{0}` is a symlink; refusing to mount over it")]
    MountTargetSymlink(String),
    #[error("resolving the image user `{user}` failed: {source}")]
    User {
        user: String,
        #[source]
        source: UserError,
    },
    #[error("image user {uid}:{gid} lies outside the {count} subordinate ids available\nhint: widen the range in /etc/subuid and /etc/subgid")]
    IdOutOfRange { uid: u32, gid: u32, count: u32 },
    #[error("creating a scratch directory in `{path}` failed: {source}")]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("creating the sandbox namespaces failed: {errno}\n{USERNS_HINT}")]
    UserNamespace { errno: Errno },
    #[error("writing `{file}` failed: {source}")]
    IdMap {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{tool}` failed: {detail}\nhint: check /etc/subuid and /etc/subgid for this user")]
    NewIdMap { tool: &'static str, detail: String },
    #[error("sandbox setup step `{stage}` failed: {errno}{hint}")]
    Setup {
        stage: String,
        errno: Errno,
        hint: &'static str,
    },
    #[error("executing `{cmd}` in the sandbox failed: {errno}")]
    Exec { cmd: String, errno: Errno },
    #[error("attaching the tracer failed: {0}\nhint: ptrace may be restricted: check `sysctl kernel.yama.ptrace_scope` (0 or 1 needed)")]
    Trace(#[from] trace::TraceError),
    #[error("the sandbox ended before starting the program")]
    EarlyExit,
    #[error("interrupted by a signal; the sandbox was stopped")]
    Interrupted,
}

/// Called first in `main`: if this process was re-executed as an internal helper, do its job.
/// The sandbox needs no helper re-exec (namespace joins happen in forked children), so this
/// answers `None` unless `OCI_SLIM_HELPER` is set, which it reports as an error.
pub fn helper_main() -> Option<std::process::ExitCode> {
    let v = std::env::var_os("OCI_SLIM_HELPER")?;
    eprintln!(
        "oci-slim: unknown internal helper `{}`",
        v.to_string_lossy()
    );
    Some(std::process::ExitCode::from(2))
}

/// Check early that user namespaces can be created (in a forked, single-threaded child) and
/// that a child can be traced.
pub fn check_support() -> Result<(), SandboxError> {
    let fork_err = |errno| SandboxError::Sys {
        what: "fork",
        errno,
    };
    match sys::probe_userns().map_err(fork_err)? {
        0 => {}
        e => {
            return Err(SandboxError::UserNamespace {
                errno: Errno::from_raw(e),
            })
        }
    }
    match sys::probe_ptrace().map_err(fork_err)? {
        0 => Ok(()),
        e => Err(SandboxError::Trace(trace::TraceError::Seize {
            pid: 0,
            errno: Errno::from_raw(e),
        })),
    }
}

fn cstring(b: impl Into<Vec<u8>>) -> CString {
    // Paths cannot hold NUL; strings from configs are cut at the first NUL.
    let mut v: Vec<u8> = b.into();
    if let Some(i) = v.iter().position(|&c| c == 0) {
        v.truncate(i);
    }
    CString::new(v).unwrap_or_default()
}

fn path_c(p: &Path) -> CString {
    cstring(p.as_os_str().as_bytes())
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Candidate executables for `argv0`, like `execvp` with the image's PATH.
pub fn exec_candidates(argv0: &str, path_var: Option<&str>) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_owned()];
    }
    path_var
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .map(|d| {
            let d = if d.is_empty() { "." } else { d };
            format!("{}/{argv0}", d.trim_end_matches('/'))
        })
        .collect()
}

fn exec_plan(argv: &[String], env: &[String]) -> ExecPlan {
    let path_var = env.iter().find_map(|kv| kv.strip_prefix("PATH="));
    let cands = argv
        .first()
        .map(|a0| exec_candidates(a0, path_var))
        .unwrap_or_default();
    ExecPlan {
        candidates: cands.into_iter().map(cstring).collect(),
        argv: CArgv::new(argv.iter().map(|s| cstring(s.as_str())).collect()),
        envp: CArgv::new(env.iter().map(|s| cstring(s.as_str())).collect()),
    }
}

/// The image env plus PATH, HOME and HOSTNAME defaults, as runtimes add them.
fn full_env(env: &[String], home: &str) -> Vec<String> {
    let mut out = env.to_vec();
    let has = |k: &str| env.iter().any(|kv| kv.split('=').next() == Some(k));
    if !has("PATH") {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has("HOME") {
        out.push(format!("HOME={home}"));
    }
    if !has("HOSTNAME") {
        out.push("HOSTNAME=oci-slim".into());
    }
    out
}

/// Subordinate id range `(start, count)` of a user in /etc/subuid or /etc/subgid text.
pub fn subid_range(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if who != name && who.parse::<u32>().ok() != Some(id) {
            return None;
        }
        let start = f.next()?.parse().ok()?;
        let count: u32 = f.next()?.parse().ok()?;
        (count > 0).then_some((start, count))
    })
}

enum Maps {
    Direct {
        uid: String,
        gid: String,
        deny: bool,
    },
    Tools {
        uid: Vec<String>,
        gid: Vec<String>,
    },
}

struct IdPlan {
    mode: IdMode,
    maps: Maps,
}

fn plan_ids(user: &users::ImageUser) -> Result<IdPlan, SandboxError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if uid == 0 {
        let sub = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        let base = subid_range(&sub, "root", 0)
            .filter(|&(_, c)| c >= 65535)
            .map_or(100_000, |(s, _)| s);
        let m = format!("0 0 1\n1 {base} 65535\n");
        return Ok(IdPlan {
            mode: IdMode::RootRange,
            maps: Maps::Direct {
                uid: m.clone(),
                gid: m,
                deny: false,
            },
        });
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let gname = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_default();
    let tools = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|t| Path::new(t).exists());
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = std::fs::read_to_string("/etc/subgid").unwrap_or_default();
    let su = subid_range(&subuid, &name, uid);
    let sg = subid_range(&subgid, &gname, gid).or_else(|| subid_range(&subgid, &name, uid));
    if let (true, Some((us, uc)), Some((gs, gc))) = (tools, su, sg) {
        let count = uc.min(gc);
        let max_needed = user
            .groups
            .iter()
            .copied()
            .chain([user.uid, user.gid])
            .max()
            .unwrap_or(0);
        if max_needed > count {
            return Err(SandboxError::IdOutOfRange {
                uid: user.uid,
                gid: user.gid,
                count,
            });
        }
        let args = |own: u32, start: u32| -> Vec<String> {
            vec![
                "0".into(),
                own.to_string(),
                "1".into(),
                "1".into(),
                start.to_string(),
                count.to_string(),
            ]
        };
        return Ok(IdPlan {
            mode: IdMode::SubidRange { count },
            maps: Maps::Tools {
                uid: args(uid, us),
                gid: args(gid, gs),
            },
        });
    }
    Ok(IdPlan {
        mode: IdMode::SingleIdFaked,
        maps: Maps::Direct {
            uid: format!("0 {uid} 1\n"),
            gid: format!("0 {gid} 1\n"),
            deny: true,
        },
    })
}

fn write_maps(pid: Pid, maps: &Maps) -> Result<(), SandboxError> {
    let p = pid.as_raw();
    match maps {
        Maps::Direct { uid, gid, deny } => {
            let w = |file: String, text: &str| {
                std::fs::write(&file, text).map_err(|source| SandboxError::IdMap { file, source })
            };
            if *deny {
                w(format!("/proc/{p}/setgroups"), "deny")?;
            }
            w(format!("/proc/{p}/uid_map"), uid)?;
            w(format!("/proc/{p}/gid_map"), gid)?;
        }
        Maps::Tools { uid, gid } => {
            for (tool, args) in [("newuidmap", uid), ("newgidmap", gid)] {
                let out = std::process::Command::new(format!("/usr/bin/{tool}"))
                    .arg(p.to_string())
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| SandboxError::NewIdMap {
                        tool,
                        detail: e.to_string(),
                    })?;
                if !out.status.success() {
                    return Err(SandboxError::NewIdMap {
                        tool,
                        detail: format!(
                            "{}: {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| SandboxError::Sys {
        what: "creating a pipe",
        errno,
    })
}

/// Human name of a setup step.
fn describe_op(op: &SetupOp) -> String {
    match op {
        SetupOp::Mkdir { path, .. } => format!("mkdir {}", sys::lossy(path)),
        SetupOp::Touch { path } => format!("create {}", sys::lossy(path)),
        SetupOp::Mount {
            target,
            fstype,
            src,
            ..
        } => format!(
            "mount {} on {}",
            fstype
                .as_ref()
                .or(src.as_ref())
                .map_or_else(|| "(flags)".into(), |c| sys::lossy(c)),
            sys::lossy(target)
        ),
        SetupOp::Symlink { link, .. } => format!("symlink {}", sys::lossy(link)),
        SetupOp::WriteFile { path, .. } => format!("write {}", sys::lossy(path)),
        SetupOp::BindFile { target, .. } => format!("bind a file on {}", sys::lossy(target)),
        SetupOp::PivotRoot { new_root } => format!("pivot_root {}", sys::lossy(new_root)),
    }
}

fn stage_name(stage: i32, ops: &[String]) -> String {
    match stage {
        sys::STAGE_UNSHARE => "unshare namespaces".into(),
        sys::STAGE_FORK_INIT => "fork init".into(),
        sys::STAGE_UNSHARE_MNT => "unshare mount namespace".into(),
        sys::STAGE_SETGROUPS => "setgroups".into(),
        sys::STAGE_SETGID => "setgid".into(),
        sys::STAGE_SETUID => "setuid".into(),
        sys::STAGE_CHDIR => "chdir to WorkingDir".into(),
        sys::STAGE_NO_NEW_PRIVS => "set no_new_privs".into(),
        sys::STAGE_SECCOMP => "install seccomp filter".into(),
        sys::STAGE_EXEC => "execve".into(),
        sys::STAGE_LOOPBACK => "bring loopback up".into(),
        sys::STAGE_HOSTNAME => "sethostname".into(),
        sys::STAGE_RLIMIT => "setrlimit (NPROC, DATA)".into(),
        sys::STAGE_FORK_APP => "fork app".into(),
        sys::STAGE_STDIO => "set up stdio".into(),
        sys::STAGE_SETSID => "setsid".into(),
        i => usize::try_from(i)
            .ok()
            .and_then(|i| ops.get(i).cloned())
            .unwrap_or_else(|| format!("step {i}")),
    }
}

/// The `lchown` calls that give staged paths their image owners inside the namespace: none
/// with a single id; ids the namespace does not map are left to the invoking user.
fn owner_plan(lower: &Path, owners: &[(Vec<u8>, u32, u32)], mode: IdMode) -> Vec<sys::Chown> {
    let max = match mode {
        IdMode::SingleIdFaked => return Vec::new(),
        IdMode::SubidRange { count } => count,
        IdMode::RootRange => 65535,
    };
    owners
        .iter()
        .filter(|(p, u, g)| !p.is_empty() && !p.contains(&0) && *u <= max && *g <= max)
        .map(|(p, u, g)| sys::Chown {
            path: path_c(&lower.join(std::ffi::OsStr::from_bytes(p))),
            uid: *u,
            gid: *g,
        })
        .collect()
}

fn setup_ops(
    lower: &Path,
    scratch: &Path,
    limits: &SandboxLimits,
) -> Result<(Vec<SetupOp>, PathBuf), SandboxError> {
    for p in [lower, scratch] {
        let b = p.as_os_str().as_bytes();
        if b.iter().any(|c| matches!(c, b',' | b':' | b'\n')) {
            return Err(SandboxError::BadPathChars(p.to_path_buf()));
        }
    }
    for d in ["proc", "dev"] {
        if std::fs::symlink_metadata(lower.join(d)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(SandboxError::MountTargetSymlink(format!("/{d}")));
        }
    }
    let root = scratch.join("root");
    // The writable half of the overlay lives on a size-capped tmpfs mounted in the sandbox's
    // mount namespace: on the host `rw` stays an empty directory.
    let rw = scratch.join("rw");
    let upper = rw.join("upper");
    let work = rw.join("work");
    for d in [&root, &rw] {
        std::fs::create_dir(d).map_err(|source| SandboxError::Scratch {
            path: d.clone(),
            source,
        })?;
    }
    let c = path_c;
    let mut ops = vec![
        SetupOp::Mount {
            src: None,
            target: cstring("/"),
            fstype: None,
            flags: libc::MS_REC | libc::MS_PRIVATE,
            data: None,
        },
        SetupOp::Mount {
            src: Some(cstring("oci-slim-rw")),
            target: c(&rw),
            fstype: Some(cstring("tmpfs")),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            data: Some(cstring(format!(
                "mode=700,size={}k",
                limits.disk_bytes.div_ceil(1024).max(64)
            ))),
        },
        SetupOp::Mkdir {
            path: c(&upper),
            mode: 0o755,
        },
        SetupOp::Mkdir {
            path: c(&work),
            mode: 0o700,
        },
        SetupOp::Mount {
            src: Some(cstring("overlay")),
            target: c(&root),
            fstype: Some(cstring("overlay")),
            flags: 0,
            data: Some(cstring(format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            ))),
        },
        SetupOp::Mkdir {
            path: c(&root.join("proc")),
            mode: 0o555,
        },
        SetupOp::Mount {
            src: Some(cstring("proc")),
            target: c(&root.join("proc")),
            fstype: Some(cstring("proc")),
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: None,
        },
        SetupOp::Mkdir {
            path: c(&root.join("dev")),
            mode: 0o755,
        },
        SetupOp::Mount {
            src: Some(cstring("tmpfs")),
            target: c(&root.join("dev")),
            fstype: Some(cstring("tmpfs")),
            flags: libc::MS_NOSUID | libc::MS_NOEXEC,
            data: Some(cstring("mode=755,size=65536k")),
        },
    ];
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        let host = Path::new("/dev").join(dev);
        if !host.exists() {
            continue;
        }
        let t = root.join("dev").join(dev);
        ops.push(SetupOp::Touch { path: c(&t) });
        ops.push(SetupOp::Mount {
            src: Some(c(&host)),
            target: c(&t),
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
        });
    }
    ops.push(SetupOp::Mkdir {
        path: c(&root.join("dev/shm")),
        mode: 0o1777,
    });
    ops.push(SetupOp::Mount {
        src: Some(cstring("shm")),
        target: c(&root.join("dev/shm")),
        fstype: Some(cstring("tmpfs")),
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: Some(cstring("mode=1777,size=65536k")),
    });
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(SetupOp::Symlink {
            target: cstring(target),
            link: c(&root.join("dev").join(link)),
        });
    }
    // What every container runtime bind-mounts over the image's own files: the run must see
    // what `docker run` shows, not the image's (or its build host's) copies. They live on the
    // size-capped tmpfs; nothing is created when the image's /etc is a symlink.
    let etc_not_dir =
        std::fs::symlink_metadata(lower.join("etc")).is_ok_and(|m| !m.file_type().is_dir());
    if !etc_not_dir {
        ops.push(SetupOp::Mkdir {
            path: c(&root.join("etc")),
            mode: 0o755,
        });
        for (name, content) in RUNTIME_FILES {
            let src = rw.join(format!("runtime-{name}"));
            ops.push(SetupOp::WriteFile {
                path: c(&src),
                content: content.as_bytes().to_vec(),
                mode: 0o644,
            });
            ops.push(SetupOp::BindFile {
                src: c(&src),
                target: c(&root.join("etc").join(name)),
            });
        }
    }
    ops.push(SetupOp::PivotRoot { new_root: c(&root) });
    Ok((ops, root))
}

/// The files a runtime provides in `/etc` (docker's content for a container named `oci-slim`
/// with no network but loopback; DNS has no server to ask).
const RUNTIME_FILES: [(&str, &str); 3] = [
    (
        "hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\toci-slim\n",
    ),
    ("hostname", "oci-slim\n"),
    (
        "resolv.conf",
        "# oci-slim sandbox: loopback only, no DNS server\noptions timeout:1 attempts:1\n",
    ),
];

fn workdir_plan(workdir: &str) -> (CString, Vec<CString>) {
    let mut abs = String::from("/");
    let mut mk = Vec::new();
    for comp in workdir.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if !abs.ends_with('/') {
            abs.push('/');
        }
        abs.push_str(comp);
        mk.push(cstring(abs.as_str()));
    }
    (cstring(abs), mk)
}

fn build_filter(mode: IdMode) -> Vec<libc::sock_filter> {
    use crate::trace::syscalls as t;
    let fake = mode == IdMode::SingleIdFaked;
    // Stats on a descriptor name no path (the file was recorded when it was opened).
    let empty_ok = |defs: &[t::SysDef]| -> Vec<(u32, u32)> {
        defs.iter()
            .filter(|d| matches!(d.name, "newfstatat" | "fstatat64" | "statx"))
            .filter_map(|d| Some((d.nr, d.at_flags? as u32)))
            .collect()
    };
    let native = sys::seccomp::ArchRules {
        empty_path_ok: empty_ok(t::X86_64),
        trace: t::X86_64.iter().map(|d| d.nr).collect(),
        enosys: t::IO_URING.to_vec(),
        fake_ok: if fake {
            t::X86_64_FAKE_IDS.to_vec()
        } else {
            vec![]
        },
    };
    let i386 = sys::seccomp::ArchRules {
        empty_path_ok: empty_ok(t::I386),
        trace: t::I386.iter().map(|d| d.nr).collect(),
        enosys: t::IO_URING.to_vec(),
        fake_ok: if fake {
            t::I386_FAKE_IDS.to_vec()
        } else {
            vec![]
        },
    };
    sys::seccomp::build_filter(&native, &i386)
}

/// State shared between the ptrace loop (calling thread) and the control thread.
#[derive(Default)]
struct Shared {
    app: Option<Pid>,
    /// Processes that completed an exec. A new child's events may arrive before its parent's
    /// fork event names it, so the app's exec and exit are looked up once the app is known.
    execd: std::collections::HashSet<i32>,
    init_forks: Vec<Pid>,
    exits: HashMap<i32, Status>,
    /// Live traced threads other than the init.
    live: usize,
    init_exited: bool,
    setup_error: Option<(i32, i32)>,
    too_many: bool,
}

impl Shared {
    fn app_exec(&self) -> bool {
        self.app.is_some_and(|a| self.execd.contains(&a.as_raw()))
    }
    fn app_exit(&self) -> Option<Status> {
        self.app.and_then(|a| self.exits.get(&a.as_raw()).copied())
    }
}

struct Ctl {
    state: Mutex<Shared>,
    cond: Condvar,
}

impl Ctl {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until `f` holds (true), the deadline passes or a signal interrupts us (false).
    fn wait_until(&self, deadline: Instant, mut f: impl FnMut(&Shared) -> bool) -> bool {
        let mut g = self.lock();
        loop {
            if f(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || sys::interrupted() {
                return false;
            }
            let slice = (deadline - now).min(Duration::from_millis(100));
            g = self
                .cond
                .wait_timeout(g, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

struct ControlCtx {
    ctl: Arc<Ctl>,
    init: Arc<sys::PidFd>,
    ctrl_w: OwnedFd,
    user_ns: OwnedFd,
    net_ns: OwnedFd,
    null: OwnedFd,
    spec: RunSpec,
    start: Instant,
}

struct ControlOut {
    exit: ExitInfo,
    probes: Vec<ProbeResult>,
    exec_results: Vec<(Vec<String>, i32)>,
    interrupted: bool,
    /// Ports a job with nothing to probe was found listening on, and probed.
    auto_ports: Vec<u16>,
}

enum Waited {
    Exited,
    TimedOut,
    Listening(Vec<u16>),
}

/// How often a batch job's TCP listeners are polled.
const LISTEN_POLL: Duration = Duration::from_millis(250);

/// TCP ports in LISTEN state in the network namespace of process `pid`
/// (`/proc/PID/net/tcp` and `tcp6`), sorted.
fn listening_ports(pid: i32) -> Vec<u16> {
    let mut ports = Vec::new();
    for f in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
        ports.extend(parse_listening(&text));
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The LISTEN (`0A`) entries' local ports of a `/proc/net/tcp`-format table.
fn parse_listening(table: &str) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            (state == "0A").then_some(())?;
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

fn status_code(s: Status) -> i32 {
    match s {
        Status::Exited(c) => c,
        Status::Signaled(n) => 128 + n,
    }
}

fn read_all_until(fd: OwnedFd, deadline: Instant) -> Vec<u8> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut out = Vec::new();
    let mut f = std::fs::File::from(fd);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut pfd = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 64 << 10 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

impl ControlCtx {
    fn deadline(&self) -> Instant {
        self.start + self.spec.timeout
    }

    fn others_alive(&self) -> bool {
        let s = self.ctl.lock();
        s.live > 0 && !s.init_exited
    }

    /// Connect to 127.0.0.1:port inside the sandbox; with a request, return the answer's start.
    fn tcp(&self, port: u16, request: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
        let (r, w) = pipe().map_err(|e| e.to_string())?;
        let job = sys::NetnsJob {
            user_ns: self.user_ns.as_raw_fd(),
            net_ns: self.net_ns.as_raw_fd(),
            out_w: w.as_raw_fd(),
            err_w: w.as_raw_fd(),
            null: self.null.as_raw_fd(),
            exec: None,
            tcp: Some((port, request)),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        };
        let spawned = sys::spawn_netns_job(&job);
        drop(w);
        let pid = spawned.map_err(|e| format!("fork: {e}"))?;
        let out = read_all_until(r, Instant::now() + timeout + Duration::from_secs(1));
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::wait_pid(pid, false);
        if out.len() < 8 {
            return Err("probe process gave no answer".into());
        }
        let stage = i32::from_ne_bytes([out[0], out[1], out[2], out[3]]);
        let e = Errno::from_raw(i32::from_ne_bytes([out[4], out[5], out[6], out[7]]));
        match stage {
            0 => Ok(out[8..].to_vec()),
            sys::NETNS_SETNS_USER => Err(format!("joining the user namespace: {e}")),
            sys::NETNS_SETNS_NET => Err(format!("joining the network namespace: {e}")),
            sys::NETNS_SOCKET => Err(format!("socket: {e}")),
            _ => Err(format!("connect: {e}")),
        }
    }

    fn http(&self, port: u16, path: &str) -> ProbeResult {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: oci-slim\r\nConnection: close\r\n\r\n");
        let name = format!("http://127.0.0.1:{port}{path}");
        match self.tcp(port, req.as_bytes(), Duration::from_secs(5)) {
            Ok(resp) => {
                let line = resp.split(|&b| b == b'\n').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line).trim().to_owned();
                let code: Option<u16> = line
                    .strip_prefix("HTTP/")
                    .and_then(|r| r.split_whitespace().nth(1))
                    .and_then(|c| c.parse().ok());
                ProbeResult {
                    name,
                    ok: code.is_some_and(|c| (200..400).contains(&c)),
                    detail: if line.is_empty() {
                        "no HTTP answer".into()
                    } else {
                        line
                    },
                }
            }
            Err(detail) => ProbeResult {
                name,
                ok: false,
                detail,
            },
        }
    }

    fn probe_cmd(&self, cmd: &str) -> ProbeResult {
        let name = format!("command: {cmd}");
        let fail = |detail: String| ProbeResult {
            name: name.clone(),
            ok: false,
            detail,
        };
        let (r, w) = match pipe() {
            Ok(p) => p,
            Err(e) => return fail(e.to_string()),
        };
        let plan = ExecPlan {
            candidates: vec![cstring("/bin/sh"), cstring("/usr/bin/sh")],
            argv: CArgv::new(vec![cstring("sh"), cstring("-c"), cstring(cmd)]),
            envp: CArgv::new(
                std::env::vars_os()
                    .map(|(k, v)| {
                        let mut b = k.as_bytes().to_vec();
                        b.push(b'=');
                        b.extend_from_slice(v.as_bytes());
                        cstring(b)
                    })
                    .collect(),
            ),
        };
        let job = sys::NetnsJob {
            user_ns: self.user_ns.as_raw_fd(),
            net_ns: self.net_ns.as_raw_fd(),
            out_w: w.as_raw_fd(),
            err_w: w.as_raw_fd(),
            null: self.null.as_raw_fd(),
            exec: Some(&plan),
            tcp: None,
            timeout_ms: 0,
        };
        let spawned = sys::spawn_netns_job(&job);
        drop(w);
        let pid = match spawned {
            Ok(p) => p,
            Err(e) => return fail(format!("fork: {e}")),
        };
        let deadline = (Instant::now() + Duration::from_secs(60)).min(self.deadline());
        let out = read_all_until(r, deadline);
        // The probe child is ours (this thread's), not a tracee: reap it here.
        let status = loop {
            match sys::wait_pid(pid, true) {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < deadline && !sys::interrupted() => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::wait_pid(pid, false);
                    break None;
                }
                Err(_) => break None,
            }
        };
        let Some(status) = status else {
            return fail("timed out".into());
        };
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        let tail = String::from_utf8_lossy(&out[out.len().saturating_sub(200)..])
            .trim()
            .to_owned();
        ProbeResult {
            name,
            ok: code == 0,
            detail: if tail.is_empty() {
                format!("exit {code}")
            } else {
                format!("exit {code}: {tail}")
            },
        }
    }

    /// Ask the init to fork exec command `i`; wait for it; its exit code (-1: lost or timed out).
    fn exec_cmd(&self, i: usize) -> i32 {
        let before = self.ctl.lock().init_forks.len();
        let byte = [u8::try_from(i).unwrap_or(u8::MAX)];
        if nix::unistd::write(&self.ctrl_w, &byte).is_err() {
            return -1;
        }
        let deadline = (Instant::now() + Duration::from_secs(120)).min(self.deadline());
        let mut pid = None;
        let done = self.ctl.wait_until(deadline, |s| {
            if pid.is_none() {
                pid = s.init_forks.get(before).copied();
            }
            pid.is_some_and(|p| s.exits.contains_key(&p.as_raw())) || s.init_exited
        });
        match pid {
            Some(p) if done => self
                .ctl
                .lock()
                .exits
                .get(&p.as_raw())
                .copied()
                .map_or(-1, status_code),
            Some(p) => {
                let _ = sys::kill(p, libc::SIGKILL);
                -1
            }
            None => -1,
        }
    }

    /// Wait for the app to end, polling the sandbox's TCP listeners meanwhile.
    fn wait_exit_or_listen(&self, deadline: Instant) -> Waited {
        let mut seen: Vec<u16> = Vec::new();
        loop {
            let slice = (Instant::now() + LISTEN_POLL).min(deadline);
            let ended = self.ctl.wait_until(slice, |s| {
                s.app_exit().is_some() || s.init_exited || s.too_many
            });
            if ended {
                return Waited::Exited;
            }
            if Instant::now() >= deadline || sys::interrupted() {
                return Waited::TimedOut;
            }
            let app = self.ctl.lock().app;
            let now = app.map(|a| listening_ports(a.as_raw())).unwrap_or_default();
            if !now.is_empty() && now == seen {
                return Waited::Listening(now);
            }
            seen = now;
        }
    }

    fn run(self) -> ControlOut {
        let mut out = ControlOut {
            exit: ExitInfo::TimedOut,
            probes: Vec::new(),
            exec_results: Vec::new(),
            interrupted: false,
            auto_ports: Vec::new(),
        };
        let deadline = self.deadline();
        let started = self.ctl.wait_until(deadline, |s| {
            s.app_exec() || s.app_exit().is_some() || s.setup_error.is_some() || s.init_exited
        });
        let bad = {
            let s = self.ctl.lock();
            s.setup_error.is_some() || s.init_exited || !started
        };
        if bad {
            return self.finish(out);
        }
        let mut tcp_ports = self.spec.tcp_ports.clone();
        let mut ports: Vec<u16> = tcp_ports.clone();
        ports.extend(self.spec.http_probes.iter().map(|p| p.port));
        ports.sort_unstable();
        ports.dedup();
        let mut server = !ports.is_empty() || !self.spec.probe_cmds.is_empty();
        let mut timed_out = false;
        if !server {
            // Nothing to probe was named: a batch job runs to its end. A program that turns
            // out to be a server (it listens on TCP, in two polls in a row) is probed on its
            // listening ports as if they were exposed, instead of waiting for the timeout.
            match self.wait_exit_or_listen(deadline) {
                Waited::Exited => {}
                Waited::TimedOut => timed_out = true,
                Waited::Listening(found) => {
                    out.auto_ports = found.clone();
                    tcp_ports = found.clone();
                    ports = found;
                    server = true;
                }
            }
        }
        if server {
            let ready_deadline = (Instant::now() + self.spec.ready_timeout).min(deadline);
            let mut pending = ports.clone();
            while !pending.is_empty() && !sys::interrupted() {
                pending.retain(|&p| self.tcp(p, b"", Duration::from_millis(500)).is_err());
                if pending.is_empty() || Instant::now() >= ready_deadline || !self.others_alive() {
                    break;
                }
                self.ctl
                    .wait_until(Instant::now() + Duration::from_millis(100), |_| false);
            }
            for &port in &tcp_ports {
                let mut r = self.http(port, "/");
                if !r.ok {
                    let t = self.tcp(port, b"", Duration::from_secs(2));
                    r = ProbeResult {
                        name: format!("tcp://127.0.0.1:{port}"),
                        ok: t.is_ok(),
                        detail: match t {
                            Ok(_) => format!("connected (HTTP: {})", r.detail),
                            Err(e) => e,
                        },
                    };
                }
                out.probes.push(r);
            }
            for p in &self.spec.http_probes {
                out.probes.push(self.http(p.port, &p.path));
            }
            for c in &self.spec.probe_cmds {
                out.probes.push(self.probe_cmd(c));
            }
        }
        if !timed_out && !sys::interrupted() {
            for (i, argv) in self.spec.exec_cmds.iter().enumerate() {
                let code = self.exec_cmd(i);
                out.exec_results.push((argv.clone(), code));
            }
            if server {
                let wait_end = (Instant::now() + self.spec.wait).min(deadline);
                self.ctl.wait_until(wait_end, |s| s.init_exited);
            }
        }
        let (app, app_exit) = {
            let s = self.ctl.lock();
            (s.app, s.app_exit())
        };
        out.exit = match app_exit {
            Some(Status::Exited(c)) => ExitInfo::Exited(c),
            Some(Status::Signaled(n)) => ExitInfo::Signaled(n),
            None if timed_out || Instant::now() >= deadline => ExitInfo::TimedOut,
            None => {
                // A pidfd opened while the tracer has not seen the app's exit refers to the
                // app: the tracer is told of a tracee's death before its parent can reap it.
                let app_fd = app.and_then(|a| sys::PidFd::open(a).ok());
                if let Some(fd) = app_fd.filter(|_| self.ctl.lock().app_exit().is_none()) {
                    let _ = fd.signal(self.spec.stop_signal.unwrap_or(libc::SIGTERM));
                    let grace = (Instant::now() + STOP_GRACE).min(deadline);
                    self.ctl
                        .wait_until(grace, |s| s.app_exit().is_some() && s.live == 0);
                }
                ExitInfo::StoppedByUs
            }
        };
        if self.ctl.lock().too_many {
            out.exit = ExitInfo::TimedOut;
        }
        self.finish(out)
    }

    fn finish(self, mut out: ControlOut) -> ControlOut {
        out.interrupted = sys::interrupted();
        // Killing the init kills the whole PID namespace.
        let _ = self.init.signal(libc::SIGKILL);
        drop(self.ctrl_w);
        let d = Instant::now() + Duration::from_secs(30);
        self.ctl.wait_until(d, |s| s.init_exited);
        out
    }
}

fn spawn_reader(fd: OwnedFd) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            match f.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * CAPTURE_LIMIT {
                        buf.drain(..buf.len() - CAPTURE_LIMIT);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if buf.len() > CAPTURE_LIMIT {
            buf.drain(..buf.len() - CAPTURE_LIMIT);
        }
        buf
    })
}

/// Kills and reaps the outer child on early return so nothing outlives a failed setup.
struct KillOnDrop(Option<Pid>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = sys::kill(p, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
        }
    }
}

struct KillInitOnDrop(Arc<sys::PidFd>);
impl Drop for KillInitOnDrop {
    fn drop(&mut self) {
        let _ = self.0.signal(libc::SIGKILL);
    }
}

fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

/// Run the spec in the sandbox and trace it. Program failures are outcomes, not errors.
pub fn run(spec: &RunSpec) -> Result<RunOutcome, SandboxError> {
    let start = Instant::now();
    let argv = spec.exec.argv();
    if argv.is_empty() {
        return Err(SandboxError::EmptyCommand);
    }
    if !spec.lower.is_dir() {
        return Err(SandboxError::LowerNotDir(spec.lower.clone()));
    }
    let passwd = users::parse_passwd(&users::read_image_file(&spec.lower, "/etc/passwd"));
    let group = users::parse_group(&users::read_image_file(&spec.lower, "/etc/group"));
    let user =
        users::resolve(&spec.exec.user, &passwd, &group).map_err(|source| SandboxError::User {
            user: spec.exec.user.clone(),
            source,
        })?;
    let ids = plan_ids(&user)?;

    let scratch = tempfile::Builder::new()
        .prefix(".oci-slim-run-")
        .tempdir_in(&spec.scratch_parent)
        .map_err(|source| SandboxError::Scratch {
            path: spec.scratch_parent.clone(),
            source,
        })?
        .keep();
    let result = run_in(spec, &argv, &user, ids, &scratch, start);
    let mut warnings = Vec::new();
    if scratch.exists() {
        // The removal inside the namespace did not run or failed: try from here.
        if let Err(e) = std::fs::remove_dir_all(&scratch) {
            warnings.push(format!(
                "removing scratch directory `{}` failed: {e}",
                scratch.display()
            ));
        }
    }
    result.map(|mut o| {
        o.warnings.extend(warnings);
        o
    })
}

fn run_in(
    spec: &RunSpec,
    argv: &[String],
    user: &users::ImageUser,
    ids: IdPlan,
    scratch: &Path,
    start: Instant,
) -> Result<RunOutcome, SandboxError> {
    let (setup, root) = setup_ops(&spec.lower, scratch, &spec.limits)?;
    let op_names: Vec<String> = setup.iter().map(describe_op).collect();
    let (workdir, workdir_mkdirs) = workdir_plan(&spec.exec.workdir);
    let env = full_env(&spec.exec.env, &user.home);
    let (report_r, report_w) = pipe()?;
    let (ctrl_r, ctrl_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let null: OwnedFd = std::fs::File::open("/dev/null")
        .map_err(|source| SandboxError::Scratch {
            path: "/dev/null".into(),
            source,
        })?
        .into();
    let nproc = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
        .ok()
        .map(|(_, hard)| {
            let want = spec.limits.processes.max(1);
            (want.min(hard), want.min(hard))
        });
    let data = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_DATA)
        .ok()
        .map(|(_, hard)| {
            let want = spec.limits.memory_bytes.max(16 << 20);
            (want.min(hard), want.min(hard))
        });
    let plan = sys::SandboxPlan {
        report_w: raw(&report_w),
        ctrl_r: raw(&ctrl_r),
        stdin: raw(&null),
        stdout_w: raw(&out_w),
        stderr_w: raw(&err_w),
        unshare_flags: libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS,
        setup,
        hostname: cstring("oci-slim"),
        nproc,
        data,
        workdir_mkdirs,
        workdir,
        ids: match ids.mode {
            IdMode::SingleIdFaked => None,
            _ => Some(sys::Ids {
                uid: user.uid,
                gid: user.gid,
                groups: user.groups.clone(),
            }),
        },
        owners: owner_plan(&spec.lower, &spec.owners, ids.mode),
        filter: build_filter(ids.mode),
        app: exec_plan(argv, &env),
        cmds: spec.exec_cmds.iter().map(|c| exec_plan(c, &env)).collect(),
        cleanup: Some(ExecPlan {
            candidates: vec![cstring("/bin/rm"), cstring("/usr/bin/rm")],
            argv: CArgv::new(vec![
                cstring("rm"),
                cstring("-rf"),
                cstring("--"),
                path_c(scratch),
            ]),
            envp: CArgv::new(vec![]),
        }),
    };
    let signals = sys::SignalGuard::install();
    let outer = sys::spawn_sandbox(&plan).map_err(|errno| SandboxError::Sys {
        what: "fork",
        errno,
    })?;
    let mut outer_guard = KillOnDrop(Some(outer));
    drop((report_w, ctrl_r, out_w, err_w));

    let report_fd = raw(&report_r);
    let setup_err = |stage: i32, e: i32| -> SandboxError {
        let errno = Errno::from_raw(e);
        if stage == sys::STAGE_UNSHARE {
            return SandboxError::UserNamespace { errno };
        }
        let name = stage_name(stage, &op_names);
        let hint = if name.starts_with("mount overlay") {
            "\nhint: the scratch directory must be on a file system that can hold an overlay upper dir (for example ext4 or xfs, not overlayfs); choose another scratch location"
        } else {
            ""
        };
        SandboxError::Setup {
            stage: name,
            errno,
            hint,
        }
    };
    match sys::read_report(report_fd) {
        Ok(Some((sys::REPORT_UNSHARED, _, _))) => {}
        Ok(Some((sys::REPORT_ERROR, s, e))) => return Err(setup_err(s, e)),
        _ => return Err(SandboxError::EarlyExit),
    }
    write_maps(outer, &ids.maps)?;
    nix::unistd::write(&ctrl_w, &[1u8]).map_err(|errno| SandboxError::Sys {
        what: "writing to the sandbox control pipe",
        errno,
    })?;
    let init = match sys::read_report(report_fd) {
        Ok(Some((sys::REPORT_INIT_PID, p, _))) if p > 0 => Pid::from_raw(p),
        Ok(Some((sys::REPORT_ERROR, s, e))) => return Err(setup_err(s, e)),
        _ => return Err(SandboxError::EarlyExit),
    };
    let mut tracer = Tracer::new(root.as_os_str().as_bytes());
    if let Err(e) = tracer.seize(init) {
        let _ = sys::kill(init, libc::SIGKILL);
        return Err(e.into());
    }
    tracer.set_exe(init, "");
    let init_fd = match sys::PidFd::open(init) {
        Ok(fd) => Arc::new(fd),
        Err(errno) => {
            let _ = sys::kill(init, libc::SIGKILL);
            return Err(SandboxError::Sys {
                what: "opening a pidfd for the sandbox init",
                errno,
            });
        }
    };
    let ns = |n: &str| -> Result<OwnedFd, SandboxError> {
        std::fs::File::open(format!("/proc/{}/ns/{n}", init.as_raw()))
            .map(OwnedFd::from)
            .map_err(|e| SandboxError::Sys {
                what: "opening the sandbox namespaces",
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })
    };
    let (user_ns, net_ns) = match (ns("user"), ns("net")) {
        (Ok(u), Ok(n)) => (u, n),
        (Err(e), _) | (_, Err(e)) => {
            let _ = sys::kill(init, libc::SIGKILL);
            return Err(e);
        }
    };
    nix::unistd::write(&ctrl_w, &[0u8]).map_err(|errno| SandboxError::Sys {
        what: "writing to the sandbox control pipe",
        errno,
    })?;
    // From here on the ptrace loop reaps every child; the guard must not wait.
    outer_guard.0 = None;

    let ctl = Arc::new(Ctl {
        state: Mutex::new(Shared::default()),
        cond: Condvar::new(),
    });
    let out_thread = spawn_reader(out_r);
    let err_thread = spawn_reader(err_r);
    let report_thread = {
        let ctl = ctl.clone();
        std::thread::spawn(move || {
            let fd = report_r;
            while let Ok(Some((kind, s, e))) = sys::read_report(fd.as_raw_fd()) {
                if kind == sys::REPORT_ERROR {
                    let mut g = ctl.lock();
                    g.setup_error.get_or_insert((s, e));
                    ctl.cond.notify_all();
                }
            }
        })
    };
    let control = ControlCtx {
        ctl: ctl.clone(),
        init: init_fd.clone(),
        ctrl_w,
        user_ns,
        net_ns,
        null,
        spec: spec.clone(),
        start,
    };
    let control_thread = {
        let guard = KillInitOnDrop(init_fd.clone());
        std::thread::spawn(move || {
            // Even if the control logic panics, the init dies and the ptrace loop ends.
            let _guard = guard;
            control.run()
        })
    };

    let mut init_alive = true;
    let mut loop_err = None;
    loop {
        let ev = match tracer.step() {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => {
                loop_err = Some(e);
                let _ = init_fd.signal(libc::SIGKILL);
                break;
            }
        };
        if ev == Event::Handled && tracer.live() <= MAX_TRACEES {
            // A path stop or a signal: nothing the control thread waits for.
            continue;
        }
        let mut g = ctl.lock();
        match ev {
            Event::NewTracee {
                parent,
                child,
                thread: false,
            } if parent == init => {
                if g.app.is_none() {
                    g.app = Some(child);
                }
                g.init_forks.push(child);
            }
            Event::Exec { pid } => {
                g.execd.insert(pid.as_raw());
            }
            Event::TraceeExit { pid, status } => {
                if pid == init {
                    g.init_exited = true;
                    init_alive = false;
                }
                g.exits.insert(pid.as_raw(), status);
            }
            Event::ChildExit { pid, status } => {
                g.exits.insert(pid.as_raw(), status);
            }
            _ => {}
        }
        g.live = tracer.live().saturating_sub(usize::from(init_alive));
        if tracer.live() > MAX_TRACEES && !g.too_many {
            g.too_many = true;
            let _ = init_fd.signal(libc::SIGKILL);
        }
        if sys::interrupted() {
            let _ = init_fd.signal(libc::SIGKILL);
        }
        ctl.cond.notify_all();
    }
    {
        let mut g = ctl.lock();
        g.init_exited = true;
        ctl.cond.notify_all();
    }
    let control_out = control_thread.join().unwrap_or(ControlOut {
        exit: ExitInfo::TimedOut,
        probes: vec![],
        exec_results: vec![],
        interrupted: false,
        auto_ports: vec![],
    });
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let _ = report_thread.join();
    drop(signals);
    if let Some(e) = loop_err {
        return Err(e.into());
    }
    if control_out.interrupted {
        return Err(SandboxError::Interrupted);
    }
    let setup_error = ctl.lock().setup_error;
    if let Some((stage, e)) = setup_error {
        if stage == sys::STAGE_EXEC {
            return Err(SandboxError::Exec {
                cmd: argv.join(" "),
                errno: Errno::from_raw(e),
            });
        }
        return Err(setup_err(stage, e));
    }
    let mut warnings = Vec::new();
    if tracer.dropped() > 0 {
        warnings.push(format!(
            "{} observations dropped after the cap was reached",
            tracer.dropped()
        ));
    }
    if ctl.lock().too_many {
        warnings.push(format!(
            "more than {MAX_TRACEES} processes or threads: the sandbox was killed"
        ));
    }
    if !control_out.auto_ports.is_empty() {
        let list: Vec<String> = control_out.auto_ports.iter().map(u16::to_string).collect();
        warnings.push(format!(
            "the image exposes no ports and names no probes, but the program listened on tcp {}: probed there (add EXPOSE or --http-probe to make it explicit)",
            list.join(", ")
        ));
    }
    Ok(RunOutcome {
        observations: tracer.take_observations(),
        exit: control_out.exit,
        probes: control_out.probes,
        exec_results: control_out.exec_results,
        stdout,
        stderr,
        id_mode: ids.mode,
        duration: start.elapsed(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_from_proc_net_tcp() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
";
        assert_eq!(parse_listening(tcp), vec![8080, 80]);
        let tcp6 =
            "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:18EB 00000000000000000000000000000000:0000 0A 0
";
        assert_eq!(parse_listening(tcp6), vec![6379]);
        assert!(parse_listening("").is_empty());
        assert!(parse_listening("header\n garbage line\n").is_empty());
    }

    #[test]
    fn candidates_table() {
        let cases: &[(&str, Option<&str>, &[&str])] = &[
            ("/bin/sh", None, &["/bin/sh"]),
            ("./run", Some("/x"), &["./run"]),
            (
                "nginx",
                Some("/usr/sbin:/bin/"),
                &["/usr/sbin/nginx", "/bin/nginx"],
            ),
            ("a", Some(":/b"), &["./a", "/b/a"]),
        ];
        for (a0, p, want) in cases {
            assert_eq!(exec_candidates(a0, *p), *want, "{a0}");
        }
        assert_eq!(exec_candidates("x", None).len(), 6);
    }

    #[test]
    fn subid_table() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(subid_range(text, "alice", 5), Some((100000, 65536)));
        assert_eq!(subid_range(text, "carol", 1001), Some((200000, 1000)));
        assert_eq!(subid_range(text, "bob", 7), None);
        assert_eq!(subid_range(text, "dave", 9), None);
    }

    #[test]
    fn workdir_table() {
        let cases: &[(&str, &str, usize)] = &[
            ("", "/", 0),
            ("/app", "/app", 1),
            ("a/b/", "/a/b", 2),
            ("/./x//y", "/x/y", 2),
        ];
        for (w, abs, n) in cases {
            let (a, mk) = workdir_plan(w);
            assert_eq!(a.to_str().unwrap(), *abs);
            assert_eq!(mk.len(), *n);
        }
    }

    #[test]
    fn env_defaults() {
        let e = full_env(&["PATH=/x".into()], "/root");
        assert!(e.contains(&"PATH=/x".to_string()));
        assert!(e.contains(&"HOME=/root".to_string()));
        assert_eq!(e.iter().filter(|v| v.starts_with("PATH=")).count(), 1);
    }

    #[test]
    fn filter_builds_for_every_mode() {
        for m in [
            IdMode::SingleIdFaked,
            IdMode::RootRange,
            IdMode::SubidRange { count: 10 },
        ] {
            let f = build_filter(m);
            assert!(f.len() > 100, "{}", f.len());
        }
    }
}
