//! Applying layer tar streams to the tree (whiteouts, opaque dirs, hardlinks) and staging.
