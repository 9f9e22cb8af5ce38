//! `Retry-After` (RFC 9110 §10.2.3) from an untrusted endpoint: delta-seconds or an HTTP date.
//!
//! Every value is hostile until bounded: `1e300`, `inf`, `NaN`, negative numbers, 30-digit
//! integers or a date in year 9999 must not reach `Duration::from_secs_f64` (which panics on
//! values it cannot represent). A parsed wait is capped at [`MAX_RETRY_AFTER`]; anything longer
//! is reported as that cap, so the caller's own, smaller limit (`retry_after_max_ms`) refuses it
//! with a clear error instead of sleeping for ever.

use std::time::{Duration, SystemTime};

/// The longest wait this parser ever returns (one day). Callers compare against their own limit.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait a `Retry-After` value asks for, measured from `now`; `None` when it is neither a
/// non-negative number of seconds nor an HTTP date. A date in the past means "now" (zero).
/// Fractional seconds are accepted (some endpoints send them, against the RFC).
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || v.len() > 64 {
        return None;
    }
    if v.bytes().next().is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')) {
        let s: f64 = v.parse().ok()?;
        if !s.is_finite() || s < 0.0 {
            return None;
        }
        if s >= MAX_RETRY_AFTER.as_secs_f64() {
            return Some(MAX_RETRY_AFTER);
        }
        return Some(Duration::from_secs_f64(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> Option<Duration> {
        parse(v, SystemTime::now())
    }

    #[test]
    fn seconds_and_dates() {
        assert_eq!(p("3"), Some(Duration::from_secs(3)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(p("1.5"), Some(Duration::from_millis(1500)));
        let now = SystemTime::now();
        let later = now + Duration::from_secs(120);
        let d = parse(&httpdate::fmt_http_date(later), now).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        let earlier = now - Duration::from_secs(120);
        assert_eq!(parse(&httpdate::fmt_http_date(earlier), now), Some(Duration::ZERO));
    }

    /// The values of issue 14: none panics, huge ones are capped, nonsense is ignored.
    #[test]
    fn hostile_values_are_capped_or_ignored() {
        for huge in ["1e300", "1e19", "99999999999999999999999999", "86400", "1e5"] {
            assert_eq!(p(huge), Some(MAX_RETRY_AFTER), "{huge}");
        }
        assert_eq!(p("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        for bad in
            ["inf", "-inf", "NaN", "nan", "-1", "-0.5", "soon", "", "1e", "0x10", "+inf", "1 2"]
        {
            assert_eq!(p(bad), None, "{bad:?}");
        }
        assert_eq!(p(&"9".repeat(100)), None, "over-long values are not parsed");
    }
}

/// Property-based fuzzing (issue 14, bar): whatever an endpoint sends as `Retry-After`, the
/// parser neither panics nor returns more than the cap, and plain seconds parse exactly.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_value_is_bounded(v in "\\PC{0,80}", offset in 0u64..(400 * 365 * 86_400)) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(offset);
            if let Some(d) = parse(&v, now) {
                prop_assert!(d <= MAX_RETRY_AFTER, "{v:?} -> {d:?}");
            }
        }

        #[test]
        fn numbers_and_dates(
            secs in 0u64..200_000,
            frac in 0u32..1000,
            exp in -400i32..400,
            ahead in 0u64..10_000_000,
        ) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let want = Duration::from_secs(secs).min(MAX_RETRY_AFTER);
            prop_assert_eq!(parse(&secs.to_string(), now), Some(want));
            let f = parse(&format!("{secs}.{frac:03}"), now).unwrap();
            prop_assert!(f <= MAX_RETRY_AFTER && f >= want.min(MAX_RETRY_AFTER));
            // Exponents: capped when finite, ignored (no wait asked for) when they overflow.
            let v = format!("{secs}e{exp}");
            let e = parse(&v, now);
            if v.parse::<f64>().unwrap().is_finite() {
                prop_assert!(e.is_some_and(|d| d <= MAX_RETRY_AFTER), "{v}: {e:?}");
            } else {
                prop_assert_eq!(e, None, "{}", v);
            }
            let at = httpdate::fmt_http_date(now + Duration::from_secs(ahead));
            let d = parse(&at, now).unwrap();
            prop_assert_eq!(d, Duration::from_secs(ahead).min(MAX_RETRY_AFTER), "{}", at);
        }
    }
}
