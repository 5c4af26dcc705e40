//! Arca's listeners: the REST API over HTTPS (axum behind a rustls accept loop), TLS set-up
//! with a generated dev CA, and configuration loading. The binary in `arca-cli` wires these.

pub mod aws;
pub mod config;
pub mod console;
pub mod cse;
pub mod dke;
pub mod kmip;
pub mod rest;
pub mod rest_audit;
pub mod rest_extract;
pub mod rest_identity;
pub mod rest_keys;
pub mod rest_sys;
pub mod server;
pub mod sinks;
pub mod tls;

pub use config::Config;
pub use server::{init_custody, start, start_with_clock, Running};
