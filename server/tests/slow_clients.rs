//! Issue 14 item 3: half-sent requests (no key needed) used to stay open for ever, until the
//! process ran out of file descriptors and `/healthz` timed out. Against the real binary with a
//! 1 s header-read timeout and a 64-connection cap: a bounded number of slow sockets is closed by
//! the server, and `/healthz` answers while they are open and after. Item 12 too: hyper's own
//! replies to unparseable request heads are JSON.

mod common;

use common::proc;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `GET /healthz` on a fresh connection; `Some(status line)` if answered within `within`.
fn healthz(addr: &str, within: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(within)).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.lines().next().map(String::from)
}

/// `/healthz` answered 200 within `deadline` (retrying: a connection may land on the cap).
fn healthy_within(addr: &str, deadline: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < deadline {
        if healthz(addr, Duration::from_secs(1)).is_some_and(|l| l.contains(" 200 ")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Reads on `s` until EOF or error: the server closed it. `false` if it is still open.
fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error reply (408) before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true, // reset
        }
    }
}

#[test]
fn slow_sockets_are_closed_and_do_not_starve_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let server = proc::start(
        dir.path(),
        &[("PEDIGREE_HEADER_READ_TIMEOUT_SECS", "1"), ("PEDIGREE_MAX_CONNECTIONS", "64")],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    assert!(healthy_within(&addr, Duration::from_secs(5)));

    // Fewer slow sockets than the cap: /healthz answers while they are all open.
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(healthz(&addr, Duration::from_secs(2)).is_some_and(|l| l.contains(" 200 ")));
    // The server closes every one of them (header-read timeout), and an idle keep-alive too.
    let mut idle = TcpStream::connect(&addr).unwrap();
    for s in slow.iter_mut() {
        assert!(closed_by_server(s, Duration::from_secs(5)), "a slow socket stayed open");
    }
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)), "an idle connection stayed open");

    // More slow sockets than the cap: the excess is closed at once, the rest within the
    // timeout, and /healthz is answered again within a few seconds.
    let mut slow: Vec<TcpStream> = (0..150)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&addr).ok()?;
            let _ = s.write_all(b"POST /v1/score HTTP/1.1\r\nHost: t\r\n");
            Some(s)
        })
        .collect();
    assert!(healthy_within(&addr, Duration::from_secs(5)), "/healthz starved by slow sockets");
    for s in slow.iter_mut() {
        assert!(closed_by_server(s, Duration::from_secs(5)), "a slow socket stayed open");
    }
    assert!(healthy_within(&addr, Duration::from_secs(2)));
}

/// Everything the server sends on a fresh connection after `request`, up to its close.
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request); // the server may answer and close before reading it all
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Issue 14 item 12: the replies hyper writes itself for request heads it cannot parse (400,
/// 414, 431) used to have an empty body; they are JSON like every other error.
#[test]
fn unparseable_request_heads_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = proc::start(dir.path(), &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), "400", "bad_request"),
        (b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(), "400", "bad_request"),
        (
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            "414",
            "uri_too_long",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\n{many_headers}\r\n").into_bytes(),
            "431",
            "header_fields_too_large",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n", "v".repeat(500_000))
                .into_bytes(),
            "431",
            "header_fields_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let reply = exchange(&addr, &request);
        let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{code}: {reply:?}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("\r\ncontent-type: application/json"), "{code}: {head}");
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).expect(&reply);
        assert_eq!(v["error"]["code"], code, "{reply}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
    // A good request before a bad one on the same connection: answered, then the JSON 400.
    let reply = exchange(&addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nNOT HTTP\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    let second = &reply[reply.find("HTTP/1.1 400").expect(&reply)..];
    assert!(second.ends_with("\"}}"), "{second}");
    assert!(healthy_within(&addr, Duration::from_secs(2)));
}
