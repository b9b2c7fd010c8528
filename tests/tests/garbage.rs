//! Malformed SIP from the network: answered with 400 where enough parsed, otherwise
//! dropped; the daemon stays up, stays registered, and its memory stays bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use serde_json::Value;
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

fn sip_addr(sb: &Sandbox, proto: &str) -> SocketAddr {
    let out = sb.voipctl(&["--json", "status"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let l = s["listening"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix(&format!("{proto}:")))
        .unwrap_or_else(|| panic!("no {proto} listener in {s}"))
        .to_string();
    l.parse().unwrap()
}

fn options(extra: &str, via_count: usize) -> String {
    let vias = "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKgarbage;rport\r\n".repeat(via_count);
    format!(
        "OPTIONS sip:voipd@127.0.0.1 SIP/2.0\r\n{vias}From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:voipd@127.0.0.1>\r\nCall-ID: garbage-{via_count}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn malformed_input_is_answered_or_dropped_and_nothing_breaks() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n\n[[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n",
        kam.port
    ));
    let d = sb.start_daemon();
    wait_until(
        || stdout(&sb.voipctl(&["accounts"])).contains("registered"),
        "alice registered",
    );
    let udp_addr = sip_addr(&sb, "udp");
    let tcp_addr = sip_addr(&sb, "tcp");
    let rss_before = d.rss_kib();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut recv = |sock: &UdpSocket| -> Option<String> {
        sock.recv(&mut buf)
            .ok()
            .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    };

    // A request broken in a way that still names its dialog: 400 with the reason.
    let bad_cseq = options("", 1).replace("CSeq: 1 OPTIONS", "CSeq: 99999999999 OPTIONS");
    sock.send_to(bad_cseq.as_bytes(), udp_addr).unwrap();
    let answer = recv(&sock).expect("an answer to a malformed request");
    assert!(
        answer.starts_with("SIP/2.0 400 Bad CSeq header"),
        "{answer}"
    );
    assert!(answer.contains("Call-ID: garbage-1"), "{answer}");

    // Another SIP version: 505.
    sock.send_to(
        options("", 1)
            .replace("SIP/2.0\r\n", "SIP/3.0\r\n")
            .as_bytes(),
        udp_addr,
    )
    .unwrap();
    assert!(recv(&sock).expect("505").starts_with("SIP/2.0 505 "));

    // Content-Length larger than what came: 400, the body is not waited for.
    let lie = options("", 1).replace("Content-Length: 0", "Content-Length: 65536");
    sock.send_to(lie.as_bytes(), udp_addr).unwrap();
    assert!(
        recv(&sock)
            .expect("400")
            .starts_with("SIP/2.0 400 Body shorter than Content-Length")
    );

    // A thousand Via headers is big but legal: answered normally.
    sock.send_to(options("", 1000).as_bytes(), udp_addr)
        .unwrap();
    let big = recv(&sock).expect("answer to 1000 Vias");
    assert!(
        big.starts_with("SIP/2.0 200 OK"),
        "{}",
        &big[..big.len().min(200)]
    );

    // Noise, cut messages, a huge header: dropped (or answered), never fatal.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid = options("", 1).into_bytes();
    for i in 0..2000 {
        let msg = match i % 4 {
            0 => {
                let n = (rng.next() % 1400) as usize + 1;
                rng.bytes(n)
            }
            1 => valid[..(rng.next() as usize % valid.len())].to_vec(),
            2 => {
                let mut m = valid.clone();
                for _ in 0..8 {
                    let at = rng.next() as usize % m.len();
                    m[at] = rng.next() as u8;
                }
                m
            }
            _ => options(&format!("X-Huge: {}\r\n", "a".repeat(60_000)), 1).into_bytes(),
        };
        let _ = sock.send_to(&msg, udp_addr);
    }

    // Over TCP: a stream that cannot be framed is closed; good messages after garbage on a
    // fresh connection still work.
    let mut tcp = TcpStream::connect(tcp_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 70000\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the connection is closed without an answer"
    );

    let mut tcp = TcpStream::connect(tcp_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(&rng.bytes(3000)).unwrap();
    tcp.write_all(b"\r\n\r\n").unwrap();
    drop(tcp);

    let mut tcp = TcpStream::connect(tcp_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Split over two writes, as a slow sender would.
    let good = options("", 1).replace("UDP 127.0.0.1:9", "TCP 127.0.0.1:9");
    let (a, b) = good.split_at(40);
    tcp.write_all(a.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    tcp.write_all(b.as_bytes()).unwrap();
    let mut got = vec![0u8; 4096];
    let n = tcp.read(&mut got).unwrap();
    assert!(String::from_utf8_lossy(&got[..n]).starts_with("SIP/2.0 200 OK"));

    // Still up, still registered, memory bounded.
    let out = sb.voipctl(&["--json", "status"]);
    assert!(out.status.success(), "{}", describe(&out));
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["counts"]["accounts_registered"], 1);
    let rss_after = d.rss_kib();
    println!("RSS before {rss_before} KiB, after the garbage {rss_after} KiB");
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        d.log().contains("malformed SIP from"),
        "one log line names what was dropped"
    );
    drop(kam);
}
