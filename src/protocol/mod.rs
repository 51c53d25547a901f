//! The SMTP wire protocol with no I/O: command lines cut from a byte buffer and parsed into
//! [`Command`] values, message data dot-unstuffed by [`DataDecoder`], and [`Reply`] values turned
//! into bytes.
//!
//! The session owns the sockets and the buffers; everything here works on byte slices, returns
//! "need more data" on a partial input, and is tested on input split at every byte.

mod command;
mod data;
mod line;
mod reply;

pub use command::{BodyType, Command, MailParams, Param, parse_command};
pub use data::{BareNewlines, DataDecoder, DataOutcome, Feed};
pub use line::{LineOutcome, LineReader};
pub use reply::{EnhancedCode, EnhancedCodeError, Reply};
