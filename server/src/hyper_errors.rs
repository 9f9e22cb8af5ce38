//! JSON bodies for the replies hyper writes by itself (issue 14 item 12).
//!
//! When a request head cannot be parsed, hyper answers before the router ever sees a request:
//! `400 Bad Request` (bad method, URI, version or header), `414 URI Too Long` or
//! `431 Request Header Fields Too Large`, always with `content-length: 0`, then closes the
//! connection. No tower layer can see these, and hyper 1 has no hook for them, so
//! [`JsonParseErrors`] wraps the connection's socket and replaces exactly that reply, as hyper
//! writes it, with the same status, headers and an `{"error": {"code", "message"}}` body.
//!
//! What is recognised (and nothing else is touched): one write that is a whole response head
//! and nothing more, at most 1 KiB, whose status is 400, 414 or 431 and which has
//! `content-length: 0` and no `content-type`. The router's own errors always carry a JSON body
//! (`api::json_errors`), so they never match. A reply hyper had to split over several writes
//! (the socket's send buffer full at that moment) is left as it is.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose hyper-made error replies get a JSON body.
pub struct JsonParseErrors<T> {
    inner: T,
    /// A replacement reply not yet fully written, and how much of it was.
    pending: Vec<u8>,
    sent: usize,
}

impl<T> JsonParseErrors<T> {
    pub fn new(inner: T) -> Self {
        JsonParseErrors { inner, pending: Vec::new(), sent: 0 }
    }
}

/// The JSON reply that replaces `head`, if `head` is one of hyper's own empty error replies.
pub fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > 1024 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(&head[..head.len() - 4]).ok()?;
    if text.contains("\r\n\r\n") {
        return None; // more than a head
    }
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    let status = parts.next()?;
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return None;
    }
    let (code, message) = match status {
        "400" => ("bad_request", "the request could not be parsed as HTTP/1.1"),
        "414" => ("uri_too_long", "the request URI is too long"),
        "431" => ("header_fields_too_large", "the request head (its headers) is too large"),
        _ => return None,
    };
    let mut empty = false;
    let mut headers = Vec::new();
    for l in lines {
        let (name, value) = l.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "content-length" if value.trim() == "0" => empty = true,
            "content-length" | "content-type" | "transfer-encoding" => return None,
            "connection" => {}
            _ => headers.push(l),
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut out = format!("{status_line}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\nconnection: close\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> JsonParseErrors<T> {
    /// Write out what is left of a replacement reply.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParseErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if let Some(reply) = rewrite(buf) {
            self.pending = reply;
            self.sent = 0;
            // Written by the next write, flush or shutdown if the socket is full now.
            if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (nonempty.next(), nonempty.next()) {
            return self.poll_write(cx, only);
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_get_a_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
                     date: Wed, 02 Dec 2026 12:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(head).unwrap()).unwrap();
        let (h, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(h.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{h}");
        assert!(h.contains("\r\ndate: Wed, 02 Dec 2026 12:00:00 GMT"), "{h}");
        assert!(
            h.contains("\r\ncontent-type: application/json") && h.contains("connection: close")
        );
        assert!(h.contains(&format!("content-length: {}", body.len())), "{h}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "header_fields_too_large");
    }

    #[test]
    fn other_writes_are_left_alone() {
        for w in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            b"{\"line\": 1}\n",
            b"",
        ] {
            assert_eq!(rewrite(w), None, "{}", String::from_utf8_lossy(w));
        }
    }

    /// Through the wrapper, with a socket that takes 3 bytes per write: the whole reply arrives.
    #[tokio::test]
    async fn a_slow_socket_gets_the_whole_reply() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(3);
        let mut w = JsonParseErrors::new(a);
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let writer = tokio::spawn(async move {
            w.write_all(head).await.unwrap();
            w.flush().await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, String::from_utf8(rewrite(head).unwrap()).unwrap());
        assert!(got.ends_with("}"), "{got}");
    }
}

/// Property-based fuzzing (issue 14, bar): any write is either left alone or replaced by one
/// complete JSON reply; nothing panics.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_write(
            status in proptest::sample::select(vec!["200 OK", "400 Bad Request", "414 URI Too Long", "431 X", "404 Y"]),
            headers in proptest::collection::vec("[a-zA-Z-]{0,12}(: ?)?[ -~]{0,20}", 0..6),
            tail in proptest::collection::vec(any::<u8>(), 0..40),
            raw in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut w = format!("HTTP/1.1 {status}\r\n");
            for h in &headers {
                w.push_str(h);
                w.push_str("\r\n");
            }
            let mut w = w.into_bytes();
            w.extend_from_slice(&tail);
            for input in [&w[..], &raw[..]] {
                if let Some(out) = rewrite(input) {
                    let out = String::from_utf8(out).unwrap();
                    let (head, body) = out.split_once("\r\n\r\n").unwrap();
                    let len = format!("content-length: {}", body.len());
                    prop_assert!(head.contains(&len), "{}", head);
                    let v: serde_json::Value = serde_json::from_str(body).unwrap();
                    prop_assert!(v["error"]["code"].is_string());
                }
            }
        }
    }
}
