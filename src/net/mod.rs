//! The network layer: the TCP listener, one task per connection, frames.
//!
//! Knows sizes, headers and ordering of requests on a connection; knows
//! nothing of what a request means (that is `api/`).

pub mod connection;
pub mod frame;
pub mod header;
pub mod listener;
pub mod response;

pub use listener::Listener;
