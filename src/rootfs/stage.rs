//! The staging directory: file contents on disk, confined, written rootless.
