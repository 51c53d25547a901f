//! `reset`: end the connection with an RST and no reply.
//!
//! The server sets `SO_LINGER` to zero on the socket and closes it, so the kernel discards its
//! queues and answers with a reset: the client's next read or write fails with "connection reset
//! by peer". Over TLS the reset comes with no close_notify.

use std::fmt;

/// The `reset` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reset;

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reset (RST)")
    }
}
