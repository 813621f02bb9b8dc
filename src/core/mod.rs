//! The WebSocket protocol, sans-IO: bytes in, events out; messages in, bytes out.
//!
//! Everything here runs on bytes a peer chose, so none of it may panic: no
//! `unwrap`/`expect`, no indexing that can go out of bounds, no arithmetic
//! that can overflow (`cargo clippy` enforces it; tests are exempt).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod mask;
pub mod receiver;
pub mod sender;
pub mod utf8;
