//! Tokenisation and hashing shared by every lexical feature.
//!
//! Hashes must be stable across platforms and releases: a profile stores weights by hash bucket,
//! so changing anything here changes what a saved profile means (bump
//! [`crate::profile::FORMAT_VERSION`] if you do).

/// A word-level token with its character span in the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
    /// Stable hash of the lowercased token.
    pub hash: u32,
}

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// Final avalanche of murmur3: spreads n-gram hashes over the buckets.
#[inline]
pub fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Combine two hashes order-dependently (used for word bigrams and character windows).
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    a.wrapping_mul(0x9e37_79b1).rotate_left(5) ^ b
}

/// CJK ideographs, kana and hangul are written without spaces: each character is a word.
#[inline]
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff | 0x20000..=0x2fa1f)
}

#[inline]
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Split a text into word tokens: runs of letters/digits (with inner apostrophes, so "don't" is one
/// word), single CJK characters, and single punctuation/symbol characters (markdown markers such as
/// `*`, `#` and `|` carry style). White space separates tokens and is not a token.
pub fn tokens(text: &str, out: &mut Vec<Token>) {
    out.clear();
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c.is_whitespace() {
            continue;
        }
        if is_word_char(c) {
            let mut h = fnv_lower(FNV_OFFSET, c);
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = it.peek() {
                let is_word =
                    if d.is_ascii() { d.is_ascii_alphanumeric() } else { is_word_char(d) };
                let inner_apostrophe = !is_word
                    && (d == '\'' || d == '’')
                    && text[j + d.len_utf8()..].chars().next().is_some_and(is_word_char);
                if is_word || inner_apostrophe {
                    h = fnv_lower(h, if d == '’' { '\'' } else { d });
                    end = j + d.len_utf8();
                    it.next();
                } else {
                    break;
                }
            }
            out.push(Token { start: i, end, hash: mix(h) });
        } else {
            let h = fnv_char(FNV_OFFSET, c);
            out.push(Token { start: i, end: i + c.len_utf8(), hash: mix(h ^ 0x5bd1_e995) });
        }
    }
}

/// FNV step over the lowercase form of `c` (ASCII fast path: most text is ASCII).
#[inline]
fn fnv_lower(h: u32, c: char) -> u32 {
    if c.is_ascii() {
        (h ^ c.to_ascii_lowercase() as u32).wrapping_mul(FNV_PRIME)
    } else {
        c.to_lowercase().fold(h, fnv_char)
    }
}

#[inline]
fn fnv_char(mut h: u32, c: char) -> u32 {
    let mut buf = [0u8; 4];
    for &b in c.encode_utf8(&mut buf).as_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Stable hash of a word exactly as [`tokens`] hashes it (for tests and phrase look-ups).
pub fn word_hash(word: &str) -> u32 {
    let mut v = Vec::new();
    tokens(word, &mut v);
    v.first().map_or(0, |t| t.hash)
}

/// Convert a byte offset into a character (Unicode scalar) offset.
pub fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        tokens(t, &mut v);
        v.iter().map(|k| &t[k.start..k.end]).collect()
    }

    #[test]
    fn splits_words_punctuation_and_cjk() {
        assert_eq!(
            words("Don't panic! **Bold**"),
            vec!["Don't", "panic", "!", "*", "*", "Bold", "*", "*"]
        );
        assert_eq!(words("我是ChatGPT。"), vec!["我", "是", "ChatGPT", "。"]);
        assert_eq!(words("  "), Vec::<&str>::new());
    }

    const PINNED: (u32, u32, u32) = (3_305_589_240, 4_228_830_422, 3_924_699_244);

    #[test]
    fn hashes_are_case_insensitive_and_stable() {
        assert_eq!(word_hash("OpenAI"), word_hash("openai"));
        assert_ne!(word_hash("openai"), word_hash("open"));
        // Pinned values: a change here silently invalidates every saved profile (bump the
        // profile format version if it must change).
        assert_eq!((word_hash("the"), word_hash("ChatGPT"), word_hash("我")), PINNED);
        assert_eq!(word_hash("don’t"), word_hash("don't"));
    }

    #[test]
    fn char_offsets_count_scalars() {
        assert_eq!(char_offset("héllo", 3), 2);
        assert_eq!(char_offset("abc", 99), 3);
    }
}
