//! ELF reader: PT_INTERP, DT_NEEDED, RPATH/RUNPATH, class and machine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_slim::deps::elf;

fuzz_target!(|data: &[u8]| {
    let cm = elf::class_machine(data);
    if let Some(info) = elf::parse(data) {
        if let Some((class64, machine)) = cm {
            assert_eq!(info.class64, class64);
            assert_eq!(info.machine, machine);
        }
        if let Some(i) = &info.interp {
            let _ = elf::is_musl_interp(i);
        }
    }
});
