//! nsswitch.conf parser and the NSS service list derived from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_slim::deps::nss;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nss::parse_nsswitch(&text);
    let _ = nss::effective(Some(&text));
    for s in nss::services(Some(&text)) {
        let _ = nss::module_name(&s);
        let _ = nss::is_builtin(&s);
    }
});
