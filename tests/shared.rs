//! Shared subscriptions (`$share/GROUP/filter`): round robin among online members, offline
//! persistent members, queueing when every member is offline, and the protocol's limits.

mod common;

use common::clients::{QoS5, V5, WAIT};
use common::frames::{self, sub_options, Connect, Version};
use common::raw::Raw;
use common::Broker;
use std::time::Duration;

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

const GROUP: &str = "$share/workers/jobs/#";

fn publish_jobs(port: u16, n: usize) -> Vec<String> {
    let publisher = V5::connect(port, "jobs-pub");
    let jobs: Vec<String> = (0..n).map(|i| format!("job{i}")).collect();
    for job in &jobs {
        publisher.publish("jobs/new", QoS5::AtLeastOnce, false, job.clone());
    }
    jobs
}

#[test]
fn connack_advertises_shared_subscriptions_as_available() {
    let broker = Broker::start();
    let client = V5::connect(broker.port(), "share-avail");
    let available = client
        .connack
        .properties
        .as_ref()
        .and_then(|p| p.shared_subscription_available);
    assert!(
        matches!(available, None | Some(1)),
        "absent (or 1) means available: {available:?}"
    );
}

#[test]
fn two_online_members_receive_alternate_messages_once_each() {
    let broker = Broker::start();
    let a = V5::connect(broker.port(), "member-a");
    let b = V5::connect(broker.port(), "member-b");
    a.subscribe(GROUP, QoS5::AtLeastOnce);
    b.subscribe(GROUP, QoS5::AtLeastOnce);
    let jobs = publish_jobs(broker.port(), 10);
    let (got_a, got_b) = (a.expect_payloads(5, QUIET), b.expect_payloads(5, QUIET));
    assert_eq!(got_a.len(), 5, "a got {got_a:?}, b got {got_b:?}");
    assert_eq!(got_b.len(), 5, "a got {got_a:?}, b got {got_b:?}");
    let mut all: Vec<String> = got_a.iter().chain(&got_b).cloned().collect();
    all.sort();
    let mut expected = jobs.clone();
    expected.sort();
    assert_eq!(all, expected, "every message exactly once across the group");
    let evens: Vec<String> = jobs.iter().step_by(2).cloned().collect();
    let odds: Vec<String> = jobs.iter().skip(1).step_by(2).cloned().collect();
    assert!(
        (got_a == evens && got_b == odds) || (got_a == odds && got_b == evens),
        "round robin alternates: a {got_a:?}, b {got_b:?}"
    );
}

#[test]
fn different_groups_and_plain_subscribers_each_get_a_copy() {
    let broker = Broker::start();
    let g1 = V5::connect(broker.port(), "group-one");
    g1.subscribe("$share/one/jobs/#", QoS5::AtLeastOnce);
    let g2 = V5::connect(broker.port(), "group-two");
    g2.subscribe("$share/two/jobs/#", QoS5::AtLeastOnce);
    let plain = V5::connect(broker.port(), "group-plain");
    plain.subscribe("jobs/#", QoS5::AtLeastOnce);
    let jobs = publish_jobs(broker.port(), 3);
    assert_eq!(g1.expect_payloads(jobs.len(), QUIET), jobs);
    assert_eq!(g2.expect_payloads(jobs.len(), QUIET), jobs);
    assert_eq!(plain.expect_payloads(jobs.len(), QUIET), jobs);
}

#[test]
fn messages_go_to_the_online_member_while_the_other_is_offline() {
    let broker = Broker::start();
    let online = V5::connect(broker.port(), "member-online");
    online.subscribe(GROUP, QoS5::AtLeastOnce);
    let opts = V5::persistent_options(broker.port(), "member-away", 60);
    let away = V5::connect_with(opts.clone());
    away.subscribe(GROUP, QoS5::AtLeastOnce);
    away.disconnect();
    broker.wait_disconnected("member-away");

    let jobs = publish_jobs(broker.port(), 4);
    assert_eq!(
        online.expect_payloads(jobs.len(), QUIET),
        jobs,
        "all messages to the online member"
    );
    let back = V5::connect_with(opts);
    assert!(back.connack.session_present);
    assert_eq!(
        back.payloads_until_quiet(QUIET),
        Vec::<String>::new(),
        "nothing was queued for the offline member"
    );
}

#[test]
fn messages_are_queued_when_every_member_is_offline_and_delivered_on_reconnect() {
    let broker = Broker::start();
    let ids = ["member-x", "member-y"];
    for id in ids {
        let c = V5::connect_with(V5::persistent_options(broker.port(), id, 60));
        c.subscribe(GROUP, QoS5::AtLeastOnce);
        c.disconnect();
        broker.wait_disconnected(id);
    }
    let jobs = publish_jobs(broker.port(), 4);
    let mut all = Vec::new();
    for id in ids {
        let c = V5::connect_with(V5::persistent_options(broker.port(), id, 60));
        assert!(c.connack.session_present);
        all.extend(c.payloads_until_quiet(QUIET));
    }
    all.sort();
    assert_eq!(all, jobs, "each queued message delivered exactly once");
}

#[test]
fn unsubscribed_member_stops_receiving_and_the_rest_get_everything() {
    let broker = Broker::start();
    let stays = V5::connect(broker.port(), "member-stays");
    let leaves = V5::connect(broker.port(), "member-leaves");
    stays.subscribe(GROUP, QoS5::AtLeastOnce);
    leaves.subscribe(GROUP, QoS5::AtLeastOnce);
    leaves.client.unsubscribe(GROUP).unwrap();
    leaves.expect(
        |p| matches!(p, common::clients::V5Packet::UnsubAck(_)),
        "UNSUBACK",
    );
    let jobs = publish_jobs(broker.port(), 4);
    assert_eq!(stays.expect_payloads(jobs.len(), QUIET), jobs);
    assert!(leaves.payloads_until_quiet(QUIET).is_empty());
}

#[test]
fn shared_subscription_gets_no_retained_messages_on_subscribe() {
    let broker = Broker::start();
    let publisher = V5::connect(broker.port(), "share-ret-pub");
    publisher.publish("jobs/retained", QoS5::AtLeastOnce, true, "old");
    let member = V5::connect(broker.port(), "share-ret");
    member.subscribe(GROUP, QoS5::AtLeastOnce);
    assert!(
        member.recv_publish(QUIET).is_none(),
        "retained messages are not sent for a shared subscription"
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "share-nl"));
    raw.send(&frames::subscribe_with(
        Version::V5,
        1,
        &[],
        &[(GROUP, sub_options(1, true, false, 0))],
    ));
    raw.expect_disconnect_and_close(0x82);
}

#[test]
fn malformed_share_filters_get_0x8f() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "share-bad"));
    raw.send(&frames::subscribe_with(
        Version::V5,
        1,
        &[],
        &[("$share/g", 1), ("$share//t", 1), ("$share/g+/t", 1)],
    ));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.suback_reasons(Version::V5), [0x8F, 0x8F, 0x8F]);
}
