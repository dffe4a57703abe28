//! `/etc/ld.so.cache` parser (old `ld.so-1.7.0` and new `glibc-ld.so.cache1.1` formats).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_slim::deps::parse_ld_so_cache;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_ld_so_cache(data) {
        // Every entry came from the input: it cannot hold more entries than bytes.
        assert!(entries.len() <= data.len());
    }
});
