//! Cutting messages out of a TCP/TLS byte stream (RFC 3261 §18.3).
//!
//! Bytes arrive in arbitrary pieces: a read may hold half a message or
//! several. [`StreamFramer`] buffers at most one message (bounded by
//! [`Limits`]), skips CRLF keep-alives between messages (RFC 5626 §3.5.1,
//! OCS `\r\n\r\n` pings) and requires Content-Length.

use super::error::{ParseError, ParseErrorKind};
use super::message::{Limits, Message, find_head_end};

/// What the framer produced.
#[derive(Debug)]
pub enum Frame {
    /// A complete message.
    Message(Message),
    /// A keep-alive: a bare CRLF or double CRLF between messages. A client
    /// that sent a double-CRLF ping treats this as the pong.
    KeepAlive,
}

/// A stream framer. Feed it with [`StreamFramer::push`], then call
/// [`StreamFramer::next_frame`] until it returns `Ok(None)`.
///
/// After an error the stream is out of sync: the connection should be
/// closed (there is no reliable way to find the next message).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
    /// Consumed prefix of `buf` not yet drained (avoids shifting the
    /// buffer after every message of a coalesced read).
    start: usize,
    failed: bool,
    /// A parsed head waiting for its body: (message, head bytes, body bytes).
    pending: Option<(Message, usize, usize)>,
    /// How far the current head was already searched for its end.
    searched: usize,
    /// The head of a message refused for its body size.
    refused: Option<Message>,
}

impl StreamFramer {
    /// A framer with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A framer with explicit limits.
    pub fn with_limits(limits: Limits) -> Self {
        StreamFramer {
            limits,
            ..Self::default()
        }
    }

    /// Appends received bytes (none once it has failed: nothing more will
    /// be read from this stream).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// After a "body size limit exceeded" error: the message's head (it
    /// parsed), so a request can still be answered (513 Message Too
    /// Large) before the connection closes.
    pub fn take_refused(&mut self) -> Option<Message> {
        self.refused.take()
    }

    /// Bytes buffered but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.failed {
            return Err(ParseError::new(
                0,
                ParseErrorKind::Expected("a new connection"),
            ));
        }
        let r = self.next_inner();
        if r.is_err() {
            self.failed = true;
            self.buf = Vec::new();
            self.start = 0;
        } else if self.start == self.buf.len() && self.buf.capacity() > 4096 {
            // Everything was consumed: let a large buffer go (an idle
            // connection should not keep the biggest read it ever saw).
            self.buf = Vec::new();
            self.start = 0;
        } else if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Frame>, ParseError> {
        let data = &self.buf[self.start..];
        // Keep-alives: a CRLF (or a lone LF) before a message.
        let ws = data
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if ws > 0 {
            if ws == data.len() && data[ws - 1] == b'\r' {
                // A CR whose LF has not arrived yet.
                return Ok(None);
            }
            self.start += ws;
            self.searched = 0;
            return Ok(Some(Frame::KeepAlive));
        }
        if self.pending.is_none() {
            let Some(head_len) = find_head_end(data, self.searched, self.limits.max_head_bytes)?
            else {
                self.searched = data.len();
                return Ok(None);
            };
            self.searched = 0;
            // The head is parsed once; the body is attached when complete.
            let (head, _) = Message::parse_head_only(&data[..head_len], &self.limits)
                .map_err(|e| e.shift(self.start))?;
            let body_len = match head.content_length() {
                Ok(Some(n)) => n,
                Ok(None) => {
                    return Err(ParseError::new(
                        self.start,
                        ParseErrorKind::MissingContentLength,
                    ));
                }
                Err(e) => return Err(e.shift(self.start)),
            };
            if body_len > self.limits.max_body_bytes {
                self.refused = Some(head);
                return Err(ParseError::new(
                    self.start + head_len,
                    ParseErrorKind::LimitExceeded("body size"),
                ));
            }
            self.pending = Some((head, head_len, body_len));
        }
        let Some((_, head_len, body_len)) = self.pending.as_ref() else {
            return Ok(None);
        };
        let (head_len, body_len) = (*head_len, *body_len);
        if data.len() < head_len + body_len {
            return Ok(None);
        }
        let Some((mut msg, _, _)) = self.pending.take() else {
            return Ok(None);
        };
        msg.attach_body(data[head_len..head_len + body_len].to_vec());
        self.start += head_len + body_len;
        Ok(Some(Frame::Message(msg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\nhello";
    const B: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: 2\r\nl: 0\r\n\r\n";

    fn drain(f: &mut StreamFramer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(fr) = f.next_frame().expect("no error") {
            out.push(match fr {
                Frame::Message(m) => m.call_id().expect("call-id").to_owned(),
                Frame::KeepAlive => "ka".to_owned(),
            });
        }
        out
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let mut all = b"\r\n\r\n".to_vec();
        all.extend_from_slice(A);
        all.extend_from_slice(b"\r\n");
        all.extend_from_slice(B);
        for split in 0..=all.len() {
            let mut f = StreamFramer::new();
            f.push(&all[..split]);
            let mut got = drain(&mut f);
            f.push(&all[split..]);
            got.extend(drain(&mut f));
            let msgs: Vec<_> = got.iter().filter(|s| *s != "ka").cloned().collect();
            assert_eq!(msgs, vec!["1", "2"], "split at {split}");
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn missing_content_length_is_an_error() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n");
        let e = f.next_frame().expect_err("needs CL");
        assert_eq!(e.kind, ParseErrorKind::MissingContentLength);
        assert!(f.next_frame().is_err(), "stays failed");
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused_without_buffering() {
        let limits = Limits {
            max_head_bytes: 100,
            max_headers: 10,
            max_body_bytes: 10,
        };
        let mut f = StreamFramer::with_limits(limits);
        f.push(&[b'a'; 200]);
        assert_eq!(
            f.next_frame().expect_err("too long").kind,
            ParseErrorKind::LimitExceeded("header bytes")
        );
        let mut f = StreamFramer::with_limits(limits);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 4000000000\r\n\r\n");
        assert!(f.next_frame().is_err());
    }
}
