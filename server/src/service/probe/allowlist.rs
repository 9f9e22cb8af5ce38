//! Which endpoints a campaign may send requests to.
//!
//! Rules (checked when a campaign is created and again, with a fresh DNS look-up, when it starts
//! or resumes):
//! 1. The target's `host:port` (port from the URL, else 80/443 by scheme; host lower-cased, IPv6
//!    in brackets) must be an entry of the admin-managed allowlist (`/v1/allowlist`; the CLI adds
//!    its `--allow` entries for that run only).
//! 2. The host is resolved. If any address is loopback, private, link-local, unique-local,
//!    CGNAT, unspecified, multicast or broadcast, the target is refused unless that address's own
//!    `ip:port` is also listed: allowing `api.example.com:443` does not allow a DNS answer that
//!    points it at `10.0.0.5` (DNS rebinding into the internal network), while tests and local
//!    replays list `127.0.0.1:PORT` explicitly.
//! 3. Requests go to the checked addresses only (the client pins them), and redirects are not
//!    followed, so a target cannot bounce the prober elsewhere.
//!
//! Only `http` and `https` URLs without credentials are accepted.

use crate::service::{ServiceError, ServiceResult};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// A checked target: where to send, and the addresses the host resolved to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    pub host: String,
    pub port: u16,
    /// Resolved addresses (pinned in the HTTP client).
    pub addrs: Vec<SocketAddr>,
}

/// Canonical `host:port` of a URL (lower-case host, IPv6 in brackets).
pub fn host_port(url: &reqwest::Url) -> ServiceResult<(String, u16)> {
    // `host_str` keeps IPv6 literals in brackets.
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ServiceError::Invalid(format!("`{url}` has no host")))?
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ServiceError::Invalid(format!("`{url}` has no port")))?;
    Ok((host, port))
}

/// Normalise an allowlist entry: `host:port`, `[v6]:port`; a missing port is an error (the
/// allowlist is about exact services, not hosts).
pub fn normalize_entry(entry: &str) -> ServiceResult<String> {
    let e = entry.trim();
    let url = reqwest::Url::parse(&format!("http://{e}/"))
        .map_err(|_| ServiceError::Invalid(format!("`{e}` is not host:port")))?;
    if url.port().is_none() && !e.ends_with(":80") {
        return Err(ServiceError::Invalid(format!("`{e}` needs a port: host:port")));
    }
    let (host, _) = host_port(&url)?;
    let port = url.port().unwrap_or(80);
    if url.path() != "/" || !url.username().is_empty() {
        return Err(ServiceError::Invalid(format!("`{e}` is not host:port")));
    }
    Ok(format!("{host}:{port}"))
}

/// Addresses that must not be reached unless listed literally.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        }
    }
}

fn sock_entry(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// Check `url` against `allowed` (normalised entries) and resolve it. The error is a message for
/// the analyst saying what to ask an admin for.
pub async fn check(url: &str, allowed: &HashSet<String>) -> ServiceResult<Target> {
    let url = reqwest::Url::parse(url.trim())
        .map_err(|e| ServiceError::TargetRefused(format!("`{url}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ServiceError::TargetRefused(format!(
            "`{url}`: only http and https endpoints can be probed"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ServiceError::TargetRefused(format!(
            "`{url}`: credentials in the URL are not accepted; use a named secret"
        )));
    }
    let (host, port) = host_port(&url).map_err(|e| ServiceError::TargetRefused(e.to_string()))?;
    let entry = format!("{host}:{port}");
    if !allowed.contains(&entry) {
        return Err(ServiceError::TargetRefused(format!("target `{entry}` is not on the allowlist; an admin must add it (POST /v1/allowlist), or pass --allow {entry} to the CLI")));
    }
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|e| ServiceError::TargetRefused(format!("cannot resolve `{host}`: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(ServiceError::TargetRefused(format!("`{host}` resolves to no address")));
    }
    for a in &addrs {
        if is_internal(a.ip()) && !allowed.contains(&sock_entry(a)) {
            return Err(ServiceError::TargetRefused(format!(
                "target `{entry}` resolves to the internal address {}, which is refused unless `{}` itself is on the allowlist",
                a.ip(),
                sock_entry(a)
            )));
        }
    }
    Ok(Target { url, host, port, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> HashSet<String> {
        v.iter().map(|s| normalize_entry(s).unwrap()).collect()
    }

    #[test]
    fn entries_are_normalised() {
        assert_eq!(normalize_entry("API.Example.com:443").unwrap(), "api.example.com:443");
        assert_eq!(normalize_entry("[::1]:8080").unwrap(), "[::1]:8080");
        assert_eq!(normalize_entry("127.0.0.1:9000").unwrap(), "127.0.0.1:9000");
        assert!(normalize_entry("example.com").is_err());
        assert!(normalize_entry("http://x:1/").is_err());
        assert!(normalize_entry("a:1/path").is_err());
    }

    #[test]
    fn internal_ranges() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }

    #[tokio::test]
    async fn only_listed_targets_and_listed_internal_addresses_pass() {
        let e =
            check("http://127.0.0.1:9/v1", &set(&["127.0.0.2:9"])).await.unwrap_err().to_string();
        assert!(e.contains("not on the allowlist"), "{e}");
        let t = check("http://127.0.0.1:9/v1", &set(&["127.0.0.1:9"])).await.unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9));
        // A listed name that resolves to loopback is still refused unless the address is listed.
        let e =
            check("http://localhost:9/v1", &set(&["localhost:9"])).await.unwrap_err().to_string();
        assert!(e.contains("internal address"), "{e}");
        assert!(check("http://localhost:9/v1", &set(&["localhost:9", "127.0.0.1:9", "[::1]:9"]))
            .await
            .is_ok());
        assert!(check("ftp://127.0.0.1:9/", &set(&["127.0.0.1:9"]))
            .await
            .unwrap_err()
            .to_string()
            .contains("http"));
        assert!(check("http://u:p@127.0.0.1:9/", &set(&["127.0.0.1:9"]))
            .await
            .unwrap_err()
            .to_string()
            .contains("credentials"));
        // Default ports count: https without a port is :443.
        assert!(check("https://127.0.0.1/v1", &set(&["127.0.0.1:80"]))
            .await
            .unwrap_err()
            .to_string()
            .contains("127.0.0.1:443"));
    }
}
