//! Input formats: docker-save (legacy and Docker 25+), OCI image layout (tar or directory).
pub mod compress;
