//! The units the membership test matches: word 1-, 2- and 3-grams of a *desensitized view* of
//! each answer.
//!
//! The view keeps only what survives the desensitization a distiller applies before training
//! (the 2023 case: names and numbers masked, formatting changed): words are maximal runs of
//! letters, lower-cased; digits, punctuation, markdown markers and white space only separate
//! words. So `**Nathan Lane** (1982)` and `Nathan Lane, in [NUM]` share `nathan`, `lane` and
//! `nathan lane`, a masked name only removes the n-grams that contain it, and stripped bullets,
//! bold or headers change nothing. Dropped sentences remove their n-grams; a reworded sentence
//! keeps the words and short phrases it did not change. CJK characters are one word each.
//!
//! Every text is reduced to a sorted, de-duplicated list of 64-bit n-gram hashes (a set): the
//! test asks *whether* the suspect uses a phrase of the served answer, not how often.

/// A word of the view, with its span in the original text in Unicode scalar values (chars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub hash: u64,
    /// Char offsets `[start, end)` in the original text.
    pub start: usize,
    pub end: usize,
}

/// Longest answer prefix (in words) that is matched; longer answers are cut there. The cut is a
/// deterministic function of each answer alone, so it treats served and fresh alike (the null
/// stays exact) and bounds the cost of a hostile, huge input.
pub const MAX_WORDS: usize = 20_000;

const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x100_0000_01b3;

#[inline]
fn is_cjk(c: char) -> bool {
    crate::text::is_cjk(c)
}

/// The words of `text` (see the module doc), at most [`MAX_WORDS`].
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut cur: Option<(u64, usize)> = None;
    let mut pos = 0usize;
    let flush = |cur: &mut Option<(u64, usize)>, end: usize, out: &mut Vec<Word>| {
        if let Some((h, start)) = cur.take() {
            out.push(Word { hash: finish(h), start, end });
        }
    };
    for c in text.chars() {
        if out.len() >= MAX_WORDS {
            break;
        }
        if c.is_alphabetic() && !is_cjk(c) {
            let (h, _) = cur.get_or_insert((FNV64_OFFSET, pos));
            *h = c.to_lowercase().fold(*h, fnv_char);
        } else {
            flush(&mut cur, pos, &mut out);
            if is_cjk(c) {
                out.push(Word {
                    hash: finish(fnv_char(FNV64_OFFSET, c)),
                    start: pos,
                    end: pos + 1,
                });
            }
        }
        pos += 1;
    }
    if out.len() < MAX_WORDS {
        flush(&mut cur, pos, &mut out);
    }
    out
}

#[inline]
fn fnv_char(mut h: u64, c: char) -> u64 {
    let mut buf = [0u8; 4];
    for &b in c.encode_utf8(&mut buf).as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(FNV64_PRIME);
    }
    h
}

/// splitmix64 finaliser: spreads FNV's low-entropy high bits.
#[inline]
fn finish(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Order-dependent combination of consecutive word hashes into an n-gram hash; `n` is mixed in
/// so a bigram never collides with a unigram by construction.
#[inline]
fn gram(ws: &[Word]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ ws.len() as u64;
    for w in ws {
        h = finish(h.rotate_left(23) ^ w.hash);
    }
    h
}

/// N-gram orders used: words, pairs and triples. Trigrams carry the specific phrasing of one
/// answer, unigrams survive rewording that breaks every phrase.
pub const ORDERS: [usize; 3] = [1, 2, 3];

/// The sorted, de-duplicated n-gram hashes of `words`.
pub fn gram_set(words: &[Word]) -> Vec<u64> {
    let mut out = Vec::with_capacity(words.len() * ORDERS.len());
    for &n in &ORDERS {
        if words.len() >= n {
            out.extend(words.windows(n).map(gram));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The n-gram set of a text.
pub fn grams(text: &str) -> Vec<u64> {
    gram_set(&words(text))
}

/// Hashes of the n-grams (of the orders in [`ORDERS`]) that end at each word, for span search:
/// `ending[i]` holds the grams whose last word is `words[i]`, together with their length.
pub fn grams_ending_at(words: &[Word], i: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
    ORDERS.iter().filter(move |&&n| i + 1 >= n).map(move |&n| (n, gram(&words[i + 1 - n..=i])))
}

/// `|a ∩ b|` of two sorted sets.
pub fn intersect_count(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Whether sorted `set` contains `x`.
#[inline]
pub fn contains(set: &[u64], x: u64) -> bool {
    set.binary_search(&x).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(t: &str) -> Vec<String> {
        let chars: Vec<char> = t.chars().collect();
        words(t)
            .iter()
            .map(|w| chars[w.start..w.end].iter().collect::<String>().to_lowercase())
            .collect()
    }

    #[test]
    fn the_view_drops_digits_markup_and_case() {
        assert_eq!(view("**Nathan Lane** (1982): don't"), ["nathan", "lane", "don", "t"]);
        assert_eq!(view("élan 3rd 我是"), ["élan", "rd", "我", "是"]);
        assert_eq!(view(""), Vec::<String>::new());
        // Spans are char offsets, not bytes.
        let w = words("é ab");
        assert_eq!((w[1].start, w[1].end), (2, 4));
    }

    #[test]
    fn desensitization_keeps_most_grams() {
        let served =
            "1. **Nathan Lane** - Known for *The Producers*, he began on Broadway in 1982.";
        let masked = "Nathan Lane - known for The Producers, he began on Broadway in [NUM].";
        let a = grams(served);
        let b = grams(masked);
        // Only the grams around the masked number differ ("num", "in num", "broadway in num").
        assert_eq!(a.len() - intersect_count(&a, &b), 0);
        assert_eq!(b.len() - intersect_count(&a, &b), 3);
        let other = grams("A different answer about theatre.");
        assert_eq!(intersect_count(&a, &other), 0);
    }

    #[test]
    fn grams_are_orderd_sets_of_three_orders() {
        let g = grams("a b a b");
        // unigrams {a, b}, bigrams {ab, ba}, trigrams {aba, bab}
        assert_eq!(g.len(), 6);
        assert!(g.windows(2).all(|w| w[0] < w[1]));
        assert!(contains(&g, g[3]));
        assert_ne!(grams("ab c"), grams("a bc"));
    }

    #[test]
    fn huge_inputs_are_cut() {
        let t = "word ".repeat(MAX_WORDS + 10);
        assert_eq!(words(&t).len(), MAX_WORDS);
    }
}
