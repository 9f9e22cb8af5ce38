#![allow(dead_code)]
//! Synthetic served logs for the membership tests: a served answer, a fresh answer and a suspect's
//! own answer per prompt, each four sentences of words drawn from a topic-specific and a shared
//! vocabulary, so that the served and the fresh answer are exchangeable samples of one
//! "snapshot" (the null holds), and a student that copied a served answer shares its phrasing.

/// A small deterministic generator (no test dependency needed).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

pub fn word(mut i: u64) -> String {
    let mut s = String::new();
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

pub fn answer(r: &mut Lcg, topic: u64) -> String {
    (0..4)
        .map(|_| {
            let ws: Vec<String> = (0..12)
                .map(|j| {
                    if j % 4 == 0 {
                        word(1000 + topic * 3 + r.next(3))
                    } else {
                        word(30 + r.next(870))
                    }
                })
                .collect();
            ws.join(" ") + "."
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prompt `i` of the fixtures.
pub fn prompt(i: u64) -> String {
    format!("Question {} about {}?", word(i), word(2000 + i))
}

/// A desensitized copy: the last sentence dropped, lower-cased.
pub fn copied(served: &str) -> String {
    served[..served[..served.len() - 1].rfind('.').unwrap()].to_lowercase()
}

/// One prompt's answers.
pub struct Row {
    pub prompt: String,
    pub served: String,
    pub fresh: String,
    pub own: String,
}

/// `n` prompts' answers, deterministic per seed.
pub fn rows(n: u64, seed: u64) -> Vec<Row> {
    let mut r = Lcg(seed);
    (0..n)
        .map(|i| {
            let (served, fresh, own) = (answer(&mut r, i), answer(&mut r, i), answer(&mut r, i));
            Row { prompt: prompt(i), served, fresh, own }
        })
        .collect()
}
