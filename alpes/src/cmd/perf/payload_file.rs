//! `--payload-file`: the payloads of a delimited file, streamed in file order
//! through one reused buffer and read again from the start when the run wants
//! more records than the file holds. Nothing is loaded up front, so the first
//! record goes out at once and memory stays flat however large the file, as
//! with a tool that reads its input as it sends (kcat -P).

use memchr::memmem::Finder;
use std::io::{Read, Seek, SeekFrom};

/// The buffer's starting size; it doubles for a payload longer than it.
const CHUNK: usize = 4 << 20;

/// A stream of the non-empty payloads between delimiters.
#[derive(Debug)]
pub struct PayloadStream<R> {
    source: R,
    finder: Finder<'static>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    found_one: bool,
    /// The whole source fitted in the buffer at the first read: passes after the first re-read memory.
    whole: bool,
}

impl<R: Read + Seek> PayloadStream<R> {
    /// Payloads of `source` split at `delimiter` (an empty delimiter makes the whole source one payload).
    pub fn new(source: R, delimiter: &[u8]) -> PayloadStream<R> {
        PayloadStream {
            source,
            finder: Finder::new(delimiter).into_owned(),
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            found_one: false,
            whole: false,
        }
    }

    /// The next payload; after the last one, the first again. An error if the source holds none.
    pub fn next_payload(&mut self) -> std::io::Result<&[u8]> {
        let (from, to) = self.next_span()?;
        Ok(&self.buf[from..to])
    }

    fn next_span(&mut self) -> std::io::Result<(usize, usize)> {
        let delimiter = self.finder.needle().len();
        loop {
            if delimiter > 0 {
                if let Some(at) = self.finder.find(&self.buf[self.start..self.end]) {
                    let from = self.start;
                    self.start += at + delimiter;
                    if at > 0 {
                        self.found_one = true;
                        return Ok((from, from + at));
                    }
                    continue;
                }
            }
            if self.eof {
                if self.start < self.end {
                    let from = self.start;
                    self.start = self.end;
                    self.found_one = true;
                    return Ok((from, self.end));
                }
                if !self.found_one {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "File does not exist or empty file provided.",
                    ));
                }
                if self.whole {
                    // The whole file is in the buffer: wrap around in memory.
                    self.start = 0;
                    continue;
                }
                self.source.seek(SeekFrom::Start(0))?;
                // Each pass must find a payload again (the file may have been emptied meanwhile).
                (self.start, self.end, self.eof, self.found_one) = (0, 0, false, false);
                continue;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let first_fill = self.end == 0 && !self.found_one && !self.eof;
            match self.source.read(&mut self.buf[self.end..])? {
                0 => self.eof = true,
                n => self.end += n,
            }
            if first_fill && self.end < self.buf.len() {
                // A short first read may be the whole file: find out with one more read.
                if self.source.read(&mut self.buf[self.end..])? == 0 {
                    (self.eof, self.whole) = (true, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn take(text: &[u8], delimiter: &[u8], n: usize) -> Vec<String> {
        let mut s = PayloadStream::new(Cursor::new(text.to_vec()), delimiter);
        (0..n)
            .map(|_| String::from_utf8(s.next_payload().expect("payload").to_vec()).expect("utf-8"))
            .collect()
    }

    #[test]
    fn payloads_come_in_file_order_without_empty_ones_and_wrap_around() {
        assert_eq!(take(b"ab\n\ncd\nef", b"\n", 7), ["ab", "cd", "ef", "ab", "cd", "ef", "ab"]);
        assert_eq!(take(b"x||y||||z||", b"||", 4), ["x", "y", "z", "x"]);
        assert_eq!(take(b"whole", b"", 2), ["whole", "whole"]);
    }

    #[test]
    fn a_payload_longer_than_the_buffer_and_payloads_across_reads_come_whole() {
        let long = "L".repeat(CHUNK + 10);
        let text = format!("a\n{long}\nb");
        assert_eq!(
            take(text.as_bytes(), b"\n", 4),
            ["a".to_owned(), long, "b".to_owned(), "a".to_owned()]
        );
        let many: String = (0..300_000).map(|i| format!("{i:07}\n")).collect();
        let got = take(many.as_bytes(), b"\n", 300_001);
        assert_eq!(
            (got[0].as_str(), got[299_999].as_str(), got[300_000].as_str()),
            ("0000000", "0299999", "0000000")
        );
        assert!(got.iter().all(|p| p.len() == 7), "no payload is cut at a read boundary");
    }

    #[test]
    fn a_source_without_payloads_is_an_error_not_a_loop() {
        for text in [&b""[..], b"\n\n\n"] {
            let mut s = PayloadStream::new(Cursor::new(text.to_vec()), b"\n");
            assert!(s.next_payload().is_err());
        }
    }
}
