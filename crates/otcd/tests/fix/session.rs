//! The session layer against a raw FIX peer (our own codec, no engine): what a stock engine never sends.
//! Malformed input, sequence gaps and resets, resends, a second connection, a flood. Needs no Python.

use hmac::{Hmac, Mac};
use otcd_fix::codec::{next_frame, Builder, Header, Message};
use otcd_testkit::process::TestDesk;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Peer {
    stream: TcpStream,
    buffer: Vec<u8>,
    key_id: String,
    secret: String,
    target: String,
}

fn now_text(offset_ms: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    otcd_fix::timestamps::format(otcd_core::time::TimestampMs(now + offset_ms))
}

impl Peer {
    fn connect(port: u16, key_id: &str, secret: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Self { stream, buffer: Vec::new(), key_id: key_id.into(), secret: secret.into(), target: "OTCD".into() }
    }

    fn encode(&self, builder: &Builder, seq: u64, sending_time: &str, poss_dup: bool) -> Vec<u8> {
        builder.encode(&Header {
            sender: &self.key_id,
            target: &self.target,
            seq_num: seq,
            sending_time,
            orig_sending_time: poss_dup.then_some(sending_time),
        })
    }

    fn send(&mut self, builder: Builder, seq: u64) {
        let bytes = self.encode(&builder, seq, &now_text(0), false);
        self.stream.write_all(&bytes).unwrap();
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn logon_with(&mut self, seq: u64, reset: bool, offset_ms: i64, secret: &str) {
        let secret = secret.to_owned();
        self.logon_signed(seq, reset, offset_ms, move |payload| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(payload);
            mac.finalize().into_bytes().to_vec()
        });
    }

    /// A Logon whose signature `sign` makes from the signed bytes.
    fn logon_signed(&mut self, seq: u64, reset: bool, offset_ms: i64, sign: impl FnOnce(&[u8]) -> Vec<u8>) {
        let sending_time = now_text(offset_ms);
        let payload = [sending_time.as_str(), "A", &seq.to_string(), &self.key_id, &self.target].join("\x01");
        let signature = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sign(payload.as_bytes()));
        let mut logon = Builder::new("A").field(98, "0").field(108, "30");
        if reset {
            logon = logon.field(141, "Y");
        }
        let logon = logon.field(95, signature.len().to_string()).field(96, signature);
        let bytes = self.encode(&logon, seq, &sending_time, false);
        self.stream.write_all(&bytes).unwrap();
    }

    fn logon(&mut self, seq: u64) -> Message {
        let secret = self.secret.clone();
        self.logon_with(seq, false, 0, &secret);
        self.expect("A")
    }

    /// The next message, or `None` when the desk closed the connection or 5 s passed.
    fn read(&mut self) -> Option<Message> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some((message, used))) = next_frame(&self.buffer) {
                self.buffer.drain(..used);
                return Some(message.expect("the desk sends well-formed messages"));
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                }
                Err(_) => return None,
            }
        }
    }

    /// The next message other than a Heartbeat, which must be `msg_type`.
    fn expect(&mut self, msg_type: &str) -> Message {
        loop {
            let message = self.read().unwrap_or_else(|| panic!("no {msg_type}: connection closed or silent"));
            if message.msg_type() == Some("0") && msg_type != "0" {
                continue;
            }
            assert_eq!(message.msg_type(), Some(msg_type), "{message:?}");
            return message;
        }
    }

    /// The desk logs out (with a Text containing `text`) and closes.
    fn expect_logout(&mut self, text: &str) {
        let logout = self.expect("5");
        assert!(logout.get(58).unwrap_or("").contains(text), "{logout:?}");
        assert!(self.read().is_none(), "the connection closes after the Logout");
    }
}

fn desk_and_key(config: &str) -> (TestDesk, u16, String, String) {
    let config = format!("max_book_age_ms = 600000\n{config}");
    let desk = TestDesk::launch().config(&config).args(&["--fix-listen", "127.0.0.1:0"]).start();
    let port = super::fix_port(&desk);
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let client_id = desk.new_client("Raw Peer");
    let key = desk.create_key(&client_id, &json!({"scopes": ["read", "trade"], "algorithm": "hmac"}));
    let key = key.expect(201).clone();
    let (key_id, secret) = (key["key_id"].as_str().unwrap().to_owned(), key["secret"].as_str().unwrap().to_owned());
    (desk, port, key_id, secret)
}

#[test]
fn malformed_input_gets_reject_or_logout_and_never_a_state_change() {
    let (_desk, port, key_id, secret) = desk_and_key("");
    // Garbage before a Logon: closed without a word.
    let mut stranger = Peer::connect(port, &key_id, &secret);
    stranger.send_raw(b"GET / HTTP/1.1\r\n\r\n");
    assert!(stranger.read().is_none());
    let mut peer = Peer::connect(port, &key_id, &secret);
    peer.logon(1);
    // A bad CheckSum: ignored; the same seq then counts.
    let mut garbled = peer.encode(&Builder::new("1").field(112, "x"), 2, &now_text(0), false);
    let at = garbled.len() - 2;
    garbled[at] = if garbled[at] == b'0' { b'1' } else { b'0' };
    peer.send_raw(&garbled);
    peer.send(Builder::new("1").field(112, "probe"), 2);
    let heartbeat = peer.expect("0");
    assert_eq!(heartbeat.get(112), Some("probe"));
    // An unknown MsgType, a missing required tag, a bad value: Reject with the reason.
    peer.send(Builder::new("ZZ"), 3);
    let reject = peer.expect("3");
    assert_eq!((reject.get(45), reject.get(373)), (Some("3"), Some("11")), "{reject:?}");
    peer.send(Builder::new("D").field(54, "1").field(40, "1"), 4);
    let reject = peer.expect("3");
    assert_eq!((reject.get(371), reject.get(373)), (Some("11"), Some("1")), "{reject:?}");
    peer.send(Builder::new("D").field(11, "bad-side").field(54, "7").field(40, "1").field(55, "BTC-USD"), 5);
    let reject = peer.expect("3");
    assert_eq!((reject.get(371), reject.get(373)), (Some("54"), Some("5")), "{reject:?}");
    // A known message the desk does not handle: BusinessMessageReject.
    peer.send(Builder::new("AE"), 6);
    let business = peer.expect("j");
    assert_eq!(business.get(380), Some("3"), "{business:?}");
    // An oversized message breaks framing: Logout, close.
    peer.send_raw(b"8=FIX.4.4\x019=999999\x01");
    peer.expect_logout("malformed");
}

#[test]
fn sequence_gaps_resends_resets_and_one_connection_per_key() {
    let (_desk, port, key_id, secret) = desk_and_key("");
    let mut peer = Peer::connect(port, &key_id, &secret);
    let logon = peer.logon(1);
    assert_eq!(logon.seq_num(), Some(1));
    // A second connection of the same key while the first lives: refused.
    let mut second = Peer::connect(port, &key_id, &secret);
    second.logon_with(2, false, 0, &secret);
    second.expect_logout("already connected");
    // Higher than expected: a ResendRequest from the expected one; a gap fill moves on.
    peer.send(Builder::new("0"), 5);
    let resend = peer.expect("2");
    assert_eq!((resend.get(7), resend.get(16)), (Some("2"), Some("0")), "{resend:?}");
    let gap_fill = Builder::new("4").field(123, "Y").field(36, "6");
    let bytes = peer.encode(&gap_fill, 2, &now_text(0), true);
    peer.send_raw(&bytes);
    peer.send(Builder::new("1").field(112, "after-gap"), 6);
    assert_eq!(peer.expect("0").get(112), Some("after-gap"));
    // An RFQ (kept for resends), then our ResendRequest from 1: gap fills for admin messages, the Quote again.
    let rfq =
        Builder::new("R").field(131, "raw-rfq").field(146, "1").field(55, "BTC-USD").field(54, "1").field(38, "1");
    peer.send(rfq, 7);
    let quote = peer.expect("S");
    peer.send(Builder::new("2").field(7, "1").field(16, "0"), 8);
    let first = peer.expect("4");
    assert_eq!((first.seq_num(), first.get(123), first.get(43)), (Some(1), Some("Y"), Some("Y")), "{first:?}");
    let again = peer.expect("S");
    assert_eq!((again.seq_num(), again.get(43), again.get(117)), (quote.seq_num(), Some("Y"), quote.get(117)));
    assert!(again.get(122).is_some(), "OrigSendingTime on a resend");
    // Lower than expected without PossDupFlag: logged out, saying so.
    peer.send(Builder::new("0"), 3);
    peer.expect_logout("MsgSeqNum too low, expecting 9 but received 3");
    // A Logon with ResetSeqNumFlag but a bad signature changes nothing ...
    let mut stranger = Peer::connect(port, &key_id, &secret);
    stranger.logon_with(1, true, 0, "not-the-secret");
    stranger.expect_logout("bad signature");
    // ... the sequence goes on where it was (the too-low message was not counted: 9 is expected) ...
    let mut back = Peer::connect(port, &key_id, &secret);
    let resumed = back.logon(9);
    assert!(resumed.seq_num().unwrap() > quote.seq_num().unwrap(), "{resumed:?}");
    back.send(Builder::new("5"), 10);
    back.expect_logout("");
    // ... and an authenticated reset starts both directions at 1.
    let mut reset = Peer::connect(port, &key_id, &secret);
    reset.logon_with(1, true, 0, &secret);
    let answer = reset.expect("A");
    assert_eq!((answer.seq_num(), answer.get(141)), (Some(1), Some("Y")), "{answer:?}");
}

#[test]
fn a_flood_is_logged_out_and_a_stale_logon_refused() {
    let (_desk, port, key_id, secret) = desk_and_key("fix_listen = \"127.0.0.1:0\"\nfix_messages_per_second = 5\n");
    let mut stale = Peer::connect(port, &key_id, &secret);
    stale.logon_with(1, false, -60_000, &secret);
    stale.expect_logout("SendingTime");
    let mut peer = Peer::connect(port, &key_id, &secret);
    peer.logon(1);
    for seq in 2..20 {
        peer.send(Builder::new("0"), seq);
    }
    peer.expect_logout("messages per second");
}

#[test]
fn an_ed25519_key_signs_its_logon_and_another_key_cannot() {
    use ed25519_dalek::{Signer, SigningKey};
    let (desk, port, _, _) = desk_and_key("");
    let client_id = desk.new_client("Ed Peer");
    let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let public_key =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, signing_key.verifying_key().to_bytes());
    let body = json!({"scopes": ["trade"], "algorithm": "ed25519", "public_key": public_key});
    let key_id = desk.create_key(&client_id, &body).expect(201)["key_id"].as_str().unwrap().to_owned();
    let impostor = SigningKey::generate(&mut rand::rngs::OsRng);
    let mut refused = Peer::connect(port, &key_id, "");
    refused.logon_signed(1, false, 0, |payload| impostor.sign(payload).to_bytes().to_vec());
    refused.expect_logout("bad signature");
    let mut peer = Peer::connect(port, &key_id, "");
    peer.logon_signed(1, false, 0, |payload| signing_key.sign(payload).to_bytes().to_vec());
    assert_eq!(peer.expect("A").seq_num(), Some(1));
}

#[test]
fn the_tier_rate_limits_refuse_a_message_class_and_the_session_goes_on() {
    let (desk, port, _, _) = desk_and_key("");
    let limits = json!({"reads": 100, "rfq": 2, "orders": 100, "withdrawals": 100});
    desk.put_tier("slow", &json!({"spread_bps": "0", "rate_limits": limits}));
    let mut body = otcd_testkit::process::client_body("Slow Peer");
    body["tier"] = json!("slow");
    let client_id = desk.create_client(&body)["client_id"].as_str().unwrap().to_owned();
    let key = desk.create_key(&client_id, &json!({"scopes": ["read", "trade"], "algorithm": "hmac"}));
    let key = key.expect(201).clone();
    let mut peer = Peer::connect(port, key["key_id"].as_str().unwrap(), key["secret"].as_str().unwrap());
    peer.logon(1);
    for seq in 2..5 {
        let rfq = Builder::new("R").field(131, format!("slow-{seq}")).field(146, "1").field(55, "BTC-USD");
        peer.send(rfq.field(54, "1").field(38, "1"), seq);
    }
    assert_eq!(peer.expect("S").get(131), Some("slow-2"));
    assert_eq!(peer.expect("S").get(131), Some("slow-3"));
    let refused = peer.expect("j");
    assert!(refused.get(58).unwrap().starts_with("rate_limited"), "{refused:?}");
    peer.send(Builder::new("1").field(112, "still-here"), 5);
    assert_eq!(peer.expect("0").get(112), Some("still-here"));
}

#[test]
fn a_desk_key_with_read_copies_every_clients_reports_and_the_target_comp_id_is_configurable() {
    let (desk, port, key_id, secret) = desk_and_key("fix_listen = \"127.0.0.1:0\"\nfix_target_comp_id = \"DESK1\"\n");
    // TargetCompID is DESK1 now: a Logon to OTCD is refused.
    let mut wrong = Peer::connect(port, &key_id, &secret);
    wrong.logon_with(1, false, 0, &secret);
    wrong.expect_logout("TargetCompID must be DESK1");
    let created = desk.post(&desk.admin, "/v1/admin/keys", &json!({"scopes": ["read"], "algorithm": "hmac"}));
    let desk_key = created.expect(201).clone();
    let mut copy = Peer::connect(port, desk_key["key_id"].as_str().unwrap(), desk_key["secret"].as_str().unwrap());
    copy.target = "DESK1".into();
    copy.logon(1);
    // Two clients trade over REST; the desk's drop copy sees both fills.
    for name in ["Copied One", "Copied Two"] {
        let (client_id, trader) = desk.client(name, "standard", "approved");
        desk.deposit(&client_id, "USD", "10000.00", &format!("dc-{}", name.len())).expect(201);
        let body = json!({"client_order_id": "dc-1", "type": "market",
            "instrument": "BTC-USD", "side": "buy", "quantity": "0.01"});
        desk.post(&trader, "/v1/orders", &body).expect(201);
        let report = copy.expect("8");
        assert_eq!((report.get(150), report.get(39)), (Some("F"), Some("2")), "{report:?}");
    }
}
