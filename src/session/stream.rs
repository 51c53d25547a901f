//! The byte stream a session runs over: plain, or TLS on top of the same socket after STARTTLS.
//!
//! [`Socket`] is what the session needs of the connection beneath: reading, writing, and being
//! able to end with an RST. It is implemented for TCP and for tokio's in-memory duplex, so unit
//! tests drive a whole session without a network.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::tls::TlsInfo;

/// A connection a session can run over.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Makes the next close send an RST instead of a FIN.
    fn arm_reset(&self);
}

impl Socket for TcpStream {
    fn arm_reset(&self) {
        // SO_LINGER with a zero timeout makes close() discard the queues and send an RST.
        let _ = socket2::SockRef::from(self).set_linger(Some(std::time::Duration::ZERO));
    }
}

impl Socket for DuplexStream {
    fn arm_reset(&self) {}
}

/// A plain or TLS stream over a [`Socket`].
pub enum Stream<S> {
    /// Cleartext.
    Plain(S),
    /// TLS, after STARTTLS or on an implicit-TLS listener.
    Tls(Box<TlsStream<S>>),
}

impl<S: Socket> Stream<S> {
    /// The socket beneath any TLS.
    pub fn socket(&self) -> &S {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.get_ref().0,
        }
    }

    /// The socket beneath any TLS, mutably, for writing around the TLS layer.
    pub fn socket_mut(&mut self) -> &mut S {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.get_mut().0,
        }
    }

    /// The TLS facts, when TLS is up.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(t) => Some(TlsInfo::from_server_connection(t.get_ref().1)),
        }
    }

    /// True when TLS is up.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl<S: Socket> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: Socket> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}
