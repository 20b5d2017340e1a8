use super::*;

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Lines of every level, with plain, quoted, escaped and non-ASCII values.
fn lines() -> Vec<DeliveryLine<'static>> {
    let mut lines = Vec::new();
    for (scope, action) in [
        ("repo", "update"),
        ("-", "-"),
        ("say \"hi\"", "back\\slash"),
        ("\u{1b}[31mred", "tab\there\n"),
        ("ünïcödé", "日本"),
        ("", " "),
    ] {
        for (status, latency_us) in [(200, 12), (204, 0), (403, u64::MAX), (422, 7), (500, 1)] {
            lines.push(DeliveryLine {
                path: "/webhooks/a",
                status,
                latency_us,
                scope,
                action,
            });
        }
    }
    lines
}

/// Each line without its timestamp, after checking the timestamp is RFC 3339 in
/// microseconds.
fn without_time(log: &[u8]) -> Vec<String> {
    String::from_utf8(log.to_vec())
        .unwrap()
        .lines()
        .map(|line| {
            let (time, rest) = line.split_once(' ').unwrap();
            assert_eq!(time.len(), "2026-11-28T03:45:55.123456Z".len(), "{line}");
            humantime::parse_rfc3339(time).unwrap();
            rest.to_owned()
        })
        .collect()
}

/// What `log` writes through `tracing-subscriber`'s full format (colours off), each line
/// without its timestamp. (Without hookserver's subscriber, the direct writers log `tracing`
/// events.)
fn full_format(log: impl FnOnce()) -> Vec<String> {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, log);
    let lines = without_time(&captured.0.lock().unwrap());
    lines
}

#[test]
fn the_direct_line_is_what_the_full_format_writes() {
    let full = full_format(|| {
        for line in lines() {
            delivery(&line);
        }
    });
    let mut direct = Vec::new();
    for line in lines() {
        format_delivery(&mut direct, SystemTime::now(), &line);
    }
    let direct = without_time(&direct);
    assert_eq!(full.len(), 30);
    assert_eq!(direct, full);
    assert_eq!(
        direct[0],
        r#" INFO hookserver::delivery: delivery path=/webhooks/a status=200 latency_us=12 scope="repo" action="update""#
    );
}

#[test]
fn the_direct_attempt_line_is_what_the_full_format_writes() {
    let attempts = [
        (1, "/webhooks/a", 1),
        (u64::MAX, "/webhooks/b-c_d", u32::MAX),
    ];
    let full = full_format(|| {
        for (id, endpoint, attempt) in attempts {
            attempt_done(id, endpoint, attempt);
        }
    });
    let mut direct = Vec::new();
    for (id, endpoint, attempt) in attempts {
        format_attempt_done(&mut direct, SystemTime::now(), id, endpoint, attempt);
    }
    assert_eq!(without_time(&direct), full);
    assert_eq!(
        full[0],
        " INFO hookserver::inbox: delivery done id=1 endpoint=/webhooks/a attempt=1"
    );
}

#[test]
fn timestamps_are_humantime_s_to_the_microsecond() {
    let base = humantime::parse_rfc3339("2026-11-28T03:45:55Z").unwrap();
    for offset_us in [
        0,
        1,
        999_999,
        1_000_000,
        1_000_001,
        59_123_456,
        86_400_000_007,
    ] {
        let now = base + std::time::Duration::from_micros(offset_us);
        let mut out = Vec::new();
        timestamp(&mut out, now);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            humantime::format_rfc3339_micros(now).to_string()
        );
    }
    let before_1970 = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
    let mut out = Vec::new();
    timestamp(&mut out, before_1970);
    assert_eq!(out, b"<unknown time>");
}

#[test]
fn lines_leave_in_time_order_and_later_ones_wait() {
    let a = b"2026-11-28T03:45:55.000001Z  INFO a1\n2026-11-28T03:45:55.000004Z  INFO a2\n  continued\n".to_vec();
    let b =
        b"2026-11-28T03:45:55.000002Z  INFO b1\n2026-11-28T03:45:55.000009Z  INFO b2\n".to_vec();
    let colour = b"\x1b[2m2026-11-28T03:45:55.000003Z\x1b[0m  INFO c1\n".to_vec();
    let (ready, later) = ordered(&[a.clone(), b.clone(), colour], None);
    let text = String::from_utf8(ready).unwrap();
    let order: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(order, ["a1", "b1", "c1", "a2", "continued", "b2"]);
    assert!(later.is_empty());
    let (ready, later) = ordered(&[a, b], Some(b"2026-11-28T03:45:55.000004Z"));
    assert!(String::from_utf8(ready)
        .unwrap()
        .ends_with("a2\n  continued\n"));
    assert_eq!(later, b"2026-11-28T03:45:55.000009Z  INFO b2\n");
}

#[test]
fn one_thread_s_lines_before_the_cut_leave_uncopied_and_later_ones_still_wait() {
    let one = b"2026-11-28T03:45:55.000001Z  INFO a1\n2026-11-28T03:45:55.000004Z  INFO a2\n  continued\n".to_vec();
    let at = one.as_ptr();
    let cut: &[u8] = b"2026-11-28T03:45:55.000004Z";
    let (ready, later) = take_ordered(&mut [Vec::new(), one.clone(), Vec::new()], Some(cut));
    assert_eq!(
        (ready.as_slice(), later.as_slice()),
        (one.as_slice(), &b""[..])
    );
    let (ready, _) = take_ordered(&mut [Vec::new(), one.clone()], None);
    assert_eq!(ready, one);
    let (ready, _) = take_ordered(&mut [one], Some(cut));
    assert_eq!(ready.as_ptr(), at, "the buffer itself, not a copy");
    // A line after the cut: it waits, as with several threads.
    let mixed =
        b"2026-11-28T03:45:55.000001Z  INFO a1\n2026-11-28T03:45:55.000009Z  INFO a2\n".to_vec();
    let (ready, later) = take_ordered(&mut [mixed], Some(cut));
    assert_eq!(ready, b"2026-11-28T03:45:55.000001Z  INFO a1\n");
    assert_eq!(later, b"2026-11-28T03:45:55.000009Z  INFO a2\n");
    // Two threads: merged.
    let a = b"2026-11-28T03:45:55.000002Z  INFO a\n".to_vec();
    let b = b"2026-11-28T03:45:55.000001Z  INFO b\n".to_vec();
    let (ready, _) = take_ordered(&mut [a, b], None);
    assert!(ready.starts_with(b"2026-11-28T03:45:55.000001Z  INFO b\n"));
}

#[test]
fn emptied_buffers_are_kept_one_per_thread_and_never_a_burst_s_large_one() {
    let mut spare = Vec::new();
    let used = vec![
        b"line\n".to_vec(),
        Vec::with_capacity(KEEP_AT + 1),
        Vec::new(),
        Vec::with_capacity(64),
        Vec::with_capacity(64),
    ];
    recycle(&mut spare, used, 2);
    assert_eq!(spare.len(), 2);
    assert!(spare
        .iter()
        .all(|b| b.is_empty() && b.capacity() <= KEEP_AT));
    // Already one per thread: nothing more is kept.
    recycle(&mut spare, vec![Vec::with_capacity(64)], 2);
    assert_eq!(spare.len(), 2);
}

#[test]
fn the_last_stamped_line_is_found_past_continuations() {
    let chunk = b"2026-11-28T03:45:55.000001Z  INFO a\n\x1b[2m2026-11-28T03:45:55.000002Z\x1b[0m b\n  more\n  more\n";
    assert_eq!(last_time(chunk), Some(&b"2026-11-28T03:45:55.000002Z"[..]));
    assert_eq!(last_time(b"  only a continuation\n"), None);
    assert_eq!(last_time(b""), None);
}

#[test]
fn a_filtered_out_line_is_not_written() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for line in lines() {
            delivery(&line);
        }
    });
    let written = without_time(&captured.0.lock().unwrap());
    assert_eq!(written.len(), 18, "only WARN and ERROR: {written:?}");
    assert!(written.iter().all(|line| !line.starts_with(" INFO")));
}
