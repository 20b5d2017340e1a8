//! The hostile-input catalogue, 5 and 6: the protocol (HTTP/1.0, pipelining, slow and
//! idle clients) and handler isolation.

use super::*;

// --- 5. The protocol --------------------------------------------------------------------

#[test]
fn http_1_0() {
    let sample = hub_sample();
    let mut request = format!(
        "POST /webhooks/hub HTTP/1.0\r\nX-Webhook-Secret: s3cret\r\nContent-Length: {}\r\n\r\n",
        sample.len()
    )
    .into_bytes();
    request.extend_from_slice(&sample);
    let answers = exchange(&request, Duration::from_secs(10));
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].status, 200);
    assert!(answers[0].head.starts_with("HTTP/1.0 200"), "{answers:?}");
    still_serves();
}

#[test]
fn pipelined_requests() {
    let mut request = Vec::new();
    for i in 0..5 {
        let path = if i == 2 {
            "/webhooks/nope"
        } else {
            "/webhooks/hub"
        };
        let mut one = post_raw(path, &["X-Webhook-Secret: s3cret"], &hub_sample());
        if i < 4 {
            // Keep the connection open until the last one.
            let text =
                String::from_utf8(one.clone())
                    .unwrap()
                    .replacen("Connection: close\r\n", "", 1);
            one = text.into_bytes();
        }
        request.extend_from_slice(&one);
    }
    let answers = exchange(&request, Duration::from_secs(10));
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 404, 200, 200]);
    still_serves();
}

#[test]
fn expect_100_continue() {
    let sample = hub_sample();
    let mut stream = TcpStream::connect(server()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /webhooks/hub HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Webhook-Secret: s3cret\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        sample.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"));
    stream.write_all(&sample).unwrap();
    let answers = read_all(&mut stream);
    assert_eq!(answers[0].status, 200, "{answers:?}");
    still_serves();
}

#[test]
fn slow_headers_are_cut_off_and_others_are_served() {
    let mut slow = TcpStream::connect(server()).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let line = b"POST /webhooks/hub HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    let mut closed = false;
    for (i, byte) in line.iter().chain(b"a".repeat(100).iter()).enumerate() {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        // Others are served meanwhile.
        if i % 10 == 5 {
            still_serves();
        }
        let mut buf = [0u8; 1024];
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"));
                closed = true;
                break;
            }
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    assert!(
        closed,
        "the server kept a slow-headers client past its request timeout"
    );
    still_serves();
}

#[test]
fn a_client_that_stops_mid_body_is_cut_off_and_others_are_served() {
    let sample = hub_sample();
    let mut stalled = TcpStream::connect(server()).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stalled,
        "POST /webhooks/hub HTTP/1.1\r\nHost: t\r\nX-Webhook-Secret: s3cret\r\nContent-Length: {}\r\n\r\n",
        sample.len()
    )
    .unwrap();
    stalled.write_all(&sample[..100]).unwrap();
    still_serves();
    let answers = read_all(&mut stalled);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].status, 408);
    assert_eq!(answers[0].header("connection"), Some("close"));
    still_serves();
}

#[test]
fn two_thousand_idle_connections() {
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(server()).unwrap())
        .collect();
    still_serves();
    drop(idle);
    still_serves();
}

// --- 6. Handler isolation ----------------------------------------------------------------

#[test]
fn a_panicking_an_erring_and_a_hanging_handler_leave_the_others_alone() {
    refused(&deliver("/webhooks/panics", &hub_sample()), 500);
    refused(&deliver("/webhooks/errs", &hub_sample()), 500);
    assert_eq!(
        deliver("/webhooks/errs", &hub_sample()).json()["error"],
        "no luck"
    );
    let started = Instant::now();
    let answer = deliver("/webhooks/hangs", &hub_sample());
    assert_eq!(answer.status, 504, "{answer:?}");
    assert_eq!(
        answer.json()["error"],
        "the webhook handler did not answer within 1s"
    );
    assert!(started.elapsed() < Duration::from_secs(9));
    // Several at once: the workers are freed each time.
    let hanging: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| deliver("/webhooks/hangs", &hub_sample()).status))
        .collect();
    still_serves();
    for handle in hanging {
        assert_eq!(handle.join().unwrap(), 504);
    }
    still_serves();
}
