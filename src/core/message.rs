//! An application message once it must outlive the read buffer: copied once from the
//! inbound PUBLISH into an `Arc` that every subscriber's queue, the retained tree and the
//! store point to. A PUBLISH nothing takes (no subscriber, no RETAIN, no bridge) is never
//! copied: `publish.rs` matches its topic first.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::keys::SessionKey;
use crate::protocol::{Properties, Publish, Qos, QosPid};

/// A message shared by every queue it sits in.
#[derive(Debug)]
pub struct Message {
    pub topic: Box<str>,
    pub payload: Box<[u8]>,
    /// The QoS it was published with; each delivery is capped by its subscription's QoS.
    pub qos: Qos,
    /// The RETAIN flag as published, forwarded to Retain-As-Published subscribers.
    pub retain: bool,
    /// The properties a broker forwards unchanged (MQTT 5 request/response and metadata).
    pub properties: ForwardedProperties,
    /// When the Message Expiry Interval runs out; `None` for messages that never expire.
    pub expires_at: Option<Instant>,
    /// The session that published it, for No Local subscriptions; `None` for wills and $SYS.
    pub publisher: Option<SessionKey>,
    /// Its id in the store, given the first time a persistent session queues it.
    pub store_id: OnceLock<u64>,
}

/// The PUBLISH properties that travel with a message from publisher to subscribers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ForwardedProperties {
    pub payload_format_indicator: Option<u8>,
    pub content_type: Option<Box<str>>,
    pub response_topic: Option<Box<str>>,
    pub correlation_data: Option<Box<[u8]>>,
    pub user_properties: Vec<(Box<str>, Box<str>)>,
}

impl ForwardedProperties {
    /// Copies the forwardable properties out of an inbound packet's borrowed ones.
    pub fn copy_from(p: &Properties<'_>) -> Self {
        ForwardedProperties {
            payload_format_indicator: p.payload_format_indicator,
            content_type: p.content_type.map(Into::into),
            response_topic: p.response_topic.map(Into::into),
            correlation_data: p.correlation_data.map(Into::into),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }
}

impl Message {
    /// Copies a decoded PUBLISH (or a will) into a shared message.
    pub fn from_publish(
        topic: &str,
        publish: &Publish<'_>,
        publisher: Option<SessionKey>,
        now: Instant,
    ) -> Arc<Message> {
        Arc::new(Message {
            topic: topic.into(),
            payload: publish.payload.into(),
            qos: publish.qos.qos(),
            retain: publish.retain,
            properties: ForwardedProperties::copy_from(&publish.properties),
            expires_at: expiry(publish.properties.message_expiry_interval, now),
            publisher,
            store_id: OnceLock::new(),
        })
    }

    /// True once the Message Expiry Interval has run out.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The interval left, in whole seconds, to forward as Message Expiry Interval.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now).as_secs();
            u32::try_from(left).unwrap_or(u32::MAX).max(1)
        })
    }

    /// Builds the outbound PUBLISH view for one delivery. Vectors stay unallocated when the
    /// message has no user properties and the delivery no subscription identifiers.
    pub fn to_publish<'m>(&'m self, delivery: &Delivery<'m>, now: Instant) -> Publish<'m> {
        let properties = Properties {
            payload_format_indicator: self.properties.payload_format_indicator,
            message_expiry_interval: self.remaining_expiry(now),
            content_type: self.properties.content_type.as_deref(),
            response_topic: self.properties.response_topic.as_deref(),
            correlation_data: self.properties.correlation_data.as_deref(),
            subscription_identifiers: delivery.subscription_ids.to_vec(),
            topic_alias: delivery.topic_alias,
            user_properties: self
                .properties
                .user_properties
                .iter()
                .map(|(k, v)| (&**k, &**v))
                .collect(),
            ..Properties::default()
        };
        Publish {
            dup: delivery.dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic: if delivery.omit_topic { "" } else { &self.topic },
            properties,
            payload: &self.payload,
        }
    }
}

/// What differs between two deliveries of the same message.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub qos: QosPid,
    pub dup: bool,
    pub retain: bool,
    pub subscription_ids: &'a [u32],
    pub topic_alias: Option<u16>,
    /// True when the topic alias is already known to the client, so the topic is sent empty.
    pub omit_topic: bool,
}

fn expiry(interval: Option<u32>, now: Instant) -> Option<Instant> {
    interval.map(|secs| now + std::time::Duration::from_secs(u64::from(secs)))
}
