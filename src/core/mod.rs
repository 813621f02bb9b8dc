//! The WebSocket protocol, sans-IO: bytes in, events out; messages in, bytes out.

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod mask;
pub mod receiver;
pub mod sender;
pub mod utf8;
