//! smtp-fault: a fake destination SMTP server that fails on purpose.
//!
//! A sender is pointed at it, and it refuses, times out, stalls, drops the session, answers with
//! any reply, leaves out STARTTLS or presents a bad certificate, exactly as a [`Scenario`] says,
//! so that each delivery error a sender can meet is reproduced on demand.
//!
//! The parts, from the wire up: [`protocol`] parses commands and writes replies with no I/O;
//! [`session`] runs one conversation over any byte stream; [`faults`] are the ways to misbehave;
//! [`scenario`] says which fault fires when; [`tls`] makes the certificates; [`capture`] keeps
//! what arrived; [`server`] ties them together behind listeners; [`control`] is the HTTP API.
//!
//! # In a test
//!
//! A test starts a server on 127.0.0.1:0, points the code under test at its address, and
//! asserts on what the sender did and what arrived. The scenario can be a built-in name, a
//! file, a TOML string or a builder in code:
//!
//! ```
//! use std::time::Duration;
//! use smtp_fault::faults::{Condition, Fault, FaultKind, Pattern, ReplyFault, Stage};
//! use smtp_fault::protocol::{EnhancedCode, Reply};
//! use smtp_fault::{Scenario, Server};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The same scenario three ways: built in, as TOML, and in code.
//! let _builtin = Server::builder().builtin("mailbox-full")?;
//! let _toml = Server::builder().scenario_toml(r#"
//!     name = "full"
//!     summary = "Mailboxes at full.example are full."
//!     [reproduces]
//!     error = "other"
//!     reply = "452 4.2.2"
//!     sender_log = "452 4.2.2 Mailbox full (in reply to RCPT TO command)"
//!     [[faults]]
//!     stage = "rcpt"
//!     kind = "reply"
//!     code = 452
//!     enhanced = "4.2.2"
//!     text = "Mailbox full"
//!     [faults.when]
//!     rcpt = "*@full.example"
//! "#)?;
//! let full = Reply::new(452, Some(EnhancedCode::new(4, 2, 2)), "Mailbox full");
//! let when = Condition { rcpt: Some(Pattern::new("*@full.example")?), ..Condition::default() };
//! let scenario = Scenario::builder("full")
//!     .fault(Fault::new(Stage::Rcpt, FaultKind::Reply(ReplyFault::new(full))).when(when))
//!     .build();
//! let server = Server::builder().scenario(scenario).start().await?;
//!
//! // A client talks to it...
//! let stream = tokio::net::TcpStream::connect(server.smtp_addr()).await?;
//! let (read, mut write) = stream.into_split();
//! let mut lines = BufReader::new(read).lines();
//! write.write_all(b"HELO client.test\r\nMAIL FROM:<a@client.test>\r\n\
//!                   RCPT TO:<b@full.example>\r\nQUIT\r\n").await?;
//! let mut replies = Vec::new();
//! while let Some(line) = lines.next_line().await? {
//!     replies.push(line);
//! }
//! assert_eq!(replies[3], "452 4.2.2 Mailbox full");
//!
//! // ...and the test reads what the server saw.
//! assert!(server.wait_for_messages(1, Duration::from_millis(50)).await.is_err());
//! assert_eq!(server.sessions()[0].faults, vec!["rcpt: reply 452 4.2.2"]);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod blocking;
pub mod capture;
pub mod control;
pub mod dns;
pub mod faults;
pub mod probe;
pub mod protocol;
pub mod scenario;
pub mod server;
pub mod session;
pub mod tls;

pub use blocking::BlockingServer;
pub use scenario::Scenario;
pub use server::{ControlConfig, Counters, Server, ServerBuilder, ServerConfig, ServerHandle};
