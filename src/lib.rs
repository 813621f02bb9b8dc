//! ws-native: a Rust protocol core and a libuv-integrated engine behind a
//! drop-in replacement for the `ws` npm package.

pub mod bindings;
pub mod core;
pub mod engine;
