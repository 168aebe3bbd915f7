//! Hard limits on everything read from outside. A value over a limit is refused
//! with [`crate::Error::Limit`]; nothing is allocated from a declared size before
//! the declared size has been checked against these numbers.

/// Largest mitigation document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;
/// Largest feed index (`feed.xml`) accepted, in bytes.
pub const MAX_FEED_BYTES: u64 = 32 * 1024 * 1024;
/// Largest minisign signature or public key file accepted, in bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 4096;
/// Largest secret key file accepted, in bytes.
pub const MAX_SECRET_KEY_BYTES: u64 = 4096;
/// Largest host profile (`host.toml`, design card §6) accepted, in bytes.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;
/// Largest bundle manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;
/// Most mitigations in one feed or bundle.
pub const MAX_MITIGATIONS: usize = 100_000;
/// Most attachments in one bundle.
pub const MAX_ATTACHMENTS: usize = 1_000;
/// Total bytes of mitigation documents and their signatures kept in memory while
/// verifying one bundle (attachments are streamed and never held in memory).
pub const MAX_DOCUMENTS_TOTAL_BYTES: u64 = 512 * 1024 * 1024;
/// Largest single attachment (1 TiB: attachments are streamed, this only bounds arithmetic).
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 40;
/// XML element nesting depth.
pub const MAX_XML_DEPTH: usize = 16;
/// Attributes on one XML element.
pub const MAX_XML_ATTRIBUTES: usize = 16;
/// Child elements of one XML element.
pub const MAX_XML_CHILDREN: usize = 200_000;
/// Largest zstd window the payload decoder accepts (log2): 2^24 = 16 MiB, which keeps
/// the verifier's memory bounded whatever the bundle declares.
pub const MAX_ZSTD_WINDOW_LOG: u32 = 24;
/// Longest file or attachment name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest action path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest url-block pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
