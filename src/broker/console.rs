//! What the web console may ask the loop, and the loop's answers. The web thread sends a
//! [`ConsoleRequest`] through the inbox and waits (with a timeout) on its own reply
//! channel; the loop answers from its state in one place and never waits on the web thread.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use super::close::Ending;
use super::inbox::{Inbound, InboxSender, SendError};
use super::listeners::{ListenerId, ListenerKind};
use super::Broker;

/// A question or command for the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAsk {
    /// Every listener with its state.
    Listeners,
    /// Stop a listener: close its socket and disconnect its clients (MQTT 5: 0x8B).
    StopListener(ListenerId),
    /// Bind a stopped listener again.
    StartListener(ListenerId),
}

/// The loop's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAnswer {
    Listeners(Vec<ListenerInfo>),
    /// The command was carried out (or there was nothing to do).
    Done,
    /// The request names something that does not exist.
    NotFound,
    /// The command could not be carried out; the text says why.
    Failed(String),
}

/// One listener as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub id: ListenerId,
    pub kind: ListenerKind,
    pub addr: SocketAddr,
    pub running: bool,
    /// Connections accepted on it that are still open.
    pub connections: usize,
}

/// A request with the channel its answer goes back on.
pub struct ConsoleRequest {
    pub ask: ConsoleAsk,
    pub reply: mpsc::Sender<ConsoleAnswer>,
}

/// Why the web thread got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskError {
    Send(SendError),
    /// No answer within the timeout.
    Timeout,
}

/// Asks the loop and waits up to `timeout` for its answer (called from the web thread).
pub fn ask(
    inbox: &InboxSender,
    ask: ConsoleAsk,
    timeout: Duration,
) -> Result<ConsoleAnswer, AskError> {
    let (reply, answer) = mpsc::channel();
    inbox
        .send(Inbound::Console(ConsoleRequest { ask, reply }))
        .map_err(AskError::Send)?;
    answer.recv_timeout(timeout).map_err(|_| AskError::Timeout)
}

impl Broker {
    /// Answers one console request from the loop's state.
    pub(super) fn answer_console(&mut self, request: ConsoleRequest) {
        let answer = match request.ask {
            ConsoleAsk::Listeners => ConsoleAnswer::Listeners(self.listener_infos()),
            ConsoleAsk::StopListener(id) => self.stop_listener(id),
            ConsoleAsk::StartListener(id) => self.start_listener(id),
        };
        // The web thread may have timed out and gone; nothing to do then.
        let _ = request.reply.send(answer);
    }

    fn listener_infos(&self) -> Vec<ListenerInfo> {
        self.listeners
            .iter()
            .map(|(id, l)| ListenerInfo {
                id,
                kind: l.kind,
                addr: l.addr,
                running: l.is_running(),
                connections: self.conns.iter().filter(|(_, c)| c.listener == id).count(),
            })
            .collect()
    }

    fn stop_listener(&mut self, id: ListenerId) -> ConsoleAnswer {
        let Some(listener) = self.listeners.get(id) else {
            return ConsoleAnswer::NotFound;
        };
        let (kind, addr) = (listener.kind, listener.addr);
        if !self.listeners.stop(&self.registry, id) {
            return ConsoleAnswer::Done;
        }
        let clients: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.listener == id)
            .map(|(token, _)| token)
            .collect();
        log::info!(
            "{kind} listener on {addr} stopped, disconnecting {} clients",
            clients.len()
        );
        for token in clients {
            self.end_connection(token, Ending::ListenerStopped);
        }
        ConsoleAnswer::Done
    }

    fn start_listener(&mut self, id: ListenerId) -> ConsoleAnswer {
        let Some(listener) = self.listeners.get(id) else {
            return ConsoleAnswer::NotFound;
        };
        let (kind, addr) = (listener.kind, listener.addr);
        match self.listeners.start(&self.registry, id) {
            Ok(true) => {
                log::info!("{kind} listener on {addr} started");
                ConsoleAnswer::Done
            }
            Ok(false) => ConsoleAnswer::Done,
            Err(e) => {
                log::warn!("cannot start the {kind} listener on {addr}: {e}");
                ConsoleAnswer::Failed(format!("cannot listen on {addr}: {e}"))
            }
        }
    }
}
