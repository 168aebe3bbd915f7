//! The `.airlock` bundle archive (design card §5): a plain ustar file whose
//! members are, in this order and nothing else, the manifest, its release
//! signature, and the zstd-compressed payload tar. [`writer`] builds it in one
//! pass over the inputs; [`reader`] parses the outer members without touching the
//! payload, and streams the payload only after the manifest signature verified.

pub(crate) mod pipe;
pub mod reader;
pub mod writer;

pub use reader::BundleFile;
pub use writer::{
    AttachmentInput, BundleInput, DocumentInput, WriteOptions, write_bundle, write_bundle_gated,
};

use crate::time::Timestamp;

/// A ustar header for a regular file with airlock's fixed metadata (mode 0644,
/// uid/gid 0, no user or group names, mtime = the bundle's creation time), so the
/// same inputs always give the same bytes.
pub(crate) fn file_header(size: u64, mtime: &Timestamp) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(u64::try_from(mtime.timestamp()).unwrap_or(0));
    h
}
