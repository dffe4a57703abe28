//! A hand-written classic-BPF seccomp program: TRACE for path-bearing syscalls, ERRNO for
//! blocked ones (io_uring), ERRNO(0) for faked ones (id changes under a single-id map), ALLOW
//! for everything else. Stat calls on a file descriptor (`fstat` is `newfstatat(fd, "",
//! AT_EMPTY_PATH)` in glibc, `statx(fd, "", AT_EMPTY_PATH)` in Rust and libuv) are allowed
//! without a stop: they name no path, and the file was recorded when it was opened. A quarter of
//! a Python start's path calls are such `fstat`s.
//!
//! Architectures: x86_64 and i386 (compat) get their own lists; x32 (x86_64 numbers with bit 30
//! set) gets ENOSYS for every syscall, which is what Debian kernels do anyway (x32 off at boot).
//! Any other architecture value gets ENOSYS too.

use libc::sock_filter;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// `args[i]` is at `OFF_ARGS + 8 * i`; the low 32 bits come first (x86 is little-endian).
const OFF_ARGS: u32 = 16;

/// Syscall numbers for one architecture, by action.
#[derive(Debug, Default, Clone)]
pub struct ArchRules {
    pub trace: Vec<u32>,
    pub enosys: Vec<u32>,
    pub fake_ok: Vec<u32>,
    /// `(nr, i)`: traced unless `args[i]` has `AT_EMPTY_PATH` (a stat on a descriptor).
    pub empty_path_ok: Vec<(u32, u32)>,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn rules_block(out: &mut Vec<sock_filter>, rules: &ArchRules) {
    out.push(stmt(BPF_LD_W_ABS, OFF_NR));
    for &(nr, arg) in &rules.empty_path_ok {
        // not this call: skip the 4 instructions of the test (the accumulator keeps nr)
        out.push(jump(BPF_JEQ_K, nr, 0, 4));
        out.push(stmt(BPF_LD_W_ABS, OFF_ARGS + 8 * arg));
        out.push(jump(BPF_JSET_K, libc::AT_EMPTY_PATH as u32, 0, 1));
        out.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
        out.push(stmt(BPF_RET_K, libc::SECCOMP_RET_TRACE));
    }
    let actions = [
        (&rules.enosys, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        (&rules.fake_ok, libc::SECCOMP_RET_ERRNO),
        (&rules.trace, libc::SECCOMP_RET_TRACE),
    ];
    for (list, ret) in actions {
        for &nr in list.iter() {
            out.push(jump(BPF_JEQ_K, nr, 0, 1));
            out.push(stmt(BPF_RET_K, ret));
        }
    }
    out.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
}

/// Build the filter program.
pub fn build_filter(native: &ArchRules, i386: &ArchRules) -> Vec<sock_filter> {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let mut native_block = Vec::new();
    rules_block(&mut native_block, native);
    let mut i386_block = Vec::new();
    rules_block(&mut i386_block, i386);

    let mut p = vec![
        // 0: load arch
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        // 1: x86_64? → fall into the x32 check, else skip to the arch dispatch (insn 5)
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 0, 3),
        // 2: load nr; 3: x32 bit set → ENOSYS (insn 4) else skip over it
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, enosys),
    ];
    // 5: here either native (after the x32 test, jf) or foreign (from insn 1).
    // Re-test the arch: native → native block; i386 → i386 block; else ENOSYS.
    p.push(stmt(BPF_LD_W_ABS, OFF_ARCH));
    let native_len = native_block.len();
    let jt_native = 0u8;
    // jeq X86_64: jt → next insn (native block), jf → skip native block
    // Rule lists are our own constants: a block too long for an 8-bit jump is a programming
    // error caught by the tests.
    assert!(native_len < 256, "native seccomp block too long");
    let skip_native = native_len as u8;
    p.push(jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, jt_native, skip_native));
    p.extend(native_block);
    assert!(i386_block.len() < 256, "i386 seccomp block too long");
    let skip_i386 = i386_block.len() as u8;
    p.push(jump(BPF_JEQ_K, AUDIT_ARCH_I386, 0, skip_i386));
    p.extend(i386_block);
    p.push(stmt(BPF_RET_K, enosys));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the subset of cBPF we emit, to check the program's decisions.
    fn run(prog: &[sock_filter], arch: u32, nr: u32) -> u32 {
        run_args(prog, arch, nr, [0; 6])
    }

    fn run_args(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    acc = match ins.k {
                        OFF_ARCH => arch,
                        OFF_NR => nr,
                        k => {
                            let i = ((k - OFF_ARGS) / 8) as usize;
                            let hi = (k - OFF_ARGS) % 8 == 4;
                            (if hi { args[i] >> 32 } else { args[i] }) as u32
                        }
                    };
                    pc += 1;
                }
                BPF_JSET_K => {
                    pc += 1 + if acc & ins.k != 0 { ins.jt } else { ins.jf } as usize;
                }
                BPF_JEQ_K => {
                    pc += 1 + if acc == ins.k { ins.jt } else { ins.jf } as usize;
                }
                BPF_JGE_K => {
                    pc += 1 + if acc >= ins.k { ins.jt } else { ins.jf } as usize;
                }
                BPF_RET_K => return ins.k,
                c => panic!("unexpected opcode {c}"),
            }
        }
    }

    #[test]
    fn decisions() {
        let native = ArchRules {
            trace: vec![2, 257, 59, 262],
            enosys: vec![425],
            fake_ok: vec![105],
            empty_path_ok: vec![(262, 3)],
        };
        let i386 = ArchRules {
            trace: vec![5, 11, 300],
            enosys: vec![425],
            fake_ok: vec![213],
            empty_path_ok: vec![(300, 3)],
        };
        let p = build_filter(&native, &i386);
        let trace = libc::SECCOMP_RET_TRACE;
        let allow = libc::SECCOMP_RET_ALLOW;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let ok0 = libc::SECCOMP_RET_ERRNO;
        let cases = [
            (AUDIT_ARCH_X86_64, 2, trace),
            (AUDIT_ARCH_X86_64, 257, trace),
            (AUDIT_ARCH_X86_64, 59, trace),
            (AUDIT_ARCH_X86_64, 0, allow),
            (AUDIT_ARCH_X86_64, 1, allow),
            (AUDIT_ARCH_X86_64, 425, enosys),
            (AUDIT_ARCH_X86_64, 105, ok0),
            (AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 2, enosys),
            (AUDIT_ARCH_I386, 5, trace),
            (AUDIT_ARCH_I386, 11, trace),
            (AUDIT_ARCH_I386, 2, allow),
            (AUDIT_ARCH_I386, 213, ok0),
            (AUDIT_ARCH_I386, 425, enosys),
            (0xdead, 2, enosys),
        ];
        for (arch, nr, want) in cases {
            assert_eq!(run(&p, arch, nr), want, "arch {arch:#x} nr {nr}");
        }
        // newfstatat / fstatat64: AT_EMPTY_PATH (a stat on a descriptor) passes, any other
        // flags stop; bits in the high word do not count.
        let empty = libc::AT_EMPTY_PATH as u64;
        let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
        for (arch, nr) in [(AUDIT_ARCH_X86_64, 262), (AUDIT_ARCH_I386, 300)] {
            let at = |flags: u64| run_args(&p, arch, nr, [3, 0, 0, flags, 0, 0]);
            assert_eq!(at(empty), allow, "{arch:#x}");
            assert_eq!(at(empty | nofollow), allow);
            assert_eq!(at(0), trace);
            assert_eq!(at(nofollow), trace);
            assert_eq!(at(empty << 32), trace);
        }
        // other calls are not affected by their argument values
        assert_eq!(
            run_args(&p, AUDIT_ARCH_X86_64, 257, [0, 0, empty, empty, 0, 0]),
            trace
        );
    }
}
