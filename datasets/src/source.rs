//! Low-level input plumbing: opening (possibly gzipped) files with a byte counter, and cutting
//! a JSON input into *units* — one JSONL line, or one element of a top-level JSON array.
//!
//! Why units: every JSON-based format is parsed one unit at a time, so memory stays bounded by
//! the largest record (never the file), and a malformed unit becomes one `Err` at a known line
//! while the following units are still read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{DatasetError, Result};

/// Boxed buffered reader; `Send` so record iterators can move to worker threads.
pub(crate) type DynBufRead = Box<dyn BufRead + Send>;

/// Counts bytes pulled from the underlying file. It sits *below* the gzip decoder so progress
/// is measured in on-disk bytes, which is what a progress bar's total (the file size) is in.
struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// True when the path names a gzip file (by extension; we do not sniff magic bytes so that a
/// plain file that happens to start with 0x1f8b is not misread).
pub(crate) fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// The file name with a trailing `.gz` removed, lower-cased — for extension checks.
pub(crate) fn logical_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    name.strip_suffix(".gz").map(str::to_owned).unwrap_or(name)
}

/// Opens `path` for buffered reading, decompressing `.gz` transparently and adding every
/// on-disk byte read to `counter`.
pub(crate) fn open_counted(path: &Path, counter: Arc<AtomicU64>) -> Result<DynBufRead> {
    let file = File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let counted = CountingReader { inner: file, counter };
    if is_gzip(path) {
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            flate2::read::MultiGzDecoder::new(counted),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(64 * 1024, counted)))
    }
}

/// Opens bytes `range` of the plain (not gzipped) file `path` for buffered reading, adding every
/// byte read to `counter`.
pub(crate) fn open_range_counted(
    path: &Path,
    range: std::ops::Range<u64>,
    counter: Arc<AtomicU64>,
) -> Result<DynBufRead> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).map_err(|e| DatasetError::io(path, e))?;
    file.seek(SeekFrom::Start(range.start)).map_err(|e| DatasetError::io(path, e))?;
    let part = file.take(range.end.saturating_sub(range.start));
    Ok(Box::new(BufReader::with_capacity(64 * 1024, CountingReader { inner: part, counter })))
}

/// Skips a UTF-8 BOM and leading whitespace, returning the first significant byte (not
/// consumed) and the number of newlines skipped.
pub(crate) fn peek_significant(r: &mut dyn BufRead, path: &Path) -> Result<(Option<u8>, u64)> {
    let mut newlines = 0;
    let mut first = true;
    loop {
        let buf = r.fill_buf().map_err(|e| DatasetError::io(path, e))?;
        if buf.is_empty() {
            return Ok((None, newlines));
        }
        if first {
            first = false;
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                r.consume(3);
                continue;
            }
        }
        let mut skip = 0;
        let mut found = None;
        for &b in buf {
            if b.is_ascii_whitespace() {
                if b == b'\n' {
                    newlines += 1;
                }
                skip += 1;
            } else {
                found = Some(b);
                break;
            }
        }
        r.consume(skip);
        if found.is_some() {
            return Ok((found, newlines));
        }
    }
}

/// One unit of JSON text and the (1-based) line on which it starts.
pub(crate) struct Unit {
    pub line: u64,
    pub bytes: Vec<u8>,
}

/// Cuts an input into units. `Lines` = JSONL, `Array` = a top-level JSON array streamed
/// element by element with a string- and bracket-aware scanner (so a 1 GB AlpacaEval file
/// never has to be deserialized in one go).
pub(crate) enum Units {
    Lines(LineUnits),
    Array(ArrayUnits),
}

impl Units {
    /// JSONL from the start of a line that is line `lines_before + 1` of its file (a part of a
    /// file cut at line starts: no sniffing, which belongs to the file's start).
    pub(crate) fn lines_after(r: DynBufRead, path: &Path, lines_before: u64) -> Units {
        Units::Lines(LineUnits { r, path: path.to_path_buf(), line: lines_before, done: false })
    }

    /// Whether the input is JSONL (not a top-level JSON array), by its first significant byte.
    pub(crate) fn is_lines(mut r: DynBufRead, path: &Path) -> Result<bool> {
        Ok(peek_significant(&mut *r, path)?.0 != Some(b'['))
    }

    /// Sniffs the container: first significant byte `[` → array, anything else → JSONL.
    pub(crate) fn new(mut r: DynBufRead, path: &Path) -> Result<Units> {
        let (first, newlines) = peek_significant(&mut *r, path)?;
        let path = path.to_path_buf();
        if first == Some(b'[') {
            r.consume(1);
            Ok(Units::Array(ArrayUnits {
                r,
                path,
                line: 1 + newlines,
                done: false,
                expect_more: false,
            }))
        } else {
            Ok(Units::Lines(LineUnits { r, path, line: newlines, done: false }))
        }
    }

    /// Next unit; `Err` for unreadable input. After a fatal error the iterator is exhausted.
    pub(crate) fn next_unit(&mut self) -> Option<Result<Unit>> {
        match self {
            Units::Lines(l) => l.next_unit(),
            Units::Array(a) => a.next_unit(),
        }
    }
}

pub(crate) struct LineUnits {
    r: DynBufRead,
    path: PathBuf,
    /// Number of the last line read (0 before the first).
    line: u64,
    done: bool,
}

impl LineUnits {
    fn next_unit(&mut self) -> Option<Result<Unit>> {
        if self.done {
            return None;
        }
        loop {
            let mut buf = Vec::new();
            match self.r.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(DatasetError::io(&self.path, e)));
                }
            }
            self.line += 1;
            while buf.last().is_some_and(|b| b.is_ascii_whitespace()) {
                buf.pop();
            }
            let start = buf.iter().position(|b| !b.is_ascii_whitespace());
            match start {
                None => continue, // blank line
                Some(0) => return Some(Ok(Unit { line: self.line, bytes: buf })),
                Some(s) => {
                    return Some(Ok(Unit { line: self.line, bytes: buf[s..].to_vec() }));
                }
            }
        }
    }
}

pub(crate) struct ArrayUnits {
    r: DynBufRead,
    path: PathBuf,
    /// Current line (1-based) of the scanner position.
    line: u64,
    done: bool,
    /// A `,` was seen, so `]` now would be a trailing comma (tolerated) — tracked only to reject
    /// `[,]`-style empty elements with a precise message.
    expect_more: bool,
}

impl ArrayUnits {
    fn fail(&mut self, line: u64, msg: impl Into<String>) -> Option<Result<Unit>> {
        self.done = true;
        Some(Err(DatasetError::parse(&self.path, line, None, msg)))
    }

    fn next_unit(&mut self) -> Option<Result<Unit>> {
        if self.done {
            return None;
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut start_line = 0u64;
        let mut depth = 0u32;
        let mut in_str = false;
        let mut esc = false;
        loop {
            let chunk = match self.r.fill_buf() {
                Ok(c) => c,
                Err(e) => {
                    self.done = true;
                    return Some(Err(DatasetError::io(&self.path, e)));
                }
            };
            if chunk.is_empty() {
                let line = self.line;
                return self
                    .fail(line, "unexpected end of file: JSON array is not closed with ']'");
            }
            let mut used = 0;
            // What to do once the chunk borrow ends.
            enum Outcome {
                Emit,
                End,
                Error(&'static str),
            }
            let mut outcome = None;
            for &b in chunk {
                used += 1;
                if b == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    buf.push(b);
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                    continue;
                }
                match b {
                    b',' | b']' | b'}' if depth == 0 => {
                        outcome = Some(match b {
                            b',' if buf.is_empty() => Outcome::Error("empty array element"),
                            b',' => Outcome::Emit,
                            b']' => Outcome::End,
                            _ => Outcome::Error("unbalanced '}' in JSON array"),
                        });
                        break;
                    }
                    _ if b.is_ascii_whitespace() && buf.is_empty() => {}
                    _ => {
                        if buf.is_empty() {
                            start_line = self.line;
                        }
                        match b {
                            b'"' => in_str = true,
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => depth -= 1,
                            _ => {}
                        }
                        buf.push(b);
                    }
                }
            }
            self.r.consume(used);
            if outcome.is_some() {
                while buf.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    buf.pop();
                }
            }
            match outcome {
                None => continue,
                Some(Outcome::Error(msg)) => {
                    let line = self.line;
                    return self.fail(line, msg);
                }
                Some(Outcome::Emit) => {
                    self.expect_more = true;
                    return Some(Ok(Unit { line: start_line, bytes: buf }));
                }
                Some(Outcome::End) => {
                    self.done = true;
                    if buf.is_empty() {
                        // `[]`, or a tolerated trailing comma.
                        return None;
                    }
                    return Some(Ok(Unit { line: start_line, bytes: buf }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units_of(text: &str) -> Vec<std::result::Result<(u64, String), String>> {
        let r: DynBufRead = Box::new(io::Cursor::new(text.as_bytes().to_vec()));
        let mut u = Units::new(r, Path::new("t.json")).unwrap();
        let mut out = Vec::new();
        while let Some(x) = u.next_unit() {
            out.push(
                x.map(|u| (u.line, String::from_utf8(u.bytes).unwrap())).map_err(|e| e.to_string()),
            );
        }
        out
    }

    #[test]
    fn array_elements_with_tricky_strings_and_lines() {
        let text = "\n[\n  {\"a\": \"x],}\\\"[\"},\n  {\"b\": [1, {\"c\": 2}]}\n, 3 ,\"s,t\"\n]\n";
        let got = units_of(text);
        assert_eq!(
            got,
            vec![
                Ok((3, r#"{"a": "x],}\"["}"#.to_string())),
                Ok((4, r#"{"b": [1, {"c": 2}]}"#.to_string())),
                Ok((5, "3".to_string())),
                Ok((5, r#""s,t""#.to_string())),
            ]
        );
    }

    #[test]
    fn array_empty_trailing_comma_and_truncation() {
        assert!(units_of("[]").is_empty());
        assert!(units_of("  [ \n ] ").is_empty());
        assert_eq!(units_of("[1,]"), vec![Ok((1, "1".to_string()))]);
        let got = units_of("[{\"a\":1},\n{\"a\":");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok((1, r#"{"a":1}"#.to_string())));
        assert!(got[1].as_ref().unwrap_err().contains("not closed"), "{got:?}");
        let got = units_of("[1,,2]");
        assert_eq!(got[0], Ok((1, "1".to_string())));
        assert!(got[1].as_ref().unwrap_err().contains("empty array element"));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn jsonl_lines_skip_blanks_and_keep_numbers() {
        let got = units_of("\u{feff}{\"a\":1}\r\n\n   \n  {\"b\":2}  \nnot json\n");
        assert_eq!(
            got,
            vec![
                Ok((1, r#"{"a":1}"#.to_string())),
                Ok((4, r#"{"b":2}"#.to_string())),
                Ok((5, "not json".to_string())),
            ]
        );
    }

    #[test]
    fn leading_blank_lines_are_counted() {
        let got = units_of("\n\n{\"a\":1}\n");
        assert_eq!(got, vec![Ok((3, r#"{"a":1}"#.to_string()))]);
    }

    #[test]
    fn counting_and_gzip() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&p).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        enc.finish().unwrap();
        let size = std::fs::metadata(&p).unwrap().len();
        let counter = Arc::new(AtomicU64::new(0));
        let mut r = open_counted(&p, counter.clone()).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(counter.load(Ordering::Relaxed), size);
        assert_eq!(logical_name(&p), "x.jsonl");
    }
}
