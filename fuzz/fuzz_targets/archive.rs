//! Archive detection, manifest/index/config JSON, image selection and layer streams: the bytes
//! are written to a temp file and go through `Archive::open` + `select` + every layer read to
//! the end with all checks (digests, sizes, limits).
#![no_main]

use std::io::{Read, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oci_slim::archive::Archive;
use oci_slim::limits::Limits;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fn limits() -> Limits {
    // Small budgets so bombs stop fast instead of timing the fuzzer out.
    Limits {
        max_json_bytes: 1 << 20,
        max_unpacked_bytes: 64 << 20,
        max_entries: 10_000,
        max_archive_entries: 10_000,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("in.tar");
    let mut f = std::fs::File::create(&path).expect("create input");
    f.write_all(data).expect("write input");
    drop(f);
    let Ok(archive) = Archive::open(&path, &limits()) else {
        return;
    };
    let _ = archive.image_names();
    let Ok(image) = archive.select(None, None) else {
        return;
    };
    let _ = image.exec_spec();
    let _ = image.exposed_ports();
    for layer in &image.layers {
        let Ok(mut reader) = archive.open_layer(layer) else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if reader.finish().is_err() {
            return;
        }
    }
});
