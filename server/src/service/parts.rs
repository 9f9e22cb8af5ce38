//! Cutting a job's input into parts that replicas claim one by one (issue 16): the upload is
//! cut at line starts, about every `--job-part-bytes`, while it streams in (no second pass
//! over a corpus of hundreds of GB), and each cut remembers how many lines precede it so that
//! every part numbers its lines as a whole-file read would.

use crate::store::NewPart;

/// Finds the cuts of a byte stream fed in pieces: the first line start at or after every
/// multiple of `part_bytes` since the previous cut.
#[derive(Debug)]
pub struct PartCutter {
    part_bytes: u64,
    /// Bytes seen.
    bytes: u64,
    /// Newlines seen.
    lines: i64,
    /// The next cut goes at the first line start at or after this offset.
    next: u64,
    /// `(offset, lines before it)` of each cut.
    cuts: Vec<(u64, i64)>,
}

impl PartCutter {
    pub fn new(part_bytes: u64) -> Self {
        let part_bytes = part_bytes.max(1);
        PartCutter { part_bytes, bytes: 0, lines: 0, next: part_bytes, cuts: Vec::new() }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let base = self.bytes;
        self.bytes += chunk.len() as u64;
        // Nothing to find in this piece: count its newlines only (the common case, fast).
        if base + (chunk.len() as u64) < self.next {
            self.lines += count_newlines(chunk);
            return;
        }
        for (i, &b) in chunk.iter().enumerate() {
            if b != b'\n' {
                continue;
            }
            self.lines += 1;
            let start = base + i as u64 + 1;
            if start >= self.next {
                self.cuts.push((start, self.lines));
                self.next = start + self.part_bytes;
            }
        }
    }

    /// The parts of the whole stream: one when it is no larger than a part (no cut), else
    /// consecutive ranges covering every byte. A cut at the very end is dropped (no empty part).
    pub fn parts(&self) -> Vec<NewPart> {
        let cuts: Vec<(u64, i64)> =
            self.cuts.iter().copied().filter(|&(at, _)| at < self.bytes).collect();
        if cuts.is_empty() {
            return Vec::new();
        }
        let mut parts = Vec::with_capacity(cuts.len() + 1);
        let mut prev = (0u64, 0i64);
        for &c in cuts.iter().chain(std::iter::once(&(self.bytes, self.lines))) {
            parts.push(NewPart {
                start_offset: prev.0 as i64,
                end_offset: c.0 as i64,
                lines_before: prev.1,
            });
            prev = c;
        }
        parts
    }
}

fn count_newlines(chunk: &[u8]) -> i64 {
    chunk.iter().filter(|&&b| b == b'\n').count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts cover the input exactly, start at line starts with the right line counts, are at
    /// least `part_bytes` long (the last may be shorter), whatever the pieces it was fed in.
    #[test]
    fn parts_cover_the_input_at_line_starts() {
        let text: String =
            (0..500).map(|i| format!("{{\"text\":\"{}\"}}\n", "x".repeat(i % 37))).collect();
        let bytes = text.as_bytes();
        for piece in [1, 7, 100, 4096, bytes.len()] {
            for part_bytes in [64u64, 1000, 5000] {
                let mut c = PartCutter::new(part_bytes);
                bytes.chunks(piece).for_each(|p| c.feed(p));
                let parts = c.parts();
                assert!(parts.len() > 1, "{piece} {part_bytes}");
                assert_eq!(parts[0].start_offset, 0);
                assert_eq!(parts.last().unwrap().end_offset as usize, bytes.len());
                for w in parts.windows(2) {
                    assert_eq!(w[0].end_offset, w[1].start_offset);
                }
                for (k, p) in parts.iter().enumerate() {
                    let (a, b) = (p.start_offset as usize, p.end_offset as usize);
                    assert!(a == 0 || bytes[a - 1] == b'\n', "part {k} starts mid-line");
                    assert_eq!(
                        p.lines_before as usize,
                        bytes[..a].iter().filter(|&&x| x == b'\n').count()
                    );
                    if k + 1 < parts.len() {
                        assert!((b - a) as u64 >= part_bytes, "part {k} too short");
                    }
                }
            }
        }
        // Small inputs, and a cut that would fall at the very end, give no parts.
        let mut c = PartCutter::new(1 << 20);
        c.feed(bytes);
        assert!(c.parts().is_empty());
        let mut c = PartCutter::new(4);
        c.feed(b"abcd\n");
        assert!(c.parts().is_empty());
    }
}
