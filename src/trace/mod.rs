//! The ptrace loop: raw observations only (pid, exe, syscall, path as named, open flags).
//!
//! The tracee runs under a seccomp filter that returns TRACE for path-bearing syscalls only
//! ([`syscalls`]), so the loop sees one `PTRACE_EVENT_SECCOMP` stop per such call and resumes with
//! `PTRACE_CONT` (no syscall-exit stops). New processes and threads are followed by
//! `PTRACE_O_TRACEFORK|VFORK|CLONE`; exec by `PTRACE_EVENT_EXEC`, recorded as an `execve`
//! observation of the new executable.
//!
//! Paths: absolute arguments are kept as named; relative ones are joined with the thread's cwd
//! (`/proc/TID/cwd`) or the dirfd (`/proc/TID/fd/N`). The tracer lives outside the sandbox's mount
//! namespace; the kernel prints such links relative to the sandbox root, and a leading host
//! prefix of the sandbox root, if any, is stripped (see [`Tracer::new`]).

pub mod syscalls;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;
use serde::Serialize;

use crate::sys;
use syscalls::{PathArg, SysDef, Write};

/// One path-bearing syscall (or an exec) seen in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Observation {
    pub pid: i32,
    /// Path of the executable as seen in the sandbox.
    pub exe: String,
    pub syscall: String,
    /// Absolute, inside the sandbox, not canonicalized.
    pub path: Vec<u8>,
    /// Open flags (open, openat, openat2, creat).
    pub flags: Option<u64>,
    /// The call modifies the file system at `path`.
    pub write: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("attaching to process {pid} with `PTRACE_SEIZE` failed: {errno}")]
    Seize { pid: i32, errno: Errno },
    #[error("waiting for traced processes failed: {0}")]
    Wait(Errno),
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

/// What the loop reports to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A traced thread or process ended (`leader`: pid == tgid as far as we know).
    TraceeExit { pid: Pid, status: Status },
    /// A child process that is not traced was reaped (our own helpers).
    ChildExit { pid: Pid, status: Status },
    /// `parent` created `child` (a process, or a thread when `thread`).
    NewTracee {
        parent: Pid,
        child: Pid,
        thread: bool,
    },
    /// `pid` completed an execve.
    Exec { pid: Pid },
    /// A stop was handled; nothing to report.
    Handled,
    /// `waitpid` was interrupted by a signal.
    Interrupted,
}

#[derive(Debug, Default)]
struct ThreadState {
    exe: Option<String>,
}

/// The ptrace loop state. Must be used from the thread that seized the tracees.
pub struct Tracer {
    root_prefix: Vec<u8>,
    /// Our own executable: forks of oci-slim that have not exec'd yet show it; reported as "".
    self_exe: Vec<u8>,
    threads: HashMap<i32, ThreadState>,
    observations: Vec<Observation>,
    seen: HashSet<u64>,
    max_observations: usize,
    dropped: u64,
}

const SEIZE_OPTIONS: i32 = libc::PTRACE_O_EXITKILL
    | libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACEEXEC;

impl Tracer {
    /// `root_prefix`: host path of the sandbox root mount point; stripped from `/proc` links
    /// when the kernel prints them with it.
    pub fn new(root_prefix: &[u8]) -> Self {
        Tracer {
            root_prefix: root_prefix.to_vec(),
            self_exe: std::fs::read_link("/proc/self/exe")
                .map(|p| p.as_os_str().as_bytes().to_vec())
                .unwrap_or_default(),
            threads: HashMap::new(),
            observations: Vec::new(),
            seen: HashSet::new(),
            max_observations: 4_000_000,
            dropped: 0,
        }
    }

    pub fn seize(&mut self, pid: Pid) -> Result<(), TraceError> {
        let opts = ptrace::Options::from_bits_truncate(SEIZE_OPTIONS);
        ptrace::seize(pid, opts).map_err(|errno| TraceError::Seize {
            pid: pid.as_raw(),
            errno,
        })?;
        self.threads.insert(pid.as_raw(), ThreadState::default());
        Ok(())
    }

    /// Set the executable name reported for `pid` until it execs (the init is a fork of
    /// oci-slim itself: its host path means nothing inside the sandbox).
    pub fn set_exe(&mut self, pid: Pid, exe: &str) {
        self.threads.entry(pid.as_raw()).or_default().exe = Some(exe.to_owned());
    }

    /// Traced threads currently alive.
    pub fn live(&self) -> usize {
        self.threads.len()
    }

    pub fn is_traced(&self, pid: Pid) -> bool {
        self.threads.contains_key(&pid.as_raw())
    }

    /// Observations dropped after the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn take_observations(&mut self) -> Vec<Observation> {
        self.seen.clear();
        std::mem::take(&mut self.observations)
    }

    /// Wait for one event of any child or tracee, handle it and resume the tracee.
    /// `Ok(None)`: no children left.
    pub fn step(&mut self) -> Result<Option<Event>, TraceError> {
        let (pid, status) = match sys::wait_any(false) {
            Ok(x) => x,
            Err(Errno::EINTR) => return Ok(Some(Event::Interrupted)),
            Err(Errno::ECHILD) => return Ok(None),
            Err(e) => return Err(TraceError::Wait(e)),
        };
        Ok(Some(self.handle(pid, status)))
    }

    fn handle(&mut self, pid: Pid, status: i32) -> Event {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            let st = if libc::WIFEXITED(status) {
                Status::Exited(libc::WEXITSTATUS(status))
            } else {
                Status::Signaled(libc::WTERMSIG(status))
            };
            return if self.threads.remove(&pid.as_raw()).is_some() {
                Event::TraceeExit { pid, status: st }
            } else {
                Event::ChildExit { pid, status: st }
            };
        }
        if !libc::WIFSTOPPED(status) {
            return Event::Handled;
        }
        // A new child's first stop may arrive before its parent's fork event.
        self.threads.entry(pid.as_raw()).or_default();
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xffff;
        let mut out = Event::Handled;
        let mut inject = 0;
        match event {
            0 => {
                if sig == (libc::SIGTRAP | 0x80) {
                    // syscall stop: not requested, just resume
                } else {
                    inject = sig; // signal-delivery-stop
                }
            }
            libc::PTRACE_EVENT_SECCOMP => self.on_seccomp(pid),
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(child) = ptrace::getevent(pid) {
                    let child = Pid::from_raw(child as i32);
                    // The child may have reported (even exec'd) before this event: keep what
                    // it has; otherwise it runs the parent's executable until it execs.
                    let exe = self.threads.get(&pid.as_raw()).and_then(|t| t.exe.clone());
                    self.threads
                        .entry(child.as_raw())
                        .or_insert(ThreadState { exe });
                    out = Event::NewTracee {
                        parent: pid,
                        child,
                        thread: event == libc::PTRACE_EVENT_CLONE,
                    };
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                if let Ok(former) = ptrace::getevent(pid) {
                    if former as i32 != pid.as_raw() {
                        self.threads.remove(&(former as i32));
                    }
                }
                let st = self.threads.entry(pid.as_raw()).or_default();
                st.exe = None;
                let exe = self.exe_of(pid);
                self.record(Observation {
                    pid: pid.as_raw(),
                    exe: exe.clone(),
                    syscall: "execve".into(),
                    path: exe.into_bytes(),
                    flags: None,
                    write: false,
                });
                out = Event::Exec { pid };
            }
            libc::PTRACE_EVENT_STOP => {
                if matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) {
                    // group-stop: stay stopped, but keep reporting events
                    let _ = sys::ptrace_listen(pid);
                    return out;
                }
            }
            _ => {}
        }
        // ESRCH: the tracee died meanwhile (its exit comes as a later event).
        let _ = sys::ptrace_cont(pid, inject);
        out
    }

    fn strip_root(&self, mut p: Vec<u8>) -> Vec<u8> {
        if !self.root_prefix.is_empty() && p.starts_with(&self.root_prefix) {
            let rest = &p[self.root_prefix.len()..];
            if rest.is_empty() {
                return b"/".to_vec();
            }
            if rest[0] == b'/' {
                p = rest.to_vec();
            }
        }
        p
    }

    fn proc_link(&self, pid: Pid, what: &str) -> Option<Vec<u8>> {
        let l = std::fs::read_link(format!("/proc/{}/{what}", pid.as_raw())).ok()?;
        Some(self.strip_root(l.as_os_str().as_bytes().to_vec()))
    }

    fn exe_of(&mut self, pid: Pid) -> String {
        if let Some(e) = self.threads.get(&pid.as_raw()).and_then(|t| t.exe.clone()) {
            return e;
        }
        let e = self
            .proc_link(pid, "exe")
            .filter(|b| *b != self.self_exe)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if let Some(t) = self.threads.get_mut(&pid.as_raw()) {
            t.exe = Some(e.clone());
        }
        e
    }

    fn record(&mut self, o: Observation) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        o.hash(&mut h);
        if !self.seen.insert(h.finish()) {
            return;
        }
        if self.observations.len() >= self.max_observations {
            self.dropped += 1;
            return;
        }
        self.observations.push(o);
    }

    fn on_seccomp(&mut self, pid: Pid) {
        let Ok(Some(info)) = sys::seccomp_stop_info(pid) else {
            return;
        };
        let table = match info.arch {
            sys::seccomp::AUDIT_ARCH_X86_64 => syscalls::X86_64,
            sys::seccomp::AUDIT_ARCH_I386 => syscalls::I386,
            _ => return,
        };
        let Some(def) = syscalls::lookup(table, info.nr) else {
            return;
        };
        let compat = info.arch == sys::seccomp::AUDIT_ARCH_I386;
        let args = info.args.map(|a| if compat { a & 0xffff_ffff } else { a });
        let flags = self.open_flags(pid, def, &args);
        for &(arg, w) in def.paths {
            let Some(path) = self.path_arg(pid, def, arg, &args, compat) else {
                continue;
            };
            let write = match w {
                Write::No => false,
                Write::Yes => true,
                Write::OpenFlags => {
                    def.name == "creat"
                        || flags.is_some_and(|f| {
                            f & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC)
                                as u64
                                != 0
                        })
                }
            };
            let exe = self.exe_of(pid);
            self.record(Observation {
                pid: pid.as_raw(),
                exe,
                syscall: def.name.to_owned(),
                path,
                flags,
                write,
            });
        }
    }

    fn open_flags(&self, pid: Pid, def: &SysDef, args: &[u64; 6]) -> Option<u64> {
        let i = def.flags?;
        if def.name == "openat2" {
            let b = sys::read_mem(pid, args[i], 8).ok()?;
            let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
            return Some(u64::from_ne_bytes(a));
        }
        Some(args[i] & 0xffff_ffff)
    }

    fn path_arg(
        &self,
        pid: Pid,
        def: &SysDef,
        arg: PathArg,
        args: &[u64; 6],
        compat: bool,
    ) -> Option<Vec<u8>> {
        let (dirfd, raw) = match arg {
            PathArg::Cwd(i) => (libc::AT_FDCWD, self.read_path(pid, args[i])?),
            PathArg::At { dirfd, path } => {
                let fd = if compat {
                    args[dirfd] as u32 as i32
                } else {
                    args[dirfd] as i32
                };
                (fd, self.read_path(pid, args[path])?)
            }
            PathArg::SockAddr { addr, len } => {
                let len = (args[len] as usize).min(std::mem::size_of::<libc::sockaddr_un>());
                if len <= 2 || args[addr] == 0 {
                    return None;
                }
                let b = sys::read_mem(pid, args[addr], len).ok()?;
                if b.len() <= 2 || u16::from_ne_bytes([b[0], b[1]]) != libc::AF_UNIX as u16 {
                    return None;
                }
                let p = &b[2..];
                // abstract sockets start with NUL: no file
                let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                if end == 0 {
                    return None;
                }
                (libc::AT_FDCWD, p[..end].to_vec())
            }
        };
        if raw.is_empty() {
            let empty_ok = def
                .at_flags
                .is_some_and(|i| args[i] & libc::AT_EMPTY_PATH as u64 != 0);
            if !empty_ok || dirfd == libc::AT_FDCWD {
                return None;
            }
            return self
                .proc_link(pid, &format!("fd/{dirfd}"))
                .filter(|p| p.first() == Some(&b'/'));
        }
        if raw.first() == Some(&b'/') {
            return Some(raw);
        }
        let base = if dirfd == libc::AT_FDCWD {
            self.proc_link(pid, "cwd")
        } else {
            self.proc_link(pid, &format!("fd/{dirfd}"))
        }
        .unwrap_or_else(|| b"/".to_vec());
        Some(join(&base, &raw))
    }

    fn read_path(&self, pid: Pid, addr: u64) -> Option<Vec<u8>> {
        if addr == 0 {
            return None;
        }
        sys::read_cstring(pid, addr, libc::PATH_MAX as usize).ok()
    }
}

/// Join a base directory and a relative path without normalizing.
pub fn join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rel);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_table() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"/", b"etc/passwd", b"/etc/passwd"),
            (b"/app", b"x", b"/app/x"),
            (b"/app/", b"./x", b"/app/./x"),
            (b"/a", b"../b", b"/a/../b"),
        ];
        for (b, r, want) in cases {
            assert_eq!(join(b, r), want.to_vec());
        }
    }

    #[test]
    fn strip_root_table() {
        let t = Tracer::new(b"/tmp/s/root");
        let cases: &[(&[u8], &[u8])] = &[
            (b"/tmp/s/root", b"/"),
            (b"/tmp/s/root/etc", b"/etc"),
            (b"/tmp/s/rootx", b"/tmp/s/rootx"),
            (b"/etc", b"/etc"),
        ];
        for (p, want) in cases {
            assert_eq!(t.strip_root(p.to_vec()), want.to_vec());
        }
    }
}
