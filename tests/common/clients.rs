//! Real MQTT clients (rumqttc v5 and v4, sync API) driven by a background thread, with an inbox
//! the test can wait on for a matching packet.

use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5 as p5;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub use rumqttc::v5::mqttbytes::QoS as QoS5;
pub use rumqttc::QoS as QoS4;

/// The longest any helper waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// What the client thread saw.
#[derive(Debug)]
pub enum Ev<P, E> {
    Packet(P),
    /// The connection failed or the broker closed it; the thread has stopped (no reconnect).
    Error(E),
    /// The client sent DISCONNECT and closed its socket.
    SentDisconnect,
}

/// A queue filled by the client thread; tests take the first event matching a predicate and
/// leave the others for later.
struct Inbox<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
}

impl<T> Inbox<T> {
    fn new() -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }
    }

    fn push(&self, item: T) {
        self.queue.lock().unwrap().push_back(item);
        self.ready.notify_all();
    }

    fn take(&self, timeout: Duration, mut pred: impl FnMut(&T) -> bool) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut queue = self.queue.lock().unwrap();
        loop {
            if let Some(i) = queue.iter().position(&mut pred) {
                return queue.remove(i);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            queue = self.ready.wait_timeout(queue, deadline - now).unwrap().0;
        }
    }
}

/// One turn of a rumqttc event loop (MQTT 5 or 3.1.1), reduced to what the inbox records.
trait Turn: Send + 'static {
    type P;
    type E;
    async fn turn(&mut self) -> Step<Self::P, Self::E>;
}

impl Turn for v5::EventLoop {
    type P = V5Packet;
    type E = v5::ConnectionError;
    async fn turn(&mut self) -> Step<V5Packet, v5::ConnectionError> {
        match self.poll().await {
            Ok(v5::Event::Incoming(p)) => Step::Packet(p),
            Ok(v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => Step::SentDisconnect,
            Ok(v5::Event::Outgoing(_)) => Step::Nothing,
            Err(v5::ConnectionError::RequestsDone) => Step::Done,
            Err(e) => Step::Error(e),
        }
    }
}

impl Turn for rumqttc::EventLoop {
    type P = V4Packet;
    type E = rumqttc::ConnectionError;
    async fn turn(&mut self) -> Step<V4Packet, rumqttc::ConnectionError> {
        match self.poll().await {
            Ok(rumqttc::Event::Incoming(p)) => Step::Packet(p),
            Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => Step::SentDisconnect,
            Ok(rumqttc::Event::Outgoing(_)) => Step::Nothing,
            Err(rumqttc::ConnectionError::RequestsDone) => Step::Done,
            Err(e) => Step::Error(e),
        }
    }
}

/// The thread that drives a rumqttc event loop on its own runtime; stops on the first error so
/// that rumqttc never reconnects behind the test's back.
///
/// A turn is never cut short by a timeout, only by `stop`: rumqttc's `recv_timeout` drops an
/// unfinished `poll`, and while it waits for CONNACK that drops the connection and the next
/// `poll` connects again, so a CONNACK slower than the timeout (a loaded machine) turned into
/// a second connection that found the session the first one had just created.
struct Pump<P, E> {
    inbox: Arc<Inbox<Ev<P, E>>>,
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

enum Step<P, E> {
    Packet(P),
    SentDisconnect,
    Error(E),
    Nothing,
    Done,
}

impl<P: Send + 'static, E: Send + 'static> Pump<P, E> {
    fn spawn(mut events: impl Turn<P = P, E = E>) -> Self {
        let inbox = Arc::new(Inbox::new());
        let stop = Arc::new(Notify::new());
        let thread = {
            let inbox = inbox.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the client thread");
                runtime.block_on(async {
                    loop {
                        let step = tokio::select! {
                            step = events.turn() => step,
                            () = stop.notified() => break,
                        };
                        match step {
                            Step::Packet(p) => inbox.push(Ev::Packet(p)),
                            Step::Nothing => {}
                            Step::SentDisconnect => {
                                inbox.push(Ev::SentDisconnect);
                                break;
                            }
                            Step::Error(e) => {
                                inbox.push(Ev::Error(e));
                                break;
                            }
                            Step::Done => break,
                        }
                    }
                });
                // Dropping `events` here closes the socket.
            })
        };
        Pump {
            inbox,
            stop,
            thread: Some(thread),
        }
    }

    fn take_packet(&self, timeout: Duration, mut pred: impl FnMut(&P) -> bool) -> Option<P> {
        match self
            .inbox
            .take(timeout, |e| matches!(e, Ev::Packet(p) if pred(p)))
        {
            Some(Ev::Packet(p)) => Some(p),
            _ => None,
        }
    }

    fn take_end(&self, timeout: Duration) -> Option<Ev<P, E>> {
        self.inbox
            .take(timeout, |e| matches!(e, Ev::Error(_) | Ev::SentDisconnect))
    }

    fn stop(&mut self) {
        // A permit is kept if the thread is not waiting yet, so the stop is never missed.
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<P, E> Drop for Pump<P, E> {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT 5

pub type V5Packet = p5::Packet;

/// A rumqttc v5 client connected to the broker.
pub struct V5 {
    /// The client id it connected with (or the one the broker assigned), for failure messages.
    pub id: String,
    pub client: v5::Client,
    pub connack: p5::ConnAck,
    pump: Pump<V5Packet, v5::ConnectionError>,
}

impl V5 {
    /// Default options for `id` on `port` (keep alive 30 s, clean start).
    pub fn options(port: u16, id: &str) -> v5::MqttOptions {
        let mut opts = v5::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts
    }

    /// Options for a client that starts or resumes its session (clean start 0) with a Session
    /// Expiry Interval of `expiry` seconds.
    pub fn persistent_options(port: u16, id: &str, expiry: u32) -> v5::MqttOptions {
        let mut opts = V5::options(port, id);
        opts.set_clean_start(false);
        opts.set_connect_properties(p5::ConnectProperties {
            session_expiry_interval: Some(expiry),
            ..p5::ConnectProperties::new()
        });
        opts
    }

    pub fn connect(port: u16, id: &str) -> V5 {
        V5::connect_with(V5::options(port, id))
    }

    pub fn connect_with(opts: v5::MqttOptions) -> V5 {
        let id = opts.client_id();
        V5::try_connect_with(opts).unwrap_or_else(|e| panic!("v5 client {id:?}: {e}"))
    }

    /// Connects and waits for CONNACK; returns the connection error (e.g. a refusal) instead.
    pub fn try_connect_with(opts: v5::MqttOptions) -> Result<V5, String> {
        let id = opts.client_id();
        let (client, connection) = v5::Client::new(opts, 100);
        let pump = Pump::spawn(connection.eventloop);
        let first = pump.inbox.take(WAIT, |e| {
            matches!(e, Ev::Error(_) | Ev::Packet(V5Packet::ConnAck(_)))
        });
        match first {
            Some(Ev::Packet(V5Packet::ConnAck(connack))) => Ok(V5 {
                id: connack
                    .properties
                    .as_ref()
                    .and_then(|p| p.assigned_client_identifier.clone())
                    .unwrap_or(id),
                client,
                connack,
                pump,
            }),
            Some(Ev::Error(e)) => Err(format!("connection failed: {e:?}")),
            _ => Err("no CONNACK within 5 s".to_string()),
        }
    }

    /// Subscribes and waits for the SUBACK; returns its reason codes.
    pub fn subscribe(&self, filter: &str, qos: QoS5) -> Vec<p5::SubscribeReasonCode> {
        self.client.subscribe(filter, qos).unwrap();
        match self.expect(|p| matches!(p, V5Packet::SubAck(_)), "SUBACK") {
            V5Packet::SubAck(ack) => ack.return_codes,
            _ => unreachable!(),
        }
    }

    /// Publishes and, for QoS 1/2, waits for the PUBACK/PUBCOMP that completes the flow.
    pub fn publish(&self, topic: &str, qos: QoS5, retain: bool, payload: impl Into<Vec<u8>>) {
        let payload: Vec<u8> = payload.into();
        self.client.publish(topic, qos, retain, payload).unwrap();
        match qos {
            QoS5::AtMostOnce => {}
            QoS5::AtLeastOnce => {
                self.expect(|p| matches!(p, V5Packet::PubAck(_)), "PUBACK");
            }
            QoS5::ExactlyOnce => {
                self.expect(|p| matches!(p, V5Packet::PubRec(_)), "PUBREC");
                self.expect(|p| matches!(p, V5Packet::PubComp(_)), "PUBCOMP");
            }
        }
    }

    /// The next incoming packet matching `pred`, if one arrives within `timeout`.
    pub fn take(&self, timeout: Duration, pred: impl FnMut(&V5Packet) -> bool) -> Option<V5Packet> {
        self.pump.take_packet(timeout, pred)
    }

    /// Like `take` with the default wait; panics naming `what` if nothing matches.
    pub fn expect(&self, pred: impl FnMut(&V5Packet) -> bool, what: &str) -> V5Packet {
        self.take(WAIT, pred)
            .unwrap_or_else(|| panic!("v5 client {:?}: no {what} within {WAIT:?}", self.id))
    }

    /// The next PUBLISH delivered to this client.
    pub fn recv_publish(&self, timeout: Duration) -> Option<p5::Publish> {
        match self.take(timeout, |p| matches!(p, V5Packet::Publish(_))) {
            Some(V5Packet::Publish(p)) => Some(p),
            _ => None,
        }
    }

    /// Payloads of the PUBLISHes that arrive until none comes for `quiet`.
    pub fn payloads_until_quiet(&self, quiet: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(p) = self.recv_publish(quiet) {
            out.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
        out
    }

    /// Payloads of the next `n` PUBLISHes, each awaited for up to [`WAIT`], then of any more
    /// that come within `quiet`: compared with an exact list, a missing message and an extra
    /// one both show, and a loaded machine only makes it wait longer (where a gap longer
    /// than `quiet` would cut `payloads_until_quiet` short).
    pub fn expect_payloads(&self, n: usize, quiet: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.recv_publish(WAIT) {
                Some(p) => out.push(String::from_utf8_lossy(&p.payload).into_owned()),
                None => return out,
            }
        }
        out.extend(self.payloads_until_quiet(quiet));
        out
    }

    pub fn expect_publish(&self) -> p5::Publish {
        match self.expect(|p| matches!(p, V5Packet::Publish(_)), "PUBLISH") {
            V5Packet::Publish(p) => p,
            _ => unreachable!(),
        }
    }

    /// Waits for the connection to end and returns the error that ended it.
    pub fn expect_closed(&self, timeout: Duration) -> v5::ConnectionError {
        match self.pump.take_end(timeout) {
            Some(Ev::Error(e)) => e,
            Some(other) => panic!("expected the broker to close the connection, got {other:?}"),
            None => panic!("connection still open after {timeout:?}"),
        }
    }

    /// Sends DISCONNECT (reason 0) and closes the socket.
    pub fn disconnect(mut self) {
        self.client.disconnect().unwrap();
        let end = self.pump.take_end(WAIT);
        assert!(
            matches!(end, Some(Ev::SentDisconnect)),
            "DISCONNECT not sent: {end:?}"
        );
        self.pump.stop();
    }

    /// Closes the socket without DISCONNECT.
    pub fn drop_connection(mut self) {
        self.pump.stop();
    }
}

/// The broker's DISCONNECT reason if the connection ended with one.
pub fn server_disconnect_reason(e: &v5::ConnectionError) -> Option<p5::DisconnectReasonCode> {
    match e {
        v5::ConnectionError::MqttState(v5::StateError::ServerDisconnect {
            reason_code, ..
        }) => Some(*reason_code),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT 3.1.1

pub type V4Packet = rumqttc::Packet;

/// A rumqttc v4 (MQTT 3.1.1) client connected to the broker.
pub struct V4 {
    /// The client id it connected with, for failure messages.
    pub id: String,
    pub client: rumqttc::Client,
    pub connack: rumqttc::ConnAck,
    pump: Pump<V4Packet, rumqttc::ConnectionError>,
}

impl V4 {
    /// Default options for `id` on `port` (keep alive 30 s, clean session).
    pub fn options(port: u16, id: &str) -> rumqttc::MqttOptions {
        let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts
    }

    pub fn connect(port: u16, id: &str) -> V4 {
        V4::connect_with(V4::options(port, id))
    }

    pub fn connect_with(opts: rumqttc::MqttOptions) -> V4 {
        let id = opts.client_id();
        V4::try_connect_with(opts).unwrap_or_else(|e| panic!("v4 client {id:?}: {e}"))
    }

    pub fn try_connect_with(opts: rumqttc::MqttOptions) -> Result<V4, String> {
        let id = opts.client_id();
        let (client, connection) = rumqttc::Client::new(opts, 100);
        let pump = Pump::spawn(connection.eventloop);
        let first = pump.inbox.take(WAIT, |e| {
            matches!(e, Ev::Error(_) | Ev::Packet(V4Packet::ConnAck(_)))
        });
        match first {
            Some(Ev::Packet(V4Packet::ConnAck(connack))) => Ok(V4 {
                id,
                client,
                connack,
                pump,
            }),
            Some(Ev::Error(e)) => Err(format!("connection failed: {e:?}")),
            _ => Err("no CONNACK within 5 s".to_string()),
        }
    }

    pub fn subscribe(&self, filter: &str, qos: QoS4) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client.subscribe(filter, qos).unwrap();
        match self.expect(|p| matches!(p, V4Packet::SubAck(_)), "SUBACK") {
            V4Packet::SubAck(ack) => ack.return_codes,
            _ => unreachable!(),
        }
    }

    pub fn publish(&self, topic: &str, qos: QoS4, retain: bool, payload: impl Into<Vec<u8>>) {
        let payload: Vec<u8> = payload.into();
        self.client.publish(topic, qos, retain, payload).unwrap();
        match qos {
            QoS4::AtMostOnce => {}
            QoS4::AtLeastOnce => {
                self.expect(|p| matches!(p, V4Packet::PubAck(_)), "PUBACK");
            }
            QoS4::ExactlyOnce => {
                self.expect(|p| matches!(p, V4Packet::PubRec(_)), "PUBREC");
                self.expect(|p| matches!(p, V4Packet::PubComp(_)), "PUBCOMP");
            }
        }
    }

    pub fn take(&self, timeout: Duration, pred: impl FnMut(&V4Packet) -> bool) -> Option<V4Packet> {
        self.pump.take_packet(timeout, pred)
    }

    pub fn expect(&self, pred: impl FnMut(&V4Packet) -> bool, what: &str) -> V4Packet {
        self.take(WAIT, pred)
            .unwrap_or_else(|| panic!("v4 client {:?}: no {what} within {WAIT:?}", self.id))
    }

    pub fn recv_publish(&self, timeout: Duration) -> Option<rumqttc::Publish> {
        match self.take(timeout, |p| matches!(p, V4Packet::Publish(_))) {
            Some(V4Packet::Publish(p)) => Some(p),
            _ => None,
        }
    }

    pub fn expect_publish(&self) -> rumqttc::Publish {
        match self.expect(|p| matches!(p, V4Packet::Publish(_)), "PUBLISH") {
            V4Packet::Publish(p) => p,
            _ => unreachable!(),
        }
    }

    pub fn expect_closed(&self, timeout: Duration) -> rumqttc::ConnectionError {
        match self.pump.take_end(timeout) {
            Some(Ev::Error(e)) => e,
            Some(other) => panic!("expected the broker to close the connection, got {other:?}"),
            None => panic!("connection still open after {timeout:?}"),
        }
    }

    pub fn disconnect(mut self) {
        self.client.disconnect().unwrap();
        let end = self.pump.take_end(WAIT);
        assert!(
            matches!(end, Some(Ev::SentDisconnect)),
            "DISCONNECT not sent: {end:?}"
        );
        self.pump.stop();
    }

    pub fn drop_connection(mut self) {
        self.pump.stop();
    }
}

// ---------------------------------------------------------------------------------------------

/// A well-behaved MQTT 5 client connected before a misbehaving one; afterwards it proves the
/// broker still serves it and still accepts new connections.
pub struct Observer {
    port: u16,
    client: V5,
    sent: std::cell::Cell<u32>,
}

impl Observer {
    pub const TOPIC: &'static str = "observer/health";

    pub fn connect(port: u16) -> Observer {
        let client = V5::connect(port, "observer");
        client.subscribe(Observer::TOPIC, QoS5::AtLeastOnce);
        Observer {
            port,
            client,
            sent: std::cell::Cell::new(0),
        }
    }

    /// The observer's own round trip works, and so does a brand-new 3.1.1 connection.
    pub fn assert_healthy(&self) {
        let n = self.sent.get() + 1;
        self.sent.set(n);
        let own = format!("own {n}");
        self.client
            .publish(Observer::TOPIC, QoS5::AtLeastOnce, false, own.clone());
        let got = self
            .client
            .recv_publish(WAIT)
            .expect("the observer no longer receives its own publish");
        assert_eq!(&got.payload[..], own.as_bytes());

        let late = V4::connect(self.port, &format!("late-{n}"));
        let fresh = format!("fresh {n}");
        late.publish(Observer::TOPIC, QoS4::AtLeastOnce, false, fresh.clone());
        let got = self
            .client
            .recv_publish(WAIT)
            .expect("the observer does not receive a new client's publish");
        assert_eq!(&got.payload[..], fresh.as_bytes());
        late.disconnect();
    }
}
