//! Static dependency closure over the image tree: ELF interpreters and libraries (glibc and
//! musl search orders, ld.so.cache), NSS modules from nsswitch.conf, `#!` interpreters, and
//! lazily read data (CA bundle, localtime, locales). Pure: reads only the tree and its bytes.

pub mod closure;
pub mod elf;
pub mod kernel;
pub mod ldso;
pub mod nss;

pub use closure::{Closure, ClosureBuilder, Warning};
pub use elf::ElfInfo;
pub use ldso::{parse_ld_so_cache, CacheEntry, CacheError, LdSearch};

#[cfg(test)]
pub(crate) mod tests;
