//! Arca's domain: the key and version model, the lifecycle state machine, names and the one
//! error type. Nothing here does I/O, so all of it is tested without a runtime, a store or a
//! socket; the service crate composes it with real providers.

pub mod access;
pub mod action;
pub mod audit;
pub mod cipher;
pub mod dn;
pub mod encoding;
pub mod error;
pub mod lifecycle;
pub mod model;
pub mod names;

pub use action::Action;
pub use error::{Error, Fault, Result, StateDetail};
