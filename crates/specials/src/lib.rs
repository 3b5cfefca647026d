//! spangc's specials: records attached to heap objects (finalizers, weak
//! handles, cleanups, allocation-profile records), kept per span.
//!
//! This crate keeps the registry ([`Specials`]) and the record pools; what a
//! record means, and when it fires, is the facade's (`spangc`), which
//! drives the registry from its marker and its sweep hooks. See
//! `docs/specials.md`.

pub mod pool;
pub mod profile;
pub mod registry;

pub use registry::{Kind, Payload, Specials};
