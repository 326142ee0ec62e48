//! A clean stop leaves the database in one file: after SIGTERM, with the web console's
//! workers and the auth workers having used their connections, there is no `-wal` or `-shm`
//! and `outpost.db` copied alone holds the accounts and the retained messages.

mod common;

use std::time::Duration;

use common::clients::{QoS5, V5, WAIT};
use common::{console, Broker};

#[test]
fn sigterm_leaves_one_database_file_that_holds_everything() {
    let mut broker = console::start(&[
        ("root", "root-password-1", true),
        ("sensor", "sensor-password-1", false),
    ]);
    // The console in use: a login (bcrypt on a web worker) and the admin page (its SQL).
    let (mut web, _csrf) = console::logged_in(broker.web_port(), "root", "root-password-1");
    assert_eq!(web.get("/admin").status, 200);
    // The auth workers in use: a CONNECT with a password, then a retained message.
    let mut opts = V5::options(broker.port(), "clean-stop");
    opts.set_credentials("sensor", "sensor-password-1");
    let sensor = V5::connect_with(opts);
    sensor.publish("clean/stop", QoS5::AtLeastOnce, true, "kept");

    let (status, _) = broker
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("outpost still running 5 s after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let mut files: Vec<String> = std::fs::read_dir(broker.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["outpost.db", "outpost.toml"],
        "{}",
        broker.log().join("\n")
    );

    // The file alone, somewhere else: the accounts and the retained message are in it.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(broker.db_path(), copy.path().join("outpost.db")).unwrap();
    std::fs::copy(
        broker.dir().join("outpost.toml"),
        copy.path().join("outpost.toml"),
    )
    .unwrap();
    let again = Broker::start_in(copy, Some(console::CONFIG));
    let mut opts = V5::options(again.port(), "clean-stop-reader");
    opts.set_credentials("sensor", "sensor-password-1");
    let reader = V5::connect_with(opts);
    reader.subscribe("clean/stop", QoS5::AtLeastOnce);
    let retained = reader.recv_publish(WAIT).expect("the retained message");
    assert_eq!(&retained.payload[..], b"kept");
    assert!(
        again
            .log()
            .iter()
            .all(|l| !l.contains("no administrator yet")),
        "the admin account is in the copied file"
    );
}
