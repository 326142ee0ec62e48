//! The listener table: every socket the broker accepts clients on, each with its kind and
//! the address it was configured with. A listener can be stopped (its socket closed, so new
//! clients are refused by the kernel) and started again (bound anew) while the loop runs:
//! the console's Stop/Start buttons. Listener `i` polls under the token `FIRST - i`.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

/// Listener tokens count down from here; the signal pipe and the waker sit above.
const FIRST: usize = usize::MAX - 2;

/// A listener's place in the table, for as long as the process runs (a stopped listener
/// keeps its id). `u8` keeps it small in every connection; there are a handful at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub u8);

/// What a listener speaks; every kind ends in the same MQTT read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// MQTT straight over TCP.
    Mqtt,
    /// MQTT over TLS (`tls_listen`).
    Tls,
    /// MQTT in WebSocket binary frames (`ws_listen`, path `/mqtt`).
    WebSocket,
    /// The same over TLS (a `ws_listen` address that `web_tls` makes secure).
    SecureWebSocket,
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::Mqtt => "mqtt",
            ListenerKind::Tls => "mqtts",
            ListenerKind::WebSocket => "websocket",
            ListenerKind::SecureWebSocket => "wss",
        })
    }
}

/// One row of the table.
pub struct Listener {
    pub kind: ListenerKind,
    /// The address it binds when started. When it asked for port 0, the port the first
    /// bind got, so that a restart comes back where clients know to find it.
    pub addr: SocketAddr,
    /// `None` while stopped.
    socket: Option<TcpListener>,
}

impl Listener {
    pub fn is_running(&self) -> bool {
        self.socket.is_some()
    }

    /// The start-up log line: what a client connects to, as a URL where clients take one.
    pub fn announcement(&self) -> String {
        match self.kind {
            ListenerKind::WebSocket => format!(
                "MQTT over WebSocket on ws://{}{}",
                self.addr,
                crate::ws::handshake::PATH
            ),
            ListenerKind::SecureWebSocket => format!(
                "MQTT over WebSocket on wss://{}{}",
                self.addr,
                crate::ws::handshake::PATH
            ),
            kind => format!("{kind} listener on {}", self.addr),
        }
    }
}

/// Every listener, running or stopped.
#[derive(Default)]
pub struct Listeners {
    table: Vec<Listener>,
}

impl Listeners {
    /// Binds and registers a new listener; fails on a busy or bad address.
    pub fn add(
        &mut self,
        registry: &Registry,
        kind: ListenerKind,
        addr: SocketAddr,
    ) -> io::Result<ListenerId> {
        let id = u8::try_from(self.table.len())
            .map(ListenerId)
            .map_err(|_| io::Error::other("too many listeners"))?;
        let socket = bind(registry, id, addr)?;
        let addr = socket.local_addr()?;
        self.table.push(Listener {
            kind,
            addr,
            socket: Some(socket),
        });
        Ok(id)
    }

    /// The listener a poll token belongs to, if it is one of ours.
    pub fn id_of(&self, token: Token) -> Option<ListenerId> {
        let offset = FIRST.checked_sub(token.0)?;
        (offset < self.table.len()).then_some(ListenerId(offset as u8))
    }

    pub fn get(&self, id: ListenerId) -> Option<&Listener> {
        self.table.get(usize::from(id.0))
    }

    /// The socket to accept from, while the listener runs.
    pub fn socket(&self, id: ListenerId) -> Option<&TcpListener> {
        self.get(id)?.socket.as_ref()
    }

    pub fn iter(&self) -> impl Iterator<Item = (ListenerId, &Listener)> {
        self.table
            .iter()
            .enumerate()
            .map(|(i, l)| (ListenerId(i as u8), l))
    }

    /// Closes the listener's socket. False if it was not running.
    pub fn stop(&mut self, registry: &Registry, id: ListenerId) -> bool {
        let Some(mut socket) = self
            .table
            .get_mut(usize::from(id.0))
            .and_then(|l| l.socket.take())
        else {
            return false;
        };
        let _ = registry.deregister(&mut socket);
        true
    }

    /// Binds the listener again at its address. Ok(false) if it was already running.
    pub fn start(&mut self, registry: &Registry, id: ListenerId) -> io::Result<bool> {
        let listener = self
            .table
            .get_mut(usize::from(id.0))
            .ok_or_else(|| io::Error::other("no such listener"))?;
        if listener.socket.is_some() {
            return Ok(false);
        }
        listener.socket = Some(bind(registry, id, listener.addr)?);
        Ok(true)
    }
}

fn bind(registry: &Registry, id: ListenerId, addr: SocketAddr) -> io::Result<TcpListener> {
    // mio's bind asks for a 1024-connection backlog (std's is 128), so a reconnect storm
    // after a link drop does not lose SYNs to a full accept queue.
    let mut socket = TcpListener::bind(addr)?;
    registry.register(
        &mut socket,
        Token(FIRST - usize::from(id.0)),
        Interest::READABLE,
    )?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::Poll;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn tokens_map_back_to_their_listener() {
        let poll = Poll::new().unwrap();
        let mut table = Listeners::default();
        let a = table
            .add(poll.registry(), ListenerKind::Mqtt, loopback())
            .unwrap();
        let b = table
            .add(poll.registry(), ListenerKind::Mqtt, loopback())
            .unwrap();
        assert_eq!(table.id_of(Token(FIRST)), Some(a));
        assert_eq!(table.id_of(Token(FIRST - 1)), Some(b));
        assert_eq!(table.id_of(Token(FIRST - 2)), None);
        assert_eq!(table.id_of(Token(0)), None);
        assert_eq!(table.id_of(Token(usize::MAX)), None);
    }

    #[test]
    fn a_stopped_listener_refuses_and_comes_back_on_the_same_port() {
        let poll = Poll::new().unwrap();
        let mut table = Listeners::default();
        let id = table
            .add(poll.registry(), ListenerKind::Mqtt, loopback())
            .unwrap();
        let addr = table.get(id).unwrap().addr;
        assert_ne!(addr.port(), 0, "the port the first bind got is kept");
        assert!(std::net::TcpStream::connect(addr).is_ok());

        assert!(table.stop(poll.registry(), id));
        assert!(!table.stop(poll.registry(), id), "already stopped");
        assert!(!table.get(id).unwrap().is_running());
        assert!(table.socket(id).is_none());
        assert!(std::net::TcpStream::connect(addr).is_err());

        assert!(table.start(poll.registry(), id).unwrap());
        assert!(
            !table.start(poll.registry(), id).unwrap(),
            "already running"
        );
        assert!(std::net::TcpStream::connect(addr).is_ok());
    }
}
