//! Counters the broker keeps for logs and `$SYS`.

/// Totals since start.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub connections_total: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    /// Messages dropped because a queue was full, the client's packet size limit was
    /// exceeded, or they expired before delivery.
    pub messages_dropped: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Group commits that failed (disk full, I/O error); each closed its turn's clients.
    pub store_failures: u64,
    /// Bytes not sent because a topic alias stood for the topic.
    pub alias_bytes_saved: u64,
}
