//! The profile file: `PDGPROF1` magic, a little-endian u32 format version, then a gzip'd bincode
//! [`ProfileFile`]. Any other version is refused with [`DetectorError::Version`].

use super::{Body, Profile, ProfileMeta};
use crate::features::STYLE_NAMES;
use crate::{DetectorError, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;

/// Version of the on-disk profile format. Bump it whenever features, hashing or the stored
/// structure change meaning.
pub const FORMAT_VERSION: u32 = 4;
/// Format 3 is format 4 without the edge-word block (see [`upgrade_v3`]): still read.
const V3: u32 = 3;
const MAGIC: &[u8; 8] = b"PDGPROF1";
static BUILTIN: &[u8] = include_bytes!("../../profiles/openai-alpaca-eval-dev.pdg");

/// What is serialised (bincode cannot carry `serde_json::Value`, so metadata travels as JSON text).
#[derive(Serialize, Deserialize)]
struct ProfileFile {
    meta_json: String,
    body: Body,
}

impl Profile {
    /// The built-in profile for upstream "openai", compiled into the binary.
    pub fn builtin() -> Result<Profile> {
        if BUILTIN.is_empty() {
            return Err(DetectorError::Invalid(
                "this build has no built-in profile; build one with `scripts/build-builtin-profile.sh`".into(),
            ));
        }
        Self::from_bytes(BUILTIN)
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let bytes = std::fs::read(path)
            .map_err(|source| DetectorError::Io { path: path.into(), source })?;
        Self::from_bytes(&bytes)
    }

    /// Profiles decompress to at most this many bytes (the built-in one: 5.6 MB); a larger
    /// one is refused as corrupt (`decompressed profile exceeds …`).
    pub const MAX_DECOMPRESSED: u64 = 128 * 1024 * 1024;

    pub fn from_bytes(bytes: &[u8]) -> Result<Profile> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(DetectorError::NotAProfile);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION && version != V3 {
            return Err(DetectorError::Version { found: version, expected: FORMAT_VERSION });
        }
        // Bounded while decompressing: a 1 MB gzip bomb used to inflate to 1.2 GB first.
        let mut raw = Vec::new();
        let gz = flate2::read::GzDecoder::new(&bytes[12..]);
        LimitedRead { inner: gz, left: Self::MAX_DECOMPRESSED }
            .read_to_end(&mut raw)
            .map_err(|e| DetectorError::Corrupt(format!("decompress: {e}")))?;
        if version == V3 {
            raw = upgrade_v3(raw)?;
        }
        Self::from_raw(&raw)
    }

    /// The decompressed part of a profile file: bincode, then the shape checks.
    fn from_raw(raw: &[u8]) -> Result<Profile> {
        let f: ProfileFile =
            bincode::deserialize(raw).map_err(|e| DetectorError::Corrupt(e.to_string()))?;
        let meta: ProfileMeta = serde_json::from_str(&f.meta_json)
            .map_err(|e| DetectorError::Corrupt(e.to_string()))?;
        let b = f.body;
        b.features.check().map_err(|e| DetectorError::Corrupt(format!("features: {e}")))?;
        // Every length and index the scorer relies on (a damaged or hand-made profile must be
        // refused here, not panic later while scoring: found by the fuzz tests below).
        let w = &b.weights;
        if w.dim != b.dim()
            || w.k != b.components.len()
            || w.scale.len() != w.dim
            || w.dim.checked_mul(w.k) != Some(w.q.len())
            || w.b.len() != w.k
            || b.component_family.len() != b.components.len()
            || b.component_family.iter().any(|&f| f >= b.families.len())
            || b.upstream >= b.families.len()
            || b.style_mean.len() != STYLE_NAMES.len()
            || b.style_sd.len() != STYLE_NAMES.len()
        {
            return Err(DetectorError::Corrupt(
                "weight shapes do not match the feature configuration".into(),
            ));
        }
        Ok(Profile { meta, b })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Borrowing serialisation: bincode writes the nested body exactly as flat fields.
        #[derive(Serialize)]
        struct Out<'a> {
            meta_json: String,
            body: &'a Body,
        }
        let f = Out {
            meta_json: serde_json::to_string(&self.meta)
                .map_err(|e| DetectorError::Corrupt(e.to_string()))?,
            body: &self.b,
        };
        let raw = bincode::serialize(&f).map_err(|e| DetectorError::Corrupt(e.to_string()))?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::best());
        gz.write_all(&raw)
            .and_then(|_| gz.finish())
            .map_err(|e| DetectorError::Corrupt(e.to_string()))
    }

    /// Write atomically (temp file + rename), so a crash never leaves half a profile.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("profile.tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| DetectorError::Io { path: path.into(), source })
    }
}

/// A reader that fails (instead of ending) once more than `left` bytes were read.
struct LimitedRead<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for LimitedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "decompressed profile exceeds {} bytes",
                Profile::MAX_DECOMPRESSED
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A format-3 body as format 4: the same bincode with the edge-word block's two fields
/// (`edge_bits: u32 = 0`, `edge_scale: f32 = 0`) inserted after the five fields the feature
/// configuration had (bincode 1 writes fixed-width fields in order: the metadata string as a u64
/// length and its bytes, then `word_bits, char_bits: u32`, `char_min, char_max: u64`,
/// `style_scale: f32`). A profile saved before the block scores exactly as it did.
fn upgrade_v3(mut raw: Vec<u8>) -> Result<Vec<u8>> {
    let corrupt = || DetectorError::Corrupt("format-3 profile too short".into());
    let len = raw.get(..8).ok_or_else(corrupt)?;
    let meta_len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let at = usize::try_from(meta_len)
        .ok()
        .and_then(|m| m.checked_add(8 + 4 + 4 + 8 + 8 + 4))
        .filter(|&at| at <= raw.len())
        .ok_or_else(corrupt)?;
    raw.splice(at..at, [0u8; 8]);
    Ok(raw)
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Issue 14 item 6: a small gzip that inflates past the limit is refused while inflating.
    #[test]
    fn gzip_bombs_are_refused_at_the_decompression_limit() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let mut gz = flate2::write::GzEncoder::new(bytes, flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(Profile::MAX_DECOMPRESSED >> 20) + 8 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
        let e = Profile::from_bytes(&bomb).expect_err("refused").to_string();
        assert!(e.contains("exceeds"), "{e}");
    }
}

/// Property-based fuzzing of the profile loader (issue 14, bar): uploaded profiles are user
/// input. Random bytes, random gzip streams behind a valid header, and the built-in profile with
/// random bytes changed or cut short: the loader returns `Ok` or `Err`, never panics, and a
/// profile it accepts scores a text without panicking. Bounded case counts (`PROPTEST_CASES`
/// raises them).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn header() -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b
    }

    fn builtin_raw() -> &'static [u8] {
        static RAW: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        RAW.get_or_init(|| {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&BUILTIN[12..]).read_to_end(&mut raw).unwrap();
            raw
        })
    }

    fn check(r: Result<Profile>) {
        if let Ok(p) = r {
            let _ = p.score("I'd be happy to help. Here is a short answer.", Some("Help me."));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_files(tail in proptest::collection::vec(any::<u8>(), 0..4096), with_header: bool, gz: bool) {
            let mut bytes = if with_header { header() } else { Vec::new() };
            if gz {
                let mut e = flate2::write::GzEncoder::new(bytes, flate2::Compression::fast());
                e.write_all(&tail).unwrap();
                bytes = e.finish().unwrap();
            } else {
                bytes.extend_from_slice(&tail);
            }
            check(Profile::from_bytes(&bytes));
        }
    }

    /// What the fuzzer found: a profile whose component names a family that does not exist
    /// loaded fine and then panicked (index out of bounds) on its first text.
    #[test]
    fn out_of_range_indices_are_refused_at_load() {
        let f: ProfileFile = bincode::deserialize(builtin_raw()).unwrap();
        let good = bincode::serialize(&f).unwrap();
        assert!(Profile::from_raw(&good).is_ok());
        let fams = f.body.families.len();
        let edits: [fn(&mut Body, usize); 4] = [
            |b, n| b.component_family[0] = n,
            |b, n| b.upstream = n,
            |b, _| {
                b.weights.b.pop();
            },
            |b, _| {
                b.weights.scale.pop();
            },
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut f: ProfileFile = bincode::deserialize(builtin_raw()).unwrap();
            edit(&mut f.body, fams);
            let raw = bincode::serialize(&f).unwrap();
            let e = Profile::from_raw(&raw).err().unwrap_or_else(|| panic!("edit {i} loaded"));
            assert!(e.to_string().contains("weight shapes"), "{e}");
        }
    }

    /// A feature configuration out of its ranges is refused at load, before its sizes are used
    /// (a huge hash size, reversed n-gram lengths whose difference would underflow, a NaN weight).
    #[test]
    fn feature_configs_out_of_range_are_refused_at_load() {
        let edits: [fn(&mut Body); 6] = [
            |b| b.features.word_bits = 25,
            |b| b.features.edge_bits = 40,
            |b| {
                b.features.char_bits = 16;
                (b.features.char_min, b.features.char_max) = (5, 3);
            },
            |b| b.features.edge_scale = f32::NAN,
            |b| b.features.style_scale = -1.0,
            |b| b.features.edge_scale = f32::INFINITY,
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut f: ProfileFile = bincode::deserialize(builtin_raw()).unwrap();
            edit(&mut f.body);
            let raw = bincode::serialize(&f).unwrap();
            let e = Profile::from_raw(&raw).err().unwrap_or_else(|| panic!("edit {i} loaded"));
            assert!(e.to_string().contains("features:"), "edit {i}: {e}");
        }
    }

    proptest! {
        // Each case deserialises the 5.6 MB built-in profile: fewer cases.
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn damaged_builtin_profiles(
            edits in proptest::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let mut raw = builtin_raw().to_vec();
            for (head, at, b) in edits {
                // Half the edits in the first 4 KB (metadata JSON, lengths, shapes), where a
                // change is structural; the rest anywhere (mostly weights).
                let at = if head { at % 4096.min(raw.len()) } else { at % raw.len() };
                raw[at] = b;
            }
            if let Some(c) = cut {
                raw.truncate(c % raw.len());
            }
            check(Profile::from_raw(&raw));
        }
    }
}
