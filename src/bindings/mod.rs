//! The napi classes JS sees. Thin: argument conversion only.

pub mod engine;
