//! The napi classes JS sees. Thin: argument conversion only.

mod args;
pub mod engine;
pub mod stream_core;

/// The `code`s error records name by index (`src/core/error.rs`).
#[napi_derive::napi]
pub fn error_codes() -> Vec<&'static str> {
    crate::core::error::CODES.to_vec()
}

/// Makes the next parse on this thread panic (tests of panic containment).
#[napi_derive::napi]
pub fn inject_panic() {
    crate::core::receiver::panic_injection::arm();
}
