//! `--prometheus-listen ADDR`: the exporter's latest text served over HTTP, for a scraper
//! without node_exporter. A minimal responder on one thread, no async runtime: `GET
//! /metrics` answers the text format, or OpenMetrics when the `Accept` header asks for
//! `application/openmetrics-text`; `/` says where the metrics are; anything else is 404 (405
//! for another method). Each connection is read for at most 8 KiB and 2 seconds, answered,
//! and closed: a slow or hostile client cannot hold memwatch's memory or its sampling (the
//! sampler never waits for the listener; they share the latest text under a lock).
//!
//! Anyone who can reach ADDR reads what memwatch watches (process names and sizes): bind
//! to 127.0.0.1 unless the network is yours to publish to.

use crate::report::prometheus::Shared;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The most of a request read.
const REQUEST_MAX: usize = 8 * 1024;
/// How long a connection may take to send its request, or to take the answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    Metrics { openmetrics: bool },
    Index,
    NotFound,
    BadMethod,
    Bad,
}

/// Binds `addr` now (so a port in use fails the run before it starts) and serves from a
/// thread. Returns the address bound (with the port the system chose for port 0).
pub fn start(addr: SocketAddr, shared: Shared) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("memwatch-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &shared);
            }
        })?;
    Ok(bound)
}

fn answer(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REQUEST_MAX {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let (status, kind, body): (&str, &str, Vec<u8>) = match parse_request(&head) {
        Asked::Metrics { openmetrics } => {
            let snapshot = shared.lock().map_err(|_| io::Error::other("poisoned"))?;
            if openmetrics {
                (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    snapshot.openmetrics.clone(),
                )
            } else {
                (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    snapshot.text.clone(),
                )
            }
        }
        Asked::Index => (
            "200 OK",
            "text/plain; charset=utf-8",
            b"memwatch: the metrics are at /metrics\n".to_vec(),
        ),
        Asked::NotFound => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        Asked::BadMethod => (
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n".to_vec(),
        ),
        Asked::Bad => ("400 Bad Request", "text/plain", b"bad request\n".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Reads the request line and the `Accept` header.
pub fn parse_request(head: &[u8]) -> Asked {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let Some(request) = lines.next() else {
        return Asked::Bad;
    };
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Asked::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Asked::Bad;
    }
    if method != "GET" {
        return Asked::BadMethod;
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" => {
            let openmetrics = lines
                .take_while(|l| !l.is_empty())
                .filter_map(|l| l.split_once(':'))
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
                .any(|(_, v)| v.contains("application/openmetrics-text"));
            Asked::Metrics { openmetrics }
        }
        "/" => Asked::Index,
        _ => Asked::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::prometheus::Snapshot;
    use std::sync::{Arc, Mutex};

    #[test]
    fn requests() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics { openmetrics: false }
        );
        // what Prometheus 2.42 sends
        let prom = b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,\
                     application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n";
        assert_eq!(parse_request(prom), Asked::Metrics { openmetrics: true });
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Asked::Metrics { openmetrics: false }
        );
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Asked::Index);
        assert_eq!(
            parse_request(b"GET /etc/passwd HTTP/1.1\r\n\r\n"),
            Asked::NotFound
        );
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Asked::BadMethod
        );
        assert_eq!(parse_request(b"garbage"), Asked::Bad);
        assert_eq!(parse_request(b""), Asked::Bad);
    }

    #[test]
    fn serves_the_latest_text_and_survives_a_silent_client() {
        let shared: Shared = Arc::new(Mutex::new(Snapshot {
            text: b"memwatch_rss_bytes{pid=\"1\",name=\"x\"} 5\n".to_vec(),
            openmetrics: b"# EOF\n".to_vec(),
        }));
        let addr = start("127.0.0.1:0".parse().expect("addr"), shared.clone()).expect("bind");
        // a client that connects and says nothing is dropped after the timeout
        let _silent = TcpStream::connect(addr).expect("connect");
        let get = |accept: &str| {
            let mut s = TcpStream::connect(addr).expect("connect");
            write!(s, "GET /metrics HTTP/1.1\r\nAccept: {accept}\r\n\r\n").expect("send");
            let mut reply = String::new();
            s.read_to_string(&mut reply).expect("read");
            reply
        };
        let reply = get("text/plain");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("text/plain; version=0.0.4"), "{reply}");
        assert!(reply.ends_with("name=\"x\"} 5\n"), "{reply}");
        shared.lock().expect("lock").text = b"changed 1\n".to_vec();
        assert!(get("*/*").ends_with("changed 1\n"));
        let om = get("application/openmetrics-text; version=1.0.0");
        assert!(
            om.contains("application/openmetrics-text") && om.ends_with("# EOF\n"),
            "{om}"
        );
        // the port is taken: a second bind fails at once
        assert!(start(addr, shared).is_err());
    }
}
