//! Tar layer applier, tree only (no staging dir): the input is split into up to four layers at
//! `\xffLAYER\xff` markers so whiteouts, hardlinks and symlinks can cross layers; then the tree is
//! resolved path by path so symlink loops and deep chains are exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_slim::limits::Limits;
use oci_slim::rootfs::Flattener;

const MARK: &[u8] = b"\xffLAYER\xff";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 3 {
        match rest.windows(MARK.len()).position(|w| w == MARK) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + MARK.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_entries: 10_000,
        ..Limits::default()
    };
    let mut fl = Flattener::new(None, &limits);
    for (i, layer) in split(data).into_iter().enumerate() {
        if fl.apply_layer(i, layer).is_err() {
            break;
        }
    }
    let paths: Vec<Vec<u8>> = fl.tree().iter().map(|(p, _)| p.clone()).collect();
    for p in &paths {
        let _ = fl.tree().resolve(p, true);
        let _ = fl.tree().resolve(p, false);
    }
    let _ = fl.finish();
});
