//! `close`: end the connection with a FIN and no reply.
//!
//! The server shuts down its sending side first, then reads and discards whatever the client
//! still sends until the client closes too (or a short grace period passes). Closing a socket
//! with unread data makes the kernel send an RST instead of a FIN, so the draining is what keeps
//! this fault a true FIN even when the client pipelined more commands.

use std::fmt;

/// The `close` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Close;

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("close (FIN)")
    }
}
