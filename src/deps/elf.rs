//! The few facts of an ELF file the loader cares about: class, machine, program interpreter,
//! DT_NEEDED, DT_RPATH and DT_RUNPATH. goblin parses; anything it refuses is "not an ELF".

use goblin::elf::Elf;
use goblin::options::ParseOptions;

/// `e_machine` values we name (others are compared numerically only).
pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// What the dynamic loader reads from one ELF object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElfInfo {
    /// `ELFCLASS64` (else 32-bit).
    pub class64: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `PT_INTERP`, when present.
    pub interp: Option<String>,
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` directories (colon lists split), in order.
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` directories (colon lists split), in order.
    pub runpath: Vec<String>,
    /// The interpreter is musl's (`ld-musl-*.so.1`).
    pub is_musl_interp: bool,
}

/// Class and machine from the ELF identification and header alone (first 20 bytes), for
/// cheap candidate checks: `None` when `bytes` is not an ELF header.
pub fn class_machine(bytes: &[u8]) -> Option<(bool, u16)> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    let class64 = match bytes[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let m = [bytes[18], bytes[19]];
    let machine = match bytes[5] {
        1 => u16::from_le_bytes(m),
        2 => u16::from_be_bytes(m),
        _ => return None,
    };
    Some((class64, machine))
}

fn split_paths(list: &[&str]) -> Vec<String> {
    list.iter()
        .flat_map(|s| s.split(':'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether an interpreter path names musl's dynamic loader.
pub fn is_musl_interp(interp: &str) -> bool {
    interp
        .rsplit('/')
        .next()
        .is_some_and(|base| base.starts_with("ld-musl-") && base.ends_with(".so.1"))
}

/// Parse `bytes` as an ELF object. Non-ELF and malformed ELF give `None`.
pub fn parse(bytes: &[u8]) -> Option<ElfInfo> {
    let (class64, machine) = class_machine(bytes)?;
    // Permissive mode keeps going past damaged section headers: the loader only reads the
    // program headers and the dynamic segment, so neither do we need more.
    let elf = Elf::parse_with_opts(bytes, &ParseOptions::permissive())
        .or_else(|_| Elf::parse(bytes))
        .ok()?;
    let interp = elf.interpreter.map(str::to_owned);
    Some(ElfInfo {
        class64,
        machine,
        is_musl_interp: interp.as_deref().is_some_and(is_musl_interp),
        interp,
        needed: elf.libraries.iter().map(|s| (*s).to_owned()).collect(),
        rpath: split_paths(&elf.rpaths),
        runpath: split_paths(&elf.runpaths),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 32-bit or 64-bit ELF header with no program headers.
    pub(crate) fn fake_header(class64: bool, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if class64 { 2 } else { 1 };
        h[5] = 1;
        h[6] = 1;
        h[16] = 3; // ET_DYN
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn header_table() {
        type Case<'a> = (&'a [u8], Option<(bool, u16)>);
        let cases: &[Case] = &[
            (b"", None),
            (b"#!/bin/sh\n echo hello world", None),
            (b"\x7fELF\x03\x01", None),
            (&fake_header(false, EM_386), Some((false, EM_386))),
            (&fake_header(true, EM_X86_64), Some((true, EM_X86_64))),
        ];
        for (bytes, want) in cases {
            assert_eq!(class_machine(bytes), *want, "{bytes:?}");
        }
    }

    #[test]
    fn musl_interp_names() {
        for (p, want) in [
            ("/lib/ld-musl-x86_64.so.1", true),
            ("/lib/ld-musl-aarch64.so.1", true),
            ("/lib64/ld-linux-x86-64.so.2", false),
            ("ld-musl-x86_64.so", false),
        ] {
            assert_eq!(is_musl_interp(p), want, "{p}");
        }
    }

    #[test]
    fn host_ls_and_libc() {
        let Ok(ls) = std::fs::read("/usr/bin/ls") else {
            eprintln!("skipping: /usr/bin/ls not readable");
            return;
        };
        let info = parse(&ls).expect("ls parses");
        assert!(info.class64);
        assert_eq!(info.machine, EM_X86_64);
        assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert!(info.needed.iter().any(|n| n == "libc.so.6"));
        assert!(!info.is_musl_interp);
        let libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").expect("libc");
        let info = parse(&libc).expect("libc parses");
        assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(info.needed, ["ld-linux-x86-64.so.2"]);
    }

    #[test]
    fn garbage_and_truncations_never_panic() {
        assert_eq!(parse(b"not an elf"), None);
        // A bare header without program headers parses to an object needing nothing.
        let info = parse(&fake_header(true, EM_X86_64));
        assert!(info.is_none_or(|i| i.needed.is_empty() && i.interp.is_none()));
        let Ok(ls) = std::fs::read("/usr/bin/ls") else {
            return;
        };
        for cut in (0..ls.len()).step_by(997).chain([1, 4, 20, 52, 63, 64, 65]) {
            let _ = parse(&ls[..cut.min(ls.len())]);
        }
        let mut flipped = ls.clone();
        for i in (0..flipped.len()).step_by(131) {
            flipped[i] ^= 0xa5;
            let _ = parse(&flipped);
        }
    }
}
/// Random byte mutations and truncations of real ELF files never panic (seen: 60,000 runs,
/// no panic, so `parse` does not need `catch_unwind`). Run with `--ignored --release`.
#[cfg(test)]
mod mutation_stress {
    #[test]
    #[ignore = "60,000 parses: run in release"]
    fn mutated_elves_never_panic() {
        let mut seed: u64 = 0x1234_5678;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let mut panics = 0;
        let (mut ok, mut none) = (0, 0);
        for p in [
            "/usr/bin/ls",
            "/usr/bin/true",
            "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
        ] {
            let orig = std::fs::read(p).unwrap();
            for _ in 0..20000 {
                let mut b = orig.clone();
                let n = 1 + rnd() % 8;
                for _ in 0..n {
                    // Mostly the first 4 KiB (headers) and the dynamic segment region.
                    let i = if rnd() % 2 == 0 {
                        rnd() % 4096.min(b.len())
                    } else {
                        rnd() % b.len()
                    };
                    b[i] = rnd() as u8;
                }
                if rnd() % 4 == 0 {
                    let cut = rnd() % b.len();
                    b.truncate(cut);
                }
                match std::panic::catch_unwind(|| super::parse(&b)) {
                    Err(_) => panics += 1,
                    Ok(Some(_)) => ok += 1,
                    Ok(None) => none += 1,
                }
            }
        }
        eprintln!("ok {ok} none {none}");
        assert_eq!(panics, 0);
    }
}
