//! The console's HTTP front under attack and under ordinary use, over real sockets: slow
//! heads, slow bodies and trickles after an answer from 64 connections while a normal
//! `GET /login` keeps being answered; malformed heads; the per-address cap; keep-alive and
//! pipelining.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::console;
use common::http;

/// The attack's connections.
const ATTACKERS: usize = 64;
/// How long a normal request may take while the attack runs: generous, since the point is
/// that it is answered at all (the old front kept it waiting 12–14 s).
const ANSWER_BOUND: Duration = Duration::from_secs(5);

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the console");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one response (head and Content-Length body) from a kept-alive connection.
fn read_response(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some((status, head + &String::from_utf8_lossy(&body)))
}

/// One attacker: `kind` 0 trickles a head, 1 a body after a whole head, 2 a head after a
/// served request; one byte every 500 ms until told to stop. Returns the status it was
/// finally answered with, if any.
fn attack(port: u16, kind: usize, stop: Arc<AtomicBool>) -> Option<u16> {
    let mut s = connect(port);
    let trickle: &[u8] = match kind {
        0 => b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        1 => {
            let head = "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n";
            s.write_all(head.as_bytes()).ok()?;
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        }
        _ => {
            s.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .ok()?;
            let (status, _) = read_response(&mut s)?;
            assert_eq!(status, 200);
            b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        }
    };
    for byte in trickle.iter().cycle() {
        if stop.load(Ordering::Relaxed) || s.write_all(&[*byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    read_response(&mut s).map(|(status, _)| status)
}

#[test]
fn slow_heads_bodies_and_trickles_from_64_sockets_do_not_stall_the_console() {
    let broker = console::start_with(&[], "web_max_connections_per_address = 200\n");
    let port = broker.web_port();
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let stop = stop.clone();
            thread::spawn(move || attack(port, i % 3, stop))
        })
        .collect();
    // Let every attacker get its connection in and start trickling.
    thread::sleep(Duration::from_secs(2));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let answer = http::Client::new(port).get("/login");
        let took = started.elapsed();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(took < ANSWER_BOUND, "GET /login took {took:?} under attack");
        slowest = slowest.max(took);
        thread::sleep(Duration::from_millis(500));
    }
    println!("GET /login under a {ATTACKERS}-socket slow attack: slowest of 5 took {slowest:?}");
    // The head and body deadlines (10 s each) end every trickle with 408, however slowly
    // it keeps coming.
    thread::sleep(Duration::from_secs(11));
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<Option<u16>> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == Some(408)),
        "every trickle is cut off with 408: {statuses:?}"
    );
    assert!(broker
        .wait_for_log(Duration::from_secs(2), |l| l
            .contains("408 (request head not sent in time)"))
        .is_some());
    assert!(broker
        .wait_for_log(Duration::from_secs(2), |l| l
            .contains("408 (request body not sent in time)"))
        .is_some());
}

#[test]
fn malformed_heads_get_400_with_their_reason_in_the_log() {
    let broker = console::start(&[]);
    let port = broker.web_port();
    let cases: [(&[u8], &str); 9] = [
        (
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
            "more than one Content-Length",
        ),
        (
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
            "bad Content-Length",
        ),
        (
            b"GET /login HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
            "forbidden byte in a value",
        ),
        (
            b"GET /login HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            "malformed",
        ),
        (b"GET /login HTTP/1.1\r\n\r\n", "no Host header"),
        (
            b"GET /login HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "more than one Host header",
        ),
        (b"GET /login HTTP/1.1\nHost: x\n\n", "line ending"),
        (
            b"GET /login HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
            "bare LF",
        ),
        (b"GET /login HTTP/1.1 extra\r\nHost: x\r\n\r\n", "malformed"),
    ];
    for (request, reason) in cases {
        let started = Instant::now();
        let answer = http::raw(port, request);
        assert_eq!(
            answer.status,
            400,
            "{:?}: {answer:?}",
            String::from_utf8_lossy(request)
        );
        assert!(answer.body.contains(reason), "{reason}: {answer:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered at once"
        );
        assert!(
            broker
                .wait_for_log(Duration::from_secs(2), |l| l.contains("refused: 400")
                    && l.contains(reason))
                .is_some(),
            "a log line for {reason}"
        );
    }
    assert_eq!(http::Client::new(port).get("/login").status, 200);
}

#[test]
fn one_address_gets_429_beyond_its_cap_and_is_logged_once() {
    let broker = console::start_with(&[], "web_max_connections_per_address = 4\n");
    let port = broker.web_port();
    let held: Vec<TcpStream> = (0..4).map(|_| connect(port)).collect();
    for _ in 0..3 {
        let answer = http::raw(
            port,
            b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(answer.status, 429, "{answer:?}");
        assert!(answer
            .body
            .contains("too many connections from this address"));
    }
    assert!(broker
        .wait_for_log(Duration::from_secs(2), |l| l
            .contains("refusing connections from"))
        .is_some());
    // The log is read from the broker's stderr: give a second line time to show up.
    thread::sleep(Duration::from_millis(300));
    let lines = broker.log();
    let refused = lines
        .iter()
        .filter(|l| l.contains("refusing connections from 127.0.0.1"))
        .count();
    assert_eq!(refused, 1, "logged once per episode: {lines:?}");
    drop(held);
    let answer = common::wait_until(Duration::from_secs(5), || {
        let a = http::Client::new(port).get("/login");
        (a.status == 200).then_some(a)
    });
    assert!(
        answer.is_some(),
        "served again once the held connections closed"
    );
}

#[test]
fn keep_alive_serves_pipelined_requests_in_order_and_closes_when_asked() {
    let broker = console::start(&[]);
    let port = broker.web_port();
    let mut s = connect(port);
    s.write_all(
        b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n\
          HEAD /assets/style.css HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /register HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let (status, text) = read_response(&mut s).expect("an answer");
        assert!(text.contains("Connection: keep-alive"), "{text}");
        statuses.push(status);
    }
    // HEAD: a Content-Length and no body, then the next answer follows at once.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
    let (status, text) = read_response(&mut s).expect("an answer");
    statuses.push(status);
    assert_eq!(statuses, [200, 404, 200]);
    assert!(text.contains("<form"), "the register page: {text}");
    // The same connection serves a later request, then closes when asked to.
    s.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, text) = read_response(&mut s).expect("an answer");
    assert_eq!(status, 200);
    assert!(text.contains("Connection: close"), "{text}");
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "closed after the answer"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let broker = console::start(&[]);
    let mut s = connect(broker.web_port());
    s.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).map(|(status, _)| status), Some(200));
    let started = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_secs(14) && idle < Duration::from_secs(19),
        "closed after the 15 s idle time, not {idle:?}"
    );
}

#[test]
fn the_console_gets_503_beyond_its_total_cap() {
    let broker = console::start_with(&[], "web_max_connections = 3\n");
    let port = broker.web_port();
    let held: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    let answer = http::raw(
        port,
        b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("too many connections to the console"));
    assert!(broker
        .wait_for_log(Duration::from_secs(2), |l| l
            .contains("refusing connections: 3 open"))
        .is_some());
    drop(held);
    let served = common::wait_until(Duration::from_secs(5), || {
        (http::Client::new(port).get("/login").status == 200).then_some(())
    });
    assert!(
        served.is_some(),
        "served again once the held connections closed"
    );
}
