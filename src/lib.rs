//! smtp-fault: a fake destination SMTP server that fails on purpose.
//!
//! A sender is pointed at it, and it refuses, times out, stalls, drops the session, answers with
//! any reply, leaves out STARTTLS or presents a bad certificate, exactly as a [`Scenario`] says,
//! so that each delivery error a sender can meet is reproduced on demand.
//!
//! The parts, from the wire up: [`protocol`] parses commands and writes replies with no I/O;
//! [`session`] runs one conversation over any byte stream; [`faults`] are the ways to misbehave;
//! [`scenario`] says which fault fires when; [`tls`] makes the certificates; [`capture`] keeps
//! what arrived; [`server`] ties them together behind listeners.

pub mod capture;
pub mod faults;
pub mod probe;
pub mod protocol;
pub mod scenario;
pub mod server;
pub mod session;
pub mod tls;

pub use scenario::Scenario;
pub use server::{Server, ServerConfig};
