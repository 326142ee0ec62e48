//! Counters the broker keeps for logs and `$SYS`.

/// Totals since start.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub connections_total: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    /// Messages dropped because a queue was full, the client's packet size limit was
    /// exceeded, or they expired before delivery (the sum of the `dropped_*` below).
    pub messages_dropped: u64,
    /// Dropped at a full queue (`drop_oldest`, `drop_new`, a session that held publishers
    /// back too long, QoS 0 queued for an offline session).
    pub dropped_queue_full: u64,
    /// Expired before they could be delivered.
    pub dropped_expired: u64,
    /// Larger than the client's Maximum Packet Size.
    pub dropped_too_large: u64,
    /// QoS 0 messages to a client leaving its output unread.
    pub dropped_slow_consumer: u64,
    /// PUBLISHes refused with 0x97 (`queue_full = "refuse"`).
    pub messages_refused: u64,
    /// Times a publisher was held back for a full queue.
    pub publishers_held: u64,
    /// Subscribers disconnected for holding publishers back past `slow_consumer_timeout`.
    pub slow_consumers: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Group commits that failed (disk full, I/O error); each closed its turn's clients.
    pub store_failures: u64,
    /// Bytes not sent because a topic alias stood for the topic.
    pub alias_bytes_saved: u64,
}
