//! Which TCP ports a process listens on (its socket inodes matched against the LISTEN
//! entries of /proc/PID/net/tcp and tcp6, read in the process's own network namespace),
//! and a tiny HTTP/1.1 GET for the inspector's `/json/list`.

use super::{Result, RuntimeError};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A listening TCP socket of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    /// The socket's inode: which process holds it, and roughly when it was made.
    pub inode: u64,
}

/// The LISTEN entries of a /proc/net/tcp or tcp6 text (pure). Malformed lines are skipped.
pub fn parse_listeners(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                return None;
            }
            let addr = parse_addr(f[1])?;
            let inode = f[9].parse().ok()?;
            Some(Listener { addr, inode })
        })
        .collect()
}

/// `0100007F:AF7B` (IPv4) or 32 hex digits and a port (IPv6). The kernel prints each 32-bit
/// word of the address as a native-endian integer; the port is plain hex.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The inodes of the sockets PID holds open (`socket:[N]` links in /proc/PID/fd).
pub fn socket_inodes(proc_root: &Path, pid: i32) -> Result<HashSet<u64>> {
    let dir = proc_root.join(pid.to_string()).join("fd");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| RuntimeError::io(format!("cannot list {}", dir.display()), e))?;
    Ok(entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect())
}

/// Every LISTEN socket in PID's network namespace (any process's), IPv4 then IPv6.
pub fn namespace_listeners(proc_root: &Path, pid: i32) -> Vec<Listener> {
    let dir = proc_root.join(pid.to_string()).join("net");
    ["tcp", "tcp6"]
        .iter()
        .flat_map(|f| parse_listeners(&std::fs::read_to_string(dir.join(f)).unwrap_or_default()))
        .collect()
}

/// The TCP sockets PID itself listens on, oldest (lowest inode) first.
pub fn listeners(proc_root: &Path, pid: i32) -> Result<Vec<Listener>> {
    let mine = socket_inodes(proc_root, pid)?;
    let mut found: Vec<Listener> = namespace_listeners(proc_root, pid)
        .into_iter()
        .filter(|l| mine.contains(&l.inode))
        .collect();
    found.sort_by_key(|l| l.inode);
    Ok(found)
}

/// `GET path` on `addr` with one overall deadline; returns the body of a 200 answer.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String> {
    let what = || format!("GET http://{addr}{path}");
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| RuntimeError::io(format!("{}: cannot connect", what()), e))?;
    let io = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            RuntimeError::Timeout {
                what: what(),
                after: timeout,
            }
        } else {
            RuntimeError::io(what(), e)
        }
    };
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io(std::io::ErrorKind::TimedOut.into()));
        }
        stream.set_read_timeout(Some(left)).map_err(io)?;
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > 1 << 20 {
            break;
        }
        // An answer with Content-Length is complete without waiting for the close.
        if let Some(body) = complete_body(&raw) {
            return Ok(body);
        }
    }
    complete_body(&raw)
        .or_else(|| body_until_close(&raw))
        .ok_or_else(|| RuntimeError::Protocol {
            what: what(),
            message: format!(
                "not an HTTP 200 answer: '{}'",
                String::from_utf8_lossy(&raw[..raw.len().min(80)])
            ),
        })
}

/// The body of a 200 answer whose Content-Length bytes have all arrived.
fn complete_body(raw: &[u8]) -> Option<String> {
    let (head, body) = split_head(raw)?;
    let len: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    (body.len() >= len).then(|| String::from_utf8_lossy(&body[..len]).into_owned())
}

fn body_until_close(raw: &[u8]) -> Option<String> {
    let (_, body) = split_head(raw)?;
    Some(String::from_utf8_lossy(body).into_owned())
}

fn split_head(raw: &[u8]) -> Option<(String, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.lines().next()?;
    let mut parts = status.split_whitespace();
    (parts.next()?.starts_with("HTTP/1.") && parts.next()? == "200").then_some(())?;
    Some((head, &raw[end + 4..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Recorded on this machine: a node --inspect=127.0.0.1:0 (port 0xAF7B = 44923) and sshd-like
    // listener on 0.0.0.0:2024, and a Python listener on [::1]:45833.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:AF7B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15817 1 000000001fbf819a 100 0 0 10 0
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1129 1 0000000079d09de8 100 0 0 10 0
   2: 0100007F:AF7B 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 15999 1 0000000000000000 20 4 30 10 -1
   3: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:B309 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 16762 1 0000000061f9f578 100 0 0 10 0
";

    #[test]
    fn listen_entries() {
        let l = parse_listeners(TCP);
        assert_eq!(
            l,
            vec![
                Listener {
                    addr: "127.0.0.1:44923".parse().unwrap(),
                    inode: 15817
                },
                Listener {
                    addr: "0.0.0.0:2024".parse().unwrap(),
                    inode: 1129
                },
            ]
        );
        let l6 = parse_listeners(TCP6);
        assert_eq!(l6.len(), 1);
        assert_eq!(l6[0].addr, "[::1]:45833".parse().unwrap());
        assert_eq!(l6[0].inode, 16762);
        assert!(parse_listeners("").is_empty());
    }

    #[test]
    fn http_bodies() {
        let ok =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";
        assert_eq!(complete_body(ok).as_deref(), Some("[]"));
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[]";
        assert_eq!(complete_body(partial), None);
        assert_eq!(body_until_close(partial).as_deref(), Some("[]"));
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(complete_body(not_found), None);
        assert_eq!(body_until_close(b"ok\n"), None);
    }

    #[test]
    fn own_listeners_of_this_process() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let pid = std::process::id() as i32;
        let mine = listeners(Path::new("/proc"), pid).unwrap();
        assert!(mine.iter().any(|l| l.addr.port() == port), "{mine:?}");
    }
}
