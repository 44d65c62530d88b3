//! The broker's log output under attack: every event is exactly one line,
//! and warnings a client can repeat at will are rate-limited.
//!
//! [`OneLine`] wraps the log writer: control characters inside an event
//! (a newline in a client id, a topic name, an error string) are escaped, so
//! no client can split a line or write a blank one. [`WarnLimiter`] lets the
//! first warning of a kind from a peer through and then counts the repeats,
//! reporting them on one summary line per interval. Never touches sockets.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A writer that makes each write (tracing writes one whole event at a time)
/// a single line: interior newlines and other control characters become
/// escapes (`\n`, `\r`, `\u{1b}`), the final newline stays. Tabs are kept,
/// and so is ESC when `keep_ansi` (the formatter's own colours).
pub struct OneLine<W> {
    inner: W,
    keep_ansi: bool,
}

impl<W: Write> OneLine<W> {
    pub fn new(inner: W, keep_ansi: bool) -> OneLine<W> {
        OneLine { inner, keep_ansi }
    }
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        let keep = |b: u8| b == b'\t' || (self.keep_ansi && b == 0x1b);
        if body.iter().all(|&b| !b.is_ascii_control() || keep(b)) {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                b if b.is_ascii_control() && !keep(b) => {
                    let _ = write!(line, "\\u{{{b:x}}}");
                }
                b => line.push(b),
            }
        }
        line.extend_from_slice(end);
        self.inner.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Client-supplied text for a log field: control characters escaped, as
/// `str::escape_debug` does, without the surrounding quotes.
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// How often repeats of a warning are summarised.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Peers tracked at once; past this, new peers share one entry.
const MAX_KEYS: usize = 4096;

/// Rate limit for warnings keyed by peer address and reason.
pub struct WarnLimiter {
    seen: Mutex<HashMap<(IpAddr, &'static str), Seen>>,
}

struct Seen {
    /// When the current interval started (the last line logged for the key).
    since: Instant,
    /// Repeats not logged since then.
    suppressed: u64,
}

impl WarnLimiter {
    pub fn new() -> WarnLimiter {
        WarnLimiter {
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log this warning now: the first of its kind from `peer`
    /// in an interval is logged, the others are counted for [`Self::summarise`].
    pub fn admit(&self, peer: IpAddr, reason: &'static str) -> bool {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let key = if seen.len() >= MAX_KEYS && !seen.contains_key(&(peer, reason)) {
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), reason)
        } else {
            (peer, reason)
        };
        match seen.get_mut(&key) {
            Some(s) if now.duration_since(s.since) < SUMMARY_INTERVAL || s.suppressed > 0 => {
                s.suppressed += 1;
                false
            }
            Some(s) => {
                s.since = now;
                true
            }
            None => {
                seen.insert(
                    key,
                    Seen {
                        since: now,
                        suppressed: 0,
                    },
                );
                true
            }
        }
    }

    /// Logs one line per peer and reason with repeats suppressed since its
    /// last line, and forgets peers quiet for a whole interval. Called every
    /// [`SUMMARY_INTERVAL`] and at shutdown.
    pub fn summarise(&self) {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        seen.retain(|(peer, reason), s| {
            if s.suppressed > 0 {
                tracing::warn!(
                    %peer,
                    reason = *reason,
                    suppressed = s.suppressed,
                    "repeated warnings suppressed"
                );
                s.suppressed = 0;
                s.since = now;
                true
            } else {
                now.duration_since(s.since) < SUMMARY_INTERVAL
            }
        });
    }
}

impl Default for WarnLimiter {
    fn default() -> Self {
        WarnLimiter::new()
    }
}

/// The broker's limiter for warnings caused by clients.
pub fn client_warnings() -> &'static WarnLimiter {
    static LIMITER: LazyLock<WarnLimiter> = LazyLock::new(WarnLimiter::new);
    &LIMITER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_line(input: &[u8], keep_ansi: bool) -> String {
        let mut out = OneLine::new(Vec::new(), keep_ansi);
        out.write_all(input).unwrap();
        String::from_utf8(out.inner).unwrap()
    }

    #[test]
    fn interior_newlines_and_controls_are_escaped_and_the_last_newline_kept() {
        assert_eq!(one_line(b"plain line\n", false), "plain line\n");
        assert_eq!(
            one_line(b"client_id=a\n\nb\rc\x00d\te\n", false),
            "client_id=a\\n\\nb\\rc\\u{0}d\te\n"
        );
        assert_eq!(
            one_line(b"\x1b[2mdim\x1b[0m\n", true),
            "\x1b[2mdim\x1b[0m\n"
        );
        assert_eq!(one_line(b"\x1b[2m\n", false), "\\u{1b}[2m\n");
    }

    #[test]
    fn escaped_client_text_has_no_control_characters() {
        assert_eq!(
            Escaped("topic\nname\u{1b}\t").to_string(),
            "topic\\nname\\u{1b}\\t"
        );
        assert_eq!(Escaped("ordinary-id.1").to_string(), "ordinary-id.1");
    }

    #[test]
    fn first_warning_is_admitted_and_repeats_are_counted_per_peer_and_reason() {
        let limiter = WarnLimiter::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.admit(a, "bad frame"));
        assert!(!limiter.admit(a, "bad frame"));
        assert!(!limiter.admit(a, "bad frame"));
        assert!(limiter.admit(a, "bad request"));
        assert!(limiter.admit(b, "bad frame"));
        let counts = |l: &WarnLimiter| {
            let seen = l.seen.lock().unwrap();
            let mut v: Vec<(String, &str, u64)> = seen
                .iter()
                .map(|((p, r), s)| (p.to_string(), *r, s.suppressed))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            counts(&limiter),
            vec![
                ("10.0.0.1".into(), "bad frame", 2),
                ("10.0.0.1".into(), "bad request", 0),
                ("10.0.0.2".into(), "bad frame", 0),
            ]
        );
        limiter.summarise();
        // Counted ones were reported; the next repeat starts a new count
        // rather than a new full line.
        assert_eq!(counts(&limiter)[0], ("10.0.0.1".into(), "bad frame", 0));
        assert!(!limiter.admit(a, "bad frame"));
    }
}
