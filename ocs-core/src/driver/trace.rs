//! The SIP trace file: records from [`crate::trace`] appended to a file
//! that rotates by size (`trace.log`, `trace.log.1`, … `trace.log.N`).
//!
//! Received stream data is cut into whole messages with the core's
//! [`StreamFramer`] first, so redaction always sees complete headers even
//! when a read ends in the middle of one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::discovery::Transport;
use crate::sip::framing::{Frame, StreamFramer};
use crate::trace::{Direction, Flow, PcapWriter, text_record};

/// The trace file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// Readable text: a line with time, direction and addresses, then the
    /// message.
    Text,
    /// pcap (raw IP link type) for Wireshark and sngrep.
    Pcap,
}

/// Where and how to write a SIP trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// The current file; rotated copies get `.1`, `.2`, … appended.
    pub path: PathBuf,
    /// Text or pcap.
    pub format: TraceFormat,
    /// Rotate when the current file would grow past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files to keep (0: the current file is truncated
    /// instead).
    pub keep: u32,
}

impl TraceConfig {
    /// A text trace at `path`, rotated at 10 MB, three old files kept.
    pub fn text(path: impl Into<PathBuf>) -> TraceConfig {
        TraceConfig {
            path: path.into(),
            format: TraceFormat::Text,
            max_bytes: 10 * 1024 * 1024,
            keep: 3,
        }
    }

    /// A pcap trace at `path`, with the same rotation defaults.
    pub fn pcap(path: impl Into<PathBuf>) -> TraceConfig {
        TraceConfig {
            format: TraceFormat::Pcap,
            ..TraceConfig::text(path)
        }
    }
}

/// An open trace.
#[derive(Debug)]
pub(crate) struct TraceFile {
    cfg: TraceConfig,
    file: Option<File>,
    size: u64,
    pcap: PcapWriter,
    flow: Option<Flow>,
    framer: StreamFramer,
    /// The first write error, reported once; tracing then stops rather
    /// than failing the client.
    failed: bool,
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl TraceFile {
    pub(crate) fn new(cfg: TraceConfig) -> TraceFile {
        TraceFile {
            cfg,
            file: None,
            size: 0,
            pcap: PcapWriter::new(),
            flow: None,
            framer: StreamFramer::new(),
            failed: false,
        }
    }

    /// A new connection: later records carry its addresses.
    pub(crate) fn connected(&mut self, flow: Flow) {
        self.flow = Some(flow);
        self.framer = StreamFramer::new();
    }

    /// Bytes we sent (always whole messages or keep-alives).
    pub(crate) fn sent(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return Ok(());
        }
        self.write(Direction::Sent, bytes)
    }

    /// Bytes read from the connection (a datagram, or any piece of a
    /// stream).
    pub(crate) fn received(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.flow.is_some_and(|f| f.transport != Transport::Udp);
        if !stream {
            return self.write(Direction::Received, bytes);
        }
        self.framer.push(bytes);
        loop {
            match self.framer.next_frame() {
                Ok(Some(Frame::Message(m))) => self.write(Direction::Received, &m.to_bytes())?,
                Ok(Some(Frame::KeepAlive)) => {}
                Ok(None) => return Ok(()),
                // The endpoint will drop this connection; keep what came.
                Err(_) => {
                    self.framer = StreamFramer::new();
                    return self.write(Direction::Received, bytes);
                }
            }
        }
    }

    fn write(&mut self, dir: Direction, msg: &[u8]) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let r = self.write_inner(dir, msg);
        if r.is_err() {
            self.failed = true;
            self.file = None;
        }
        r
    }

    fn write_inner(&mut self, dir: Direction, msg: &[u8]) -> io::Result<()> {
        #[allow(clippy::disallowed_methods)] // trace timestamps are wall clock
        let at = SystemTime::now();
        let record = match (self.cfg.format, &self.flow) {
            (TraceFormat::Pcap, Some(f)) => self.pcap.record(dir, at, f, msg),
            // No connection yet (cannot happen for sent data): text is
            // still useful, pcap needs addresses.
            (TraceFormat::Pcap, None) => return Ok(()),
            (TraceFormat::Text, f) => text_record(dir, at, f.as_ref(), msg),
        };
        let header = match self.cfg.format {
            TraceFormat::Pcap => PcapWriter::file_header().len() as u64,
            TraceFormat::Text => 0,
        };
        if self.file.is_some()
            && self.size > header
            && self.size + record.len() as u64 > self.cfg.max_bytes
        {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.open()?;
        }
        if let Some(f) = &mut self.file {
            f.write_all(&record)?;
            self.size += record.len() as u64;
        }
        Ok(())
    }

    /// Opens the current file. A pcap file starts over (a header cannot
    /// be appended to); a text file is appended to.
    fn open(&mut self) -> io::Result<()> {
        let pcap = self.cfg.format == TraceFormat::Pcap;
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .append(!pcap)
            .truncate(pcap)
            .open(&self.cfg.path)?;
        self.size = if pcap {
            let h = PcapWriter::file_header();
            f.write_all(&h)?;
            // New file: TCP sequence numbers start again.
            self.pcap = PcapWriter::new();
            h.len() as u64
        } else {
            f.metadata()?.len()
        };
        self.file = Some(f);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let p = &self.cfg.path;
        if self.cfg.keep == 0 {
            std::fs::remove_file(p)?;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(p, self.cfg.keep));
        for n in (1..self.cfg.keep).rev() {
            let from = rotated(p, n);
            if from.exists() {
                std::fs::rename(&from, rotated(p, n + 1))?;
            }
        }
        std::fs::rename(p, rotated(p, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ocs-trace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn flow(t: Transport) -> Flow {
        Flow {
            transport: t,
            local: "127.0.0.1:40000".parse().expect("addr"),
            remote: "127.0.0.1:5061".parse().expect("addr"),
        }
    }

    const MSG: &[u8] = b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: NTLM gssapi-data=\"SECRETTOKEN\"\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn text_rotates_by_size_and_keeps_n_files() {
        let d = dir("text");
        let path = d.join("sip.log");
        let mut t = TraceFile::new(TraceConfig {
            max_bytes: 400,
            keep: 2,
            ..TraceConfig::text(&path)
        });
        t.connected(flow(Transport::Udp));
        for _ in 0..20 {
            t.received(MSG).expect("write");
        }
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let s = std::fs::read_to_string(&p).expect("exists");
            assert!(
                !s.is_empty() && s.len() <= 400,
                "{}: {}",
                p.display(),
                s.len()
            );
            assert!(s.contains("<<< received UDP 127.0.0.1:5061 -> 127.0.0.1:40000"));
            assert!(!s.contains("SECRETTOKEN"), "{s}");
        }
        assert!(!rotated(&path, 3).exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_header_split_across_reads_is_still_redacted() {
        let d = dir("split");
        let path = d.join("sip.log");
        let mut t = TraceFile::new(TraceConfig::text(&path));
        t.connected(flow(Transport::Tcp));
        let cut = MSG.windows(6).position(|w| w == b"SECRET").expect("token") + 3;
        t.received(&MSG[..cut]).expect("write");
        t.received(&MSG[cut..]).expect("write");
        t.received(b"\r\n\r\n").expect("keep-alive");
        let s = std::fs::read_to_string(&path).expect("exists");
        assert!(!s.contains("SEC"), "{s}");
        assert_eq!(s.matches("<<< received TCP").count(), 1, "{s}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn every_pcap_file_starts_with_a_header() {
        let d = dir("pcap");
        let path = d.join("sip.pcap");
        let mut t = TraceFile::new(TraceConfig {
            max_bytes: 1000,
            keep: 1,
            ..TraceConfig::pcap(&path)
        });
        t.connected(flow(Transport::Tcp));
        for _ in 0..10 {
            t.sent(MSG).expect("write");
            t.received(MSG).expect("write");
        }
        for p in [path.clone(), rotated(&path, 1)] {
            let b = std::fs::read(&p).expect("exists");
            assert_eq!(b[..24], PcapWriter::file_header());
            assert!(b.len() <= 1000);
            // Whole records only: walking the lengths lands on the end.
            let mut i = 24;
            while i < b.len() {
                let incl = u32::from_le_bytes(b[i + 8..i + 12].try_into().expect("4")) as usize;
                i += 16 + incl;
            }
            assert_eq!(i, b.len());
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
