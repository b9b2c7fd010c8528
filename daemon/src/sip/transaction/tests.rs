//! The transaction state machines against a raw UDP socket playing the peer, with short
//! timers (T1 = 20 ms) so that retransmissions and timeouts happen quickly.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::message::{CSeq, Headers, parse, reason_phrase};
use crate::sip::transport::ListenAddr;
use crate::sip::transport::Proto;
use crate::sip::uri::Uri;

const FAST: Timers = Timers {
    t1: Duration::from_millis(20),
    t2: Duration::from_millis(160),
    t4: Duration::from_millis(200),
};

async fn endpoint() -> (Endpoint, mpsc::Receiver<TuRequest>, Target) {
    let listen = ListenAddr::try_from("udp:127.0.0.1:0".to_string()).unwrap();
    let (t, incoming) = Transport::start(&[listen], false, None).await.unwrap();
    let addr = t.listening()[0].trim_start_matches("udp:").parse().unwrap();
    let (ep, tu) = Endpoint::start(t, incoming, FAST, "test".into(), Default::default());
    (
        ep,
        tu,
        Target {
            proto: Proto::Udp,
            addr,
        },
    )
}

fn peer() -> (UdpSocket, Target) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let addr = s.local_addr().unwrap();
    (
        s,
        Target {
            proto: Proto::Udp,
            addr,
        },
    )
}

fn recv(s: &UdpSocket) -> Option<Message> {
    let mut buf = vec![0u8; 65_536];
    let n = s.recv(&mut buf).ok()?;
    parse(&buf[..n]).ok()
}

/// A request as a peer would send it, with its own Via (branch `z9hG4bK-<branch>`).
fn raw(method: &str, branch: &str, cseq: u32, peer: Target) -> Vec<u8> {
    format!(
        "{method} sip:voipd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{branch};rport\r\nFrom: <sip:p@127.0.0.1>;tag=p1\r\nTo: <sip:voipd@127.0.0.1>\r\nCall-ID: {branch}@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        peer.addr
    )
    .into_bytes()
}

fn request(method: Method) -> Request {
    let mut h = Headers::default();
    h.push(Name::From, "<sip:voipd@127.0.0.1>;tag=v1");
    h.push(Name::To, "<sip:p@127.0.0.1>");
    h.push(Name::CallId, format!("{}@test", random_token(8)));
    h.push(Name::CSeq, format!("7 {method}"));
    h.push(Name::MaxForwards, "70");
    Request {
        method,
        uri: "sip:p@127.0.0.1".parse::<Uri>().unwrap(),
        headers: h,
        body: Vec::new(),
    }
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_non_invite_retransmits_until_timer_f() {
    let (ep, _tu, _) = endpoint().await;
    let (sock, target) = peer();
    let counter = blocking(move || {
        let mut branches = Vec::new();
        while let Some(Message::Request(r)) = recv(&sock) {
            branches.push(r.top_via().and_then(|v| v.branch().map(str::to_string)));
        }
        branches
    });
    let started = Instant::now();
    let mut tx = ep.request(request(Method::Message), target).await.unwrap();
    assert!(matches!(tx.response().await, Err(TxError::Timeout)));
    let took = started.elapsed();
    assert!(
        took >= 64 * FAST.t1 && took < 64 * FAST.t1 + Duration::from_millis(300),
        "{took:?}"
    );
    let sent = counter.await.unwrap();
    // Sends at 0, 20, 60, 140, 300, then every T2 (160 ms) until 1280 ms: 11.
    assert!((10..=12).contains(&sent.len()), "{} sends", sent.len());
    assert!(
        sent.windows(2).all(|w| w[0] == w[1]),
        "one branch for all retransmissions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_absorbs_a_retransmitted_request() {
    let (_ep, mut tu, me) = endpoint().await;
    let (sock, p) = peer();
    sock.send_to(&raw("MESSAGE", "abs", 1, p), me.addr).unwrap();
    let r = tu.recv().await.unwrap();
    r.tx.respond(r.request.response(200, "OK")).await;
    let sock = blocking(move || {
        let first = recv(&sock);
        sock.send_to(&raw("MESSAGE", "abs", 1, p), me.addr).unwrap();
        let again = recv(&sock);
        (first, again)
    });
    let (first, again) = sock.await.unwrap();
    assert!(matches!(first, Some(Message::Response(ref r)) if r.code == 200));
    assert!(
        matches!(again, Some(Message::Response(ref r)) if r.code == 200),
        "the retransmission is answered again"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), tu.recv())
            .await
            .is_err(),
        "the layer above saw the request once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_server_sends_100_retransmits_final_until_ack() {
    let (_ep, mut tu, me) = endpoint().await;
    let (sock, p) = peer();
    sock.send_to(&raw("INVITE", "inv", 1, p), me.addr).unwrap();
    let r = tu.recv().await.unwrap();
    let sock = blocking(move || {
        let trying = recv(&sock);
        (sock, trying)
    });
    let (sock, trying) = sock.await.unwrap();
    assert!(
        matches!(trying, Some(Message::Response(ref r)) if r.code == 100),
        "{trying:?}"
    );
    r.tx.respond(r.request.response(486, "Busy Here")).await;
    let got = blocking(move || {
        // Timer G: the 486 comes again while no ACK arrives.
        let mut finals = 0;
        let deadline = Instant::now() + Duration::from_millis(150);
        while Instant::now() < deadline {
            if let Some(Message::Response(r)) = recv(&sock)
                && r.code == 486
            {
                finals += 1;
            }
        }
        sock.send_to(&raw("ACK", "inv", 1, p), me.addr).unwrap();
        // Drain what was in flight, then expect silence.
        std::thread::sleep(Duration::from_millis(50));
        sock.set_nonblocking(true).unwrap();
        while recv(&sock).is_some() {}
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        (finals, recv(&sock))
    });
    let (finals, after_ack) = got.await.unwrap();
    assert!(
        finals >= 3,
        "486 retransmitted {finals} times in 150 ms with T1 = 20 ms"
    );
    assert!(
        after_ack.is_none(),
        "the ACK stopped retransmissions: {after_ack:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), tu.recv())
            .await
            .is_err(),
        "the ACK of a non-2xx belongs to the transaction, not the layer above"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_answered_and_reaches_the_invite_owner() {
    let (_ep, mut tu, me) = endpoint().await;
    let (sock, p) = peer();
    sock.send_to(&raw("INVITE", "can", 1, p), me.addr).unwrap();
    let r = tu.recv().await.unwrap();
    sock.send_to(&raw("CANCEL", "can", 1, p), me.addr).unwrap();
    tokio::time::timeout(Duration::from_secs(2), r.tx.cancelled())
        .await
        .expect("cancelled");
    let codes = blocking(move || {
        let mut codes = Vec::new();
        while let Some(Message::Response(r)) = recv(&sock) {
            codes.push((r.code, r.cseq().map(|c| c.method)));
        }
        codes
    })
    .await
    .unwrap();
    assert!(codes.contains(&(100, Some(Method::Invite))), "{codes:?}");
    assert!(codes.contains(&(200, Some(Method::Cancel))), "{codes:?}");

    // A CANCEL for nothing: 481.
    let (sock, p) = peer();
    sock.send_to(&raw("CANCEL", "nothing", 1, p), me.addr)
        .unwrap();
    let r = blocking(move || recv(&sock)).await.unwrap();
    assert!(
        matches!(r, Some(Message::Response(ref r)) if r.code == 481),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_invite_acks_a_failure() {
    let (ep, _tu, _) = endpoint().await;
    let (sock, target) = peer();
    let peer_side = blocking(move || {
        let Some(Message::Request(inv)) = recv(&sock) else {
            panic!("no INVITE")
        };
        let via = inv.top_via().unwrap();
        let to = |r: &mut crate::sip::message::Response| {
            r.headers.set_first(Name::To, "<sip:p@127.0.0.1>;tag=p2");
        };
        let reply = |code: u16| {
            let mut r = inv.response(code, reason_phrase(code));
            to(&mut r);
            r.encode()
        };
        let back = std::net::SocketAddr::new(via.host.parse().unwrap(), via.port.unwrap());
        sock.send_to(&reply(100), back).unwrap();
        sock.send_to(&reply(486), back).unwrap();
        let Some(Message::Request(ack)) = recv(&sock) else {
            panic!("no ACK")
        };
        (inv, ack)
    });
    let mut tx = ep.request(request(Method::Invite), target).await.unwrap();
    assert_eq!(tx.response().await.unwrap().code, 100);
    assert_eq!(tx.response().await.unwrap().code, 486);
    let (inv, ack) = peer_side.await.unwrap();
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.top_via().unwrap().branch(),
        inv.top_via().unwrap().branch(),
        "same branch"
    );
    assert_eq!(
        ack.cseq().unwrap(),
        CSeq {
            seq: 7,
            method: Method::Ack
        }
    );
    assert_eq!(ack.to().unwrap().tag(), Some("p2"), "To from the response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_are_answered_statelessly_with_capabilities() {
    let (_ep, mut tu, me) = endpoint().await;
    let (sock, p) = peer();
    sock.send_to(&raw("OPTIONS", "opt", 1, p), me.addr).unwrap();
    let r = blocking(move || recv(&sock)).await.unwrap();
    let Some(Message::Response(r)) = r else {
        panic!("no answer")
    };
    assert_eq!(r.code, 200);
    for h in [Name::Allow, Name::Accept, Name::Supported] {
        assert!(r.headers.get(&h).is_some(), "{h} missing");
    }
    assert!(r.to().unwrap().tag().is_some(), "To tag added");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), tu.recv())
            .await
            .is_err()
    );
}
