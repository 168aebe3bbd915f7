//! Wire formats shared by the bundler and the applier: mitigation and feed XML,
//! the signed bundle archive, minisign signatures, trust roots and limits.
//!
//! This crate links no network code, so the air-gapped applier can depend on it.
//! Everything that reads outside bytes here is bounded by [`limits`] and returns an
//! [`Error`] instead of panicking. The only way to obtain a [`verify::Verified`]
//! value is through [`verify`], so code that takes one is proven to run after
//! signature, size and hash checks.
#![forbid(unsafe_code)]

pub mod archive;
pub mod error;
pub mod exit;
pub mod feed;
pub mod fsutil;
pub mod hash;
pub mod keys;
pub mod limits;
pub mod manifest;
pub mod mitigation;
pub mod output;
pub mod pattern;
pub mod profile;
pub mod progress;
pub mod time;
pub mod trust;
pub mod verify;
mod xml;

pub use error::{Error, Result};
pub use exit::Exit;
