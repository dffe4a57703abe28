//! Remove temporary files and directories when SIGINT, SIGTERM or SIGHUP ends the process.
//!
//! [`install`] (called once from `main`) routes those signals to a self-pipe; a watcher thread
//! removes every [`register`]ed path that still exists and exits with `128 + signal`. During a
//! sandbox run the sandbox's own [`super::SignalGuard`] replaces these handlers (it stops the
//! run and lets the pipeline unwind, which drops the temp dirs normally) and restores them after.
//! Paths are removed only if they still exist, so a temp file already renamed into place (the
//! output) or a dir already dropped is left alone.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use libc::c_int;

static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
/// Set once a signal has been received: the cleanup thread is removing files and will exit.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once SIGINT/SIGTERM/SIGHUP arrived. Work failing afterwards (its files vanish under it)
/// must not exit on its own: the cleanup thread exits with `128 + signal`.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Remove `path` (file or directory tree) if the process is interrupted.
pub fn register(path: &Path) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.push(path.to_path_buf());
    }
}

/// Forget `path` (it was removed, or is to be kept).
pub fn unregister(path: &Path) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.retain(|p| p != path);
    }
}

/// Paths registered now.
pub fn registered() -> Vec<PathBuf> {
    REGISTRY.lock().map(|r| r.clone()).unwrap_or_default()
}

extern "C" fn on_signal(sig: c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let fd = PIPE_W.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [sig as u8];
        // SAFETY: write(2) is async-signal-safe; `b` is a valid 1-byte buffer.
        unsafe {
            libc::write(fd, b.as_ptr().cast(), 1);
        }
    }
}

/// Make every directory under `path` owner-writable so a tree with 0500 dirs can be removed
/// (no symlink is followed: `symlink_metadata`, and only real directories are descended).
pub fn make_removable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(path) {
        for ent in rd.flatten() {
            if ent.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&ent.path());
            }
        }
    }
}

/// Remove every registered path that still exists; returns how many were removed.
pub fn remove_registered() -> usize {
    let paths = registered();
    let mut n = 0;
    for p in paths {
        unregister(&p);
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        // Another thread may still be writing into a dir until it notices `interrupted()`:
        // retry for up to about two seconds.
        for attempt in 0..200 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let r = if meta.is_dir() {
                make_removable(&p);
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if r.is_ok() || std::fs::symlink_metadata(&p).is_err() {
                n += 1;
                break;
            }
        }
    }
    n
}

/// Route SIGINT/SIGTERM/SIGHUP to the cleanup thread. Idempotent; errors leave the default
/// actions in place.
pub fn install() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    if PIPE_W.load(Ordering::SeqCst) >= 0 {
        return;
    }
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let spawned = std::thread::Builder::new()
        .name("oci-slim-cleanup".into())
        .spawn(move || {
            let mut b = [0u8; 1];
            loop {
                // SAFETY: `b` is a valid 1-byte buffer; `r` stays open in this thread.
                let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
                if n == 1 {
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    break;
                }
                if n == 0 {
                    return;
                }
            }
            remove_registered();
            let name = match b[0] as c_int {
                libc::SIGINT => "SIGINT",
                libc::SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            eprintln!("error: interrupted by {name}; temporary files removed");
            std::process::exit(128 + b[0] as i32);
        });
    if spawned.is_err() {
        return;
    }
    PIPE_W.store(w.as_raw_fd(), Ordering::SeqCst);
    // The write end lives as long as the process.
    std::mem::forget(w);
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only calls write(2) on a pipe.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_paths_are_removed_once() {
        let d = tempfile::tempdir().expect("temp dir");
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).expect("mkdir");
        std::fs::write(tree.join("a/b/f"), b"x").expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tree.join("a"), std::fs::Permissions::from_mode(0o500))
                .expect("chmod");
        }
        let file = d.path().join("file.tmp");
        std::fs::write(&file, b"x").expect("write");
        let gone = d.path().join("never-created");
        let kept = d.path().join("kept");
        std::fs::write(&kept, b"x").expect("write");
        for p in [&tree, &file, &gone, &kept] {
            register(p);
        }
        unregister(&kept);
        let n = remove_registered();
        assert!(n >= 2, "{n}");
        assert!(!tree.exists() && !file.exists());
        assert!(kept.exists());
        assert!(!registered().iter().any(|p| p.starts_with(d.path())));
    }
}
