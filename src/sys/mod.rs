//! Every `unsafe` block of the crate: fork, namespaces, mounts, ptrace, seccomp BPF,
//! `process_vm_readv`.
//!
//! Code that runs in a forked child (functions named `child_*` and the `spawn_*` children) must not
//! allocate, lock or log: the parent may be multi-threaded, so only raw syscalls on data prepared
//! before the fork are allowed there. Failures are reported as fixed-size records over a CLOEXEC pipe.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;

use libc::{c_char, c_int, c_long, c_ulong};
use nix::errno::Errno;
use nix::unistd::Pid;

pub mod cleanup;
pub mod seccomp;

/// A NULL-terminated array of C strings (argv / envp), built before a fork.
pub struct CArgv {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CArgv {
    pub fn new(strings: Vec<CString>) -> Self {
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CArgv {
            _strings: strings,
            ptrs,
        }
    }
    fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// Report record kinds sent from the sandbox children to the parent.
pub const REPORT_UNSHARED: u32 = 1;
pub const REPORT_INIT_PID: u32 = 2;
pub const REPORT_ERROR: u32 = 3;

/// Stages reported with `REPORT_ERROR`; values below `STAGE_BASE` index `SandboxPlan::setup`.
pub const STAGE_BASE: i32 = 1000;
pub const STAGE_UNSHARE: i32 = 1000;
pub const STAGE_FORK_INIT: i32 = 1001;
pub const STAGE_UNSHARE_MNT: i32 = 1002;
pub const STAGE_SETGROUPS: i32 = 1003;
pub const STAGE_SETGID: i32 = 1004;
pub const STAGE_SETUID: i32 = 1005;
pub const STAGE_CHDIR: i32 = 1006;
pub const STAGE_NO_NEW_PRIVS: i32 = 1007;
pub const STAGE_SECCOMP: i32 = 1008;
pub const STAGE_EXEC: i32 = 1009;
pub const STAGE_LOOPBACK: i32 = 1010;
pub const STAGE_HOSTNAME: i32 = 1011;
pub const STAGE_RLIMIT: i32 = 1012;
pub const STAGE_FORK_APP: i32 = 1013;
pub const STAGE_STDIO: i32 = 1014;
pub const STAGE_SETSID: i32 = 1015;

/// One filesystem step of building the sandbox root, run by the init process before `pivot_root`
/// (paths are host paths then) or after it (paths inside the new root).
pub enum SetupOp {
    /// `mkdir`; an existing entry is fine.
    Mkdir { path: CString, mode: u32 },
    /// Create an empty regular file if missing (a bind-mount target).
    Touch { path: CString },
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// `symlink`; an existing entry is fine.
    Symlink { target: CString, link: CString },
    /// Create `path` (which must not exist) with `content`.
    WriteFile {
        path: CString,
        content: Vec<u8>,
        mode: u32,
    },
    /// Bind-mount the file `src` over `target`, creating `target` when missing. Best effort: a
    /// target that is a symlink (never followed) or not a regular file is left alone.
    BindFile { src: CString, target: CString },
    /// chdir into `new_root`, `pivot_root(".", ".")`, detach the old root, chdir `/`.
    PivotRoot { new_root: CString },
}

/// How a traced program is started inside the sandbox.
pub struct ExecPlan {
    /// Candidate paths tried in order (PATH search done like `execvp`).
    pub candidates: Vec<CString>,
    pub argv: CArgv,
    pub envp: CArgv,
}

/// Identity switched to before exec (None: stay root in the namespace).
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
}

/// One `lchown` of a staged path to its image owner (ids as seen inside the namespace).
pub struct Chown {
    pub path: CString,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the sandbox children need, prepared before the fork.
pub struct SandboxPlan {
    pub report_w: RawFd,
    pub ctrl_r: RawFd,
    pub stdin: RawFd,
    pub stdout_w: RawFd,
    pub stderr_w: RawFd,
    pub unshare_flags: c_int,
    pub setup: Vec<SetupOp>,
    pub hostname: CString,
    pub nproc: Option<(u64, u64)>,
    /// `RLIMIT_DATA` (soft, hard) of the app and the exec commands.
    pub data: Option<(u64, u64)>,
    pub workdir_mkdirs: Vec<CString>,
    pub workdir: CString,
    pub ids: Option<Ids>,
    pub filter: Vec<libc::sock_filter>,
    /// Applied by the outer child once the id maps are written (it is root of the user
    /// namespace there), undone (owner 0:0, the invoking user) after the init exited.
    pub owners: Vec<Chown>,
    pub app: ExecPlan,
    pub cmds: Vec<ExecPlan>,
    /// Exec'd by the outer child after the init exited, inside the user namespace (it can delete
    /// files of subordinate ids): `rm -rf scratch`. It cannot fork any more: its children would go
    /// to the dead PID namespace.
    pub cleanup: Option<ExecPlan>,
}

fn errno() -> i32 {
    Errno::last_raw()
}

fn child_report(fd: RawFd, kind: u32, a: i32, b: i32) {
    let mut rec = [0u8; 12];
    rec[0..4].copy_from_slice(&kind.to_ne_bytes());
    rec[4..8].copy_from_slice(&a.to_ne_bytes());
    rec[8..12].copy_from_slice(&b.to_ne_bytes());
    // SAFETY: writing a stack buffer to a pipe fd.
    unsafe {
        libc::write(fd, rec.as_ptr().cast(), rec.len());
    }
}

fn child_fail(fd: RawFd, stage: i32) -> ! {
    let e = errno();
    child_report(fd, REPORT_ERROR, stage, e);
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(125) }
}

fn child_read_byte(fd: RawFd) -> Option<u8> {
    let mut b = 0u8;
    loop {
        // SAFETY: reading one byte into a stack variable.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return Some(b);
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return None;
    }
}

/// Read one report record; `None` on EOF.
pub fn read_report(fd: RawFd) -> Result<Option<(u32, i32, i32)>, Errno> {
    let mut rec = [0u8; 12];
    let mut got = 0;
    while got < rec.len() {
        // SAFETY: reading into the unfilled tail of a stack buffer.
        let n = unsafe { libc::read(fd, rec[got..].as_mut_ptr().cast(), rec.len() - got) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        got += n as usize;
    }
    let w = |i: usize| [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
    Ok(Some((
        u32::from_ne_bytes(w(0)),
        i32::from_ne_bytes(w(4)),
        i32::from_ne_bytes(w(8)),
    )))
}

/// Fork the outer sandbox child. It unshares the namespaces, waits for the id maps, forks the
/// init (PID 1), reports the init's pid, waits for it, then runs the cleanup commands.
pub fn spawn_sandbox(plan: &SandboxPlan) -> Result<Pid, Errno> {
    // SAFETY: `getpid` has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only runs `child_outer`, which makes raw syscalls on prepared data.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        child_outer(plan, parent)
    }
    Ok(Pid::from_raw(pid))
}

fn child_outer(plan: &SandboxPlan, parent: libc::pid_t) -> ! {
    let r = plan.report_w;
    // SAFETY: raw syscalls with no memory arguments or with prepared buffers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(125);
        }
        if libc::setsid() < 0 {
            child_fail(r, STAGE_SETSID);
        }
        // Other threads of the parent may hold files open for writing (a freshly written
        // script): a long-lived fork must not keep them (ETXTBSY at exec, pipes never at EOF).
        let mut keep = [
            0,
            1,
            2,
            plan.report_w,
            plan.ctrl_r,
            plan.stdin,
            plan.stdout_w,
            plan.stderr_w,
        ];
        keep.sort_unstable();
        let mut lo: c_int = 0;
        for &k in &keep {
            if k > lo {
                libc::syscall(
                    libc::SYS_close_range,
                    lo as c_ulong,
                    (k - 1) as c_ulong,
                    0 as c_ulong,
                );
            }
            lo = lo.max(k + 1);
        }
        libc::syscall(
            libc::SYS_close_range,
            lo as c_ulong,
            c_ulong::from(u32::MAX),
            0 as c_ulong,
        );
        if libc::unshare(plan.unshare_flags) != 0 {
            child_fail(r, STAGE_UNSHARE);
        }
    }
    child_report(r, REPORT_UNSHARED, 0, 0);
    if child_read_byte(plan.ctrl_r).is_none() {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(125) }
    }
    // Best effort: a path that cannot take its owner keeps the invoking user's.
    for c in &plan.owners {
        // SAFETY: lchown on a CString prepared before the fork.
        unsafe { libc::lchown(c.path.as_ptr(), c.uid, c.gid) };
    }
    // SAFETY: the child runs `child_init`, raw syscalls only.
    let init = unsafe { libc::fork() };
    if init < 0 {
        child_fail(r, STAGE_FORK_INIT);
    }
    if init == 0 {
        child_init(plan)
    }
    child_report(r, REPORT_INIT_PID, init, 0);
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let w = unsafe { libc::waitpid(init, &mut status, libc::__WALL) };
        if w == init || (w < 0 && errno() != libc::EINTR) {
            break;
        }
    }
    for c in &plan.owners {
        // SAFETY: lchown on a CString prepared before the fork.
        unsafe { libc::lchown(c.path.as_ptr(), 0, 0) };
    }
    // The new PID namespace died with its init, so no more forks here: exec the cleanup.
    if let Some(c) = &plan.cleanup {
        // SAFETY: exec with argv/envp prepared before the fork.
        unsafe {
            libc::dup2(plan.stdin, 1);
            for cand in &c.candidates {
                libc::execve(cand.as_ptr(), c.argv.as_ptr(), c.envp.as_ptr());
            }
        }
    }
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

fn cstr_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

fn child_setup_op(op: &SetupOp) -> bool {
    // SAFETY: raw syscalls on CStrings prepared before the fork.
    unsafe {
        match op {
            SetupOp::Mkdir { path, mode } => {
                libc::mkdir(path.as_ptr(), *mode) == 0 || errno() == libc::EEXIST
            }
            SetupOp::Touch { path } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o644,
                );
                if fd >= 0 {
                    libc::close(fd);
                    true
                } else {
                    errno() == libc::EEXIST
                }
            }
            SetupOp::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => {
                libc::mount(
                    cstr_ptr(src),
                    target.as_ptr(),
                    cstr_ptr(fstype),
                    *flags,
                    cstr_ptr(data).cast(),
                ) == 0
            }
            SetupOp::Symlink { target, link } => {
                libc::symlink(target.as_ptr(), link.as_ptr()) == 0 || errno() == libc::EEXIST
            }
            SetupOp::WriteFile {
                path,
                content,
                mode,
            } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    *mode,
                );
                if fd < 0 {
                    return false;
                }
                let ok = libc::write(fd, content.as_ptr().cast(), content.len())
                    == content.len() as isize;
                libc::close(fd);
                ok
            }
            SetupOp::BindFile { src, target } => {
                // O_RDONLY: an existing file of the image is not copied up by opening it.
                let fd = libc::open(
                    target.as_ptr(),
                    libc::O_RDONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 {
                    return true;
                }
                let mut st: libc::stat = std::mem::zeroed();
                let regular =
                    libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG;
                libc::close(fd);
                !regular
                    || libc::mount(
                        src.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) == 0
            }
            SetupOp::PivotRoot { new_root } => {
                let dot = c".";
                let slash = c"/";
                libc::chdir(new_root.as_ptr()) == 0
                    && libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) == 0
                    && libc::umount2(dot.as_ptr(), libc::MNT_DETACH) == 0
                    && libc::chdir(slash.as_ptr()) == 0
            }
        }
    }
}

fn child_loopback_up() -> bool {
    // SAFETY: an ioctl on a fresh socket with a zeroed, stack-allocated ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return false;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as c_char;
        ifr.ifr_name[1] = b'o' as c_char;
        let ok = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) == 0 && {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) == 0
        };
        libc::close(s);
        ok
    }
}

fn child_init(plan: &SandboxPlan) -> ! {
    let r = plan.report_w;
    // SAFETY: raw syscalls on data prepared before the fork.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0, 0, 0);
        // Wait for the tracer to attach.
        if child_read_byte(plan.ctrl_r).is_none() {
            libc::_exit(125);
        }
        if libc::dup2(plan.stdin, 0) < 0
            || libc::dup2(plan.stdout_w, 1) < 0
            || libc::dup2(plan.stderr_w, 2) < 0
        {
            child_fail(r, STAGE_STDIO);
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            child_fail(r, STAGE_UNSHARE_MNT);
        }
        for (i, op) in plan.setup.iter().enumerate() {
            if !child_setup_op(op) {
                child_fail(r, i as i32);
            }
        }
        if libc::sethostname(plan.hostname.as_ptr(), plan.hostname.as_bytes().len()) != 0 {
            child_fail(r, STAGE_HOSTNAME);
        }
        if !child_loopback_up() {
            child_fail(r, STAGE_LOOPBACK);
        }
        for d in &plan.workdir_mkdirs {
            libc::mkdir(d.as_ptr(), 0o755);
        }
        for (resource, limit) in [
            (libc::RLIMIT_NPROC, plan.nproc),
            (libc::RLIMIT_DATA, plan.data),
        ] {
            if let Some((soft, hard)) = limit {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    child_fail(r, STAGE_RLIMIT);
                }
            }
        }
        let app = libc::fork();
        if app < 0 {
            child_fail(r, STAGE_FORK_APP);
        }
        if app == 0 {
            child_exec(plan, &plan.app, true)
        }
        // Init loop: reap orphans, start exec commands on request.
        let mut ctrl = plan.ctrl_r;
        loop {
            let mut pfd = libc::pollfd {
                fd: ctrl,
                events: libc::POLLIN,
                revents: 0,
            };
            let n = libc::poll(&mut pfd, 1, 100);
            if n > 0 && pfd.revents != 0 {
                match child_read_byte(ctrl) {
                    Some(i) => {
                        if let Some(cmd) = plan.cmds.get(i as usize) {
                            let p = libc::fork();
                            if p == 0 {
                                child_exec(plan, cmd, false)
                            }
                        }
                    }
                    None => ctrl = -1,
                }
            }
            let mut st = 0;
            while libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL) > 0 {}
        }
    }
}

fn child_exec(plan: &SandboxPlan, what: &ExecPlan, report: bool) -> ! {
    let r = plan.report_w;
    let fail = |stage: i32| -> ! {
        if report {
            child_fail(r, stage)
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(126) }
    };
    // SAFETY: raw syscalls on data prepared before the fork.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0, 0, 0);
        // Default dispositions and an empty mask, like a runtime would give the container.
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        if let Some(ids) = &plan.ids {
            if libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) != 0 {
                fail(STAGE_SETGROUPS);
            }
            if libc::setresgid(ids.gid, ids.gid, ids.gid) != 0 {
                fail(STAGE_SETGID);
            }
            if libc::setresuid(ids.uid, ids.uid, ids.uid) != 0 {
                fail(STAGE_SETUID);
            }
        }
        if libc::chdir(plan.workdir.as_ptr()) != 0 {
            fail(STAGE_CHDIR);
        }
        // Every inherited descriptor above stderr is closed at exec.
        libc::syscall(
            libc::SYS_close_range,
            3 as c_ulong,
            c_ulong::MAX,
            libc::CLOSE_RANGE_CLOEXEC as c_ulong,
        );
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0, 0, 0) != 0 {
            fail(STAGE_NO_NEW_PRIVS);
        }
        let prog = libc::sock_fprog {
            len: plan.filter.len() as libc::c_ushort,
            filter: plan.filter.as_ptr() as *mut libc::sock_filter,
        };
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as c_ulong,
            &prog as *const libc::sock_fprog as c_ulong,
            0,
            0,
        ) != 0
        {
            fail(STAGE_SECCOMP);
        }
        let mut last = libc::ENOENT;
        for cand in &what.candidates {
            libc::execve(cand.as_ptr(), what.argv.as_ptr(), what.envp.as_ptr());
            let e = errno();
            // Like execvp: remember a more telling error than "not found".
            if e != libc::ENOENT && e != libc::ENOTDIR {
                last = e;
            }
        }
        if report {
            child_report(r, REPORT_ERROR, STAGE_EXEC, last);
        }
        libc::_exit(127)
    }
}

/// Fork a child that joins the user and network namespaces given as open fds, then either
/// execs `exec` (stdout/stderr to the given fds) or, with `tcp`, connects to 127.0.0.1:port,
/// sends `request` and copies up to 4 KiB of the answer to `out_w`. The result record written to
/// `out_w` first is `[stage i32, errno i32]` (stage 0 = connected).
pub struct NetnsJob<'a> {
    pub user_ns: RawFd,
    pub net_ns: RawFd,
    pub out_w: RawFd,
    pub err_w: RawFd,
    pub null: RawFd,
    pub exec: Option<&'a ExecPlan>,
    pub tcp: Option<(u16, &'a [u8])>,
    pub timeout_ms: u32,
}

pub const NETNS_SETNS_USER: i32 = 1;
pub const NETNS_SETNS_NET: i32 = 2;
pub const NETNS_SOCKET: i32 = 3;
pub const NETNS_CONNECT: i32 = 4;
pub const NETNS_EXEC: i32 = 5;

pub fn spawn_netns_job(job: &NetnsJob<'_>) -> Result<Pid, Errno> {
    // SAFETY: the child makes raw syscalls on prepared data and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid > 0 {
        return Ok(Pid::from_raw(pid));
    }
    let rec = |stage: i32, e: i32| {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&stage.to_ne_bytes());
        b[4..8].copy_from_slice(&e.to_ne_bytes());
        // SAFETY: writing a stack buffer.
        unsafe { libc::write(job.out_w, b.as_ptr().cast(), 8) };
    };
    // SAFETY: raw syscalls on prepared data; this is the forked child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0, 0, 0);
        if libc::setns(job.user_ns, libc::CLONE_NEWUSER) != 0 {
            rec(NETNS_SETNS_USER, errno());
            libc::_exit(125);
        }
        if libc::setns(job.net_ns, libc::CLONE_NEWNET) != 0 {
            rec(NETNS_SETNS_NET, errno());
            libc::_exit(125);
        }
        if let Some(plan) = job.exec {
            libc::dup2(job.null, 0);
            libc::dup2(job.out_w, 1);
            libc::dup2(job.err_w, 2);
            for sig in 1..65 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for cand in &plan.candidates {
                libc::execve(cand.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
            }
            libc::_exit(127);
        }
        if let Some((port, req)) = job.tcp {
            let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                rec(NETNS_SOCKET, errno());
                libc::_exit(1);
            }
            let tv = libc::timeval {
                tv_sec: (job.timeout_ms / 1000) as libc::time_t,
                tv_usec: ((job.timeout_ms % 1000) * 1000) as libc::suseconds_t,
            };
            let tvp = (&tv as *const libc::timeval).cast();
            let tvl = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
            libc::setsockopt(s, libc::SOL_SOCKET, libc::SO_SNDTIMEO, tvp, tvl);
            libc::setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVTIMEO, tvp, tvl);
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = port.to_be();
            sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            if libc::connect(
                s,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ) != 0
            {
                rec(NETNS_CONNECT, errno());
                libc::_exit(1);
            }
            rec(0, 0);
            if !req.is_empty() {
                libc::write(s, req.as_ptr().cast(), req.len());
                let mut buf = [0u8; 4096];
                let mut got = 0usize;
                while got < buf.len() {
                    let n = libc::read(s, buf[got..].as_mut_ptr().cast(), buf.len() - got);
                    if n <= 0 {
                        break;
                    }
                    got += n as usize;
                    if buf[..got].contains(&b'\n') {
                        break;
                    }
                }
                libc::write(job.out_w, buf.as_ptr().cast(), got);
            }
            libc::close(s);
        }
        libc::_exit(0)
    }
}

/// Try `unshare(CLONE_NEWUSER)` in a forked child; returns the child's errno (0 = supported).
pub fn probe_userns() -> Result<i32, Errno> {
    // SAFETY: the child only calls unshare and _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        // SAFETY: raw syscalls then _exit in the forked child.
        unsafe {
            let r = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS);
            libc::_exit(if r == 0 { 0 } else { errno().clamp(1, 255) })
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let w = unsafe { libc::waitpid(pid, &mut status, 0) };
        if w == pid {
            break;
        }
        if errno() != libc::EINTR {
            return Err(Errno::last());
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        libc::EINVAL
    })
}

/// The part of `PTRACE_GET_SYSCALL_INFO` a seccomp stop gives.
#[derive(Debug, Clone, Copy)]
pub struct SeccompStop {
    pub arch: u32,
    pub nr: u64,
    pub args: [u64; 6],
}

/// Syscall info at a seccomp stop (`None` if the stop is of another kind).
pub fn seccomp_stop_info(pid: Pid) -> Result<Option<SeccompStop>, Errno> {
    let info = nix::sys::ptrace::syscall_info(pid)?;
    if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
        return Ok(None);
    }
    // SAFETY: `op` says the kernel filled the `seccomp` member of the union.
    let sc = unsafe { info.u.seccomp };
    Ok(Some(SeccompStop {
        arch: info.arch,
        nr: sc.nr,
        args: sc.args,
    }))
}

/// `PTRACE_LISTEN`: leave a group-stopped tracee stopped but let it report the next event.
pub fn ptrace_listen(pid: Pid) -> Result<(), Errno> {
    // SAFETY: PTRACE_LISTEN takes no memory arguments.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_LISTEN,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    Errno::result(r as c_long).map(drop)
}

/// Read `len` bytes at `addr` of a stopped tracee's memory (short read at an unmapped page).
pub fn read_mem(pid: Pid, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let mut got = 0usize;
    while got < len {
        let a = addr.wrapping_add(got as u64);
        // Never cross a page boundary in one call: a fault ends the read at that page.
        let page_left = 4096 - (a as usize & 4095);
        let want = page_left.min(len - got);
        let local = libc::iovec {
            iov_base: buf[got..].as_mut_ptr().cast(),
            iov_len: want,
        };
        let remote = libc::iovec {
            iov_base: a as *mut libc::c_void,
            iov_len: want,
        };
        // SAFETY: the local iovec points into `buf` with `want` bytes available.
        let n = unsafe { libc::process_vm_readv(pid.as_raw(), &local, 1, &remote, 1, 0) };
        if n <= 0 {
            if got == 0 {
                return Err(Errno::last());
            }
            break;
        }
        got += n as usize;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Read a NUL-terminated string of at most `max` bytes from a tracee.
pub fn read_cstring(pid: Pid, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut a = addr;
    while out.len() < max {
        let page_left = 4096 - (a as usize & 4095);
        let want = page_left.min(max - out.len());
        let chunk = read_mem(pid, a, want)?;
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(out);
        }
        if chunk.len() < want {
            return Err(Errno::EFAULT);
        }
        out.extend_from_slice(&chunk);
        a = a.wrapping_add(want as u64);
    }
    Err(Errno::ENAMETOOLONG)
}

/// Install handlers for SIGINT/SIGTERM/SIGHUP that set `flag`; returns the previous actions.
pub struct SignalGuard {
    old: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_interrupt(_: c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether SIGINT/SIGTERM/SIGHUP arrived since the guard was installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

impl SignalGuard {
    pub fn install() -> Self {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        INTERRUPTED.store(false, std::sync::atomic::Ordering::SeqCst);
        let act = SigAction::new(
            SigHandler::Handler(on_interrupt),
            SaFlags::empty(),
            SigSet::empty(),
        );
        let mut old = Vec::new();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only stores to an atomic.
            if let Ok(prev) = unsafe { sigaction(sig, &act) } {
                old.push((sig, prev));
            }
        }
        SignalGuard { old }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restoring the action that was installed before.
            unsafe {
                let _ = nix::sys::signal::sigaction(*sig, prev);
            }
        }
    }
}

/// C string helper for messages: lossy text of a CStr.
pub fn lossy(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

/// `waitpid(-1, __WALL | __WNOTHREAD)`: children and tracees of the calling thread only (other
/// threads of the process, e.g. a concurrent run or `std::process::Command`, keep theirs).
/// Returns the raw status (decoded by the caller with the libc macros, which also handle
/// real-time signals).
pub fn wait_any(nohang: bool) -> Result<(Pid, c_int), Errno> {
    let mut status: c_int = 0;
    let flags = libc::__WALL | libc::__WNOTHREAD | if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: `status` is a valid out pointer.
    let r = unsafe { libc::waitpid(-1, &mut status, flags) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok((Pid::from_raw(r), status))
}

/// `PTRACE_CONT` with a raw signal number (0 = none; real-time signals allowed).
pub fn ptrace_cont(pid: Pid, sig: c_int) -> Result<(), Errno> {
    // SAFETY: PTRACE_CONT takes the signal number as data, no memory.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_CONT,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            sig as c_long as *mut libc::c_void,
        )
    };
    Errno::result(r as c_long).map(drop)
}

/// Send a raw signal to a process.
pub fn kill(pid: Pid, sig: c_int) -> Result<(), Errno> {
    // SAFETY: kill takes no memory arguments.
    let r = unsafe { libc::kill(pid.as_raw(), sig) };
    Errno::result(r).map(drop)
}

/// Wait for one specific child of the calling thread; `nohang`: `Ok(None)` while it runs.
pub fn wait_pid(pid: Pid, nohang: bool) -> Result<Option<c_int>, Errno> {
    let mut status: c_int = 0;
    let flags = libc::__WALL | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid.as_raw(), &mut status, flags) };
        if r < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok((r != 0).then_some(status));
    }
}

/// A pidfd: signals sent through it never reach a process that reused the pid.
pub struct PidFd(std::os::fd::OwnedFd);

impl PidFd {
    pub fn open(pid: Pid) -> Result<Self, Errno> {
        // SAFETY: pidfd_open takes a pid and flags, no memory.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0 as c_ulong) };
        if r < 0 {
            return Err(Errno::last());
        }
        // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
        Ok(PidFd(unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as RawFd)
        }))
    }

    pub fn signal(&self, sig: c_int) -> Result<(), Errno> {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_send_signal with a NULL siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0 as c_ulong,
            )
        };
        Errno::result(r).map(drop)
    }
}

/// Check that a child can be attached with `PTRACE_SEIZE` (Yama, seccomp or LSM rules may
/// forbid it). Returns the errno of the attach (0 = works).
pub fn probe_ptrace() -> Result<i32, Errno> {
    // SAFETY: the child only sleeps until killed.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        // SAFETY: raw syscalls then _exit in the forked child.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0, 0, 0);
            loop {
                libc::pause();
            }
        }
    }
    let child = Pid::from_raw(pid);
    let r = match nix::sys::ptrace::seize(child, nix::sys::ptrace::Options::empty()) {
        Ok(()) => 0,
        Err(e) => e as i32,
    };
    let _ = kill(child, libc::SIGKILL);
    let _ = wait_pid(child, false);
    Ok(r)
}
