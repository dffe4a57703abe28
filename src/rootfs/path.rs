//! Normalizing hostile tar names into tree paths. (Implemented by the rootfs work.)

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path `{0}` escapes the image root")]
    Escapes(String),
    #[error("path `{0}` contains a NUL byte")]
    Nul(String),
    #[error("path `{0}` is empty")]
    Empty(String),
    #[error("path `{path}` is too long ({len} bytes, limit {limit})")]
    TooLong {
        path: String,
        len: usize,
        limit: usize,
    },
    #[error("path `{path}` is too deep ({depth} components, limit {limit})")]
    TooDeep {
        path: String,
        depth: usize,
        limit: usize,
    },
}

/// Normalize a tar entry name into a tree path (see [`crate::rootfs`]).
pub fn normalize(_name: &[u8]) -> Result<Vec<u8>, PathError> {
    todo!("rootfs::path::normalize")
}
