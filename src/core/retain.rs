//! Retained messages toward a new subscription: whether it gets them (Retain Handling 0, 1
//! or 2; never for a shared subscription, MQTT 5 §4.8.2), and how each goes out — RETAIN
//! set whatever Retain As Published says, QoS capped by the subscription's, its
//! Subscription Identifier attached. The shell finds them in the retained tree and sends
//! or queues each delivery like any other.

use std::sync::Arc;

use crate::protocol::{RetainHandling, SubscriptionOptions};

use super::message::Message;
use super::session::Outbound;

/// True when a subscription just made (`is_new`: not replacing one to the same filter) is
/// sent the retained messages matching its filter.
pub fn wants_retained(shared: bool, options: SubscriptionOptions, is_new: bool) -> bool {
    let asked = match options.retain_handling {
        RetainHandling::OnSubscribe => true,
        RetainHandling::OnNewSubscribe => is_new,
        RetainHandling::Never => false,
    };
    asked && !shared
}

/// The delivery of retained `message` to a new subscription.
pub fn delivery(
    message: Arc<Message>,
    options: SubscriptionOptions,
    identifier: Option<u32>,
) -> Outbound {
    Outbound {
        qos: options.qos.min(message.qos),
        message,
        retain: true,
        subscription_ids: identifier.into_iter().collect(),
        seq: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::message;
    use crate::protocol::Qos;

    fn options(retain_handling: RetainHandling, qos: Qos) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling,
        }
    }

    #[test]
    fn retain_handling_decides_who_is_sent_the_retained_messages() {
        use RetainHandling::{Never, OnNewSubscribe, OnSubscribe};
        // (retain handling, shared, a new subscription) → sent the retained messages
        let table = [
            (OnSubscribe, false, true, true),
            (OnSubscribe, false, false, true),
            (OnNewSubscribe, false, true, true),
            (OnNewSubscribe, false, false, false),
            (Never, false, true, false),
            (Never, false, false, false),
            (OnSubscribe, true, true, false),
            (OnNewSubscribe, true, true, false),
        ];
        for (handling, shared, is_new, expect) in table {
            let options = options(handling, Qos::AtLeastOnce);
            assert_eq!(
                wants_retained(shared, options, is_new),
                expect,
                "{handling:?}, shared {shared}, new {is_new}"
            );
        }
    }

    #[test]
    fn a_retained_message_goes_out_flagged_at_the_lower_qos_with_its_identifier() {
        // (message QoS, subscription QoS) → delivery QoS
        let table = [
            (Qos::ExactlyOnce, Qos::AtLeastOnce, Qos::AtLeastOnce),
            (Qos::AtMostOnce, Qos::ExactlyOnce, Qos::AtMostOnce),
            (Qos::AtLeastOnce, Qos::AtLeastOnce, Qos::AtLeastOnce),
        ];
        for (published, subscribed, expect) in table {
            // Published without RETAIN: the retained copy is flagged anyway.
            let m = message("r/t", 2, published, false);
            let d = delivery(m, options(RetainHandling::OnSubscribe, subscribed), Some(5));
            assert_eq!(d.qos, expect, "{published:?} to {subscribed:?}");
            assert!(d.retain);
            assert_eq!(d.subscription_ids, [5]);
        }
        let m = message("r/t", 2, Qos::AtMostOnce, true);
        let d = delivery(
            m,
            options(RetainHandling::OnSubscribe, Qos::AtMostOnce),
            None,
        );
        assert!(d.subscription_ids.is_empty());
    }
}
