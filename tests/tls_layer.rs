//! The TLS layer's narrow, sans-IO interface (`outpost::tls`), driven with no socket at all:
//! ciphertext from one side is fed to the other until the handshake is done, then MQTT bytes
//! cross both ways. This is the interface a framing layer under a connection uses.

mod common;

use common::certs::Certs;
use outpost::bridge::BridgeConfig;
use outpost::tls::{self, Layer, TlsSession};

fn bridge(certs: &Certs, server_name: &str) -> BridgeConfig {
    let text = format!(
        "name = \"t\"\naddress = \"127.0.0.1:8883\"\ntls = true\nca_file = \"{}\"\n\
         server_name = \"{server_name}\"\n[[topic]]\nfilter = \"#\"\ndirection = \"out\"\n",
        certs.arg("ca.pem")
    );
    toml::from_str(&text).unwrap()
}

/// Moves ciphertext between the two until neither has any to send; the server's
/// plaintext lands in `server_plain`, the client's in `client_plain`.
fn pump(
    client: &mut TlsSession,
    server: &mut Layer,
    client_out: &mut Vec<u8>,
    client_plain: &mut Vec<u8>,
    server_plain: &mut Vec<u8>,
) -> Result<(), tls::TlsError> {
    for _ in 0..10 {
        let mut wire = Vec::new();
        client.write_plaintext(client_out, &mut wire)?;
        server.feed(&wire)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = server.take_plaintext(&mut buf);
            if n == 0 {
                break;
            }
            server_plain.extend_from_slice(&buf[..n]);
        }
        let back = server.wire().to_vec();
        server.written(back.len());
        client.read_ciphertext(&back, client_plain)?;
        if wire.is_empty() && back.is_empty() {
            break;
        }
    }
    Ok(())
}

#[test]
fn a_handshake_and_mqtt_bytes_cross_without_a_socket() {
    let certs = Certs::make();
    let server_config =
        tls::server_config(&certs.path("server.pem"), &certs.path("server.key"), None).unwrap();
    let config = bridge(&certs, "localhost");
    let mut client = tls::client(
        tls::client_config(&config).unwrap(),
        &config,
        "127.0.0.1:8883",
    )
    .unwrap();
    let mut server = Layer::new(tls::server(server_config).unwrap());
    // CONNECT is queued before the handshake; it waits, then goes through encrypted.
    let connect = vec![
        0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 0, 0,
    ];
    let mut client_out = connect.clone();
    let (mut client_plain, mut server_plain) = (Vec::new(), Vec::new());
    pump(
        &mut client,
        &mut server,
        &mut client_out,
        &mut client_plain,
        &mut server_plain,
    )
    .unwrap();
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert!(
        client_out.is_empty(),
        "the CONNECT was taken once the handshake was done"
    );
    assert_eq!(server_plain, connect);

    // And back: a CONNACK from the server, larger than one TLS record as well.
    let mut reply = vec![0x20, 0x03, 0, 0, 0];
    reply.extend(std::iter::repeat_n(7u8, 40_000));
    let mut pending = reply.clone();
    server.encrypt(&mut pending).unwrap();
    assert!(pending.is_empty());
    let wire = server.wire().to_vec();
    server.written(wire.len());
    client.read_ciphertext(&wire, &mut client_plain).unwrap();
    assert_eq!(client_plain, reply);
}

#[test]
fn a_certificate_for_another_name_fails_the_handshake() {
    let certs = Certs::make();
    let server_config =
        tls::server_config(&certs.path("server.pem"), &certs.path("server.key"), None).unwrap();
    let config = bridge(&certs, "broker.example.com");
    let mut client = tls::client(
        tls::client_config(&config).unwrap(),
        &config,
        "127.0.0.1:8883",
    )
    .unwrap();
    let mut server = Layer::new(tls::server(server_config).unwrap());
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let e = pump(&mut client, &mut server, &mut a, &mut b, &mut c).unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");
}

#[test]
fn a_key_that_does_not_fit_the_certificate_is_refused() {
    let certs = Certs::make();
    let e =
        tls::server_config(&certs.path("server.pem"), &certs.path("client.key"), None).unwrap_err();
    assert!(e.to_string().contains("client.key"), "{e}");
}
