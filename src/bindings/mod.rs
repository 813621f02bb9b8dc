//! The napi classes JS sees. Thin: argument conversion only.

mod args;
pub mod conn;
pub mod engine;
pub mod stream_core;

/// Adds the plain N-API functions (no napi-rs wrapper) to the exports: the
/// per-connection calls into the engine and the stream core's.
#[napi_derive::napi(module_exports)]
pub fn add_raw_functions(exports: napi::bindgen_prelude::Object, env: napi::Env) -> napi::Result<()> {
    args::export_raw(&env, &exports, &conn::FUNCTIONS)?;
    args::export_raw(&env, &exports, &stream_core::FUNCTIONS)
}

/// The `code`s error records name by index (`src/core/error.rs`).
#[napi_derive::napi]
pub fn error_codes() -> Vec<&'static str> {
    crate::core::error::CODES.to_vec()
}

/// Makes the next parse on this thread panic (tests of panic containment),
/// when `WS_NATIVE_TEST_HOOKS=1`; returns whether it will.
#[napi_derive::napi]
pub fn inject_panic() -> bool {
    crate::core::receiver::panic_injection::arm()
}
