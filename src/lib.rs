//! ws-native: a Rust protocol core and a libuv-integrated engine behind a
//! drop-in replacement for the `ws` npm package.
//!
//! Outside tests no code may unwrap, expect, panic or mark code unreachable
//! (`unreachable!`, `todo!`, `unimplemented!`): everything here runs
//! on bytes a peer sent or arguments JS passed, and a panic that reached
//! the FFI boundary would abort Node (`cargo clippy` enforces it). The one
//! deliberate panic is `core::receiver::panic_injection`, for the tests of
//! panic containment.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable, clippy::todo, clippy::unimplemented))]

pub mod bindings;
pub mod core;
pub mod engine;
