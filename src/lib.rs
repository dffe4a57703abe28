//! oci-slim: make container images small without a Docker daemon.
//!
//! The modules follow the data flow:
//!
//! ```text
//! archive ─▶ image ─▶ rootfs ─▶ sandbox/trace ─▶ deps + select ─▶ output ─▶ report
//! ```
//!
//! * [`archive`]: input formats (docker-save, OCI layout as tar or directory), blob access with
//!   size/digest checks, compression sniffing, limits.
//! * [`image`]: the selected image: original config JSON, ordered layers, exec spec.
//! * [`rootfs`]: the flattened in-memory tree (whiteouts, hardlinks, full metadata), root-confined
//!   path resolution, and the staging directory that holds file contents.
//! * [`sandbox`] and [`trace`]: run the entrypoint rootless in namespaces under a seccomp-filtered
//!   ptrace; raw observations only. [`sys`] holds every `unsafe` block.
//! * [`deps`]: ELF (ld.so search order, ld.so.cache), NSS, shebangs: pure closure over the tree.
//! * [`select`]: policy (includes, excludes, packages) and the kept set with a reason per path.
//! * [`output`]: deterministic single-layer image written atomically.
//! * [`report`]: JSON report and human summary.
//! * [`cli`]: argument parsing; the only module that prints.

pub mod archive;
pub mod cli;
pub mod deps;
pub mod digest;
pub mod image;
pub mod limits;
pub mod output;
pub mod report;
pub mod rootfs;
pub mod sandbox;
pub mod select;
pub mod slim;
#[allow(unsafe_code)]
pub mod sys;
pub mod trace;
