//! The napi classes JS sees. Thin: argument conversion only.

mod args;
pub mod engine;
pub mod stream_core;
