//! Fuzzes what the far side and the network give ICE (`voipd::media::ice`,
//! `voipd::sdp::IceDescription`): the input up to the first NUL is the far side's SDP, whose
//! ICE attributes (credentials, candidates) are read as the call does and handed to an
//! agent; the rest is a run of datagrams (a flag byte: component and whether it came to the
//! TURN socket, from whom; a length byte; the bytes), each taken at the agent's ports
//! between steps of its clock. No panic, whatever comes. The agent's checks go only to
//! loopback: candidates elsewhere are parsed by a second agent that never sends.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use voipd::media::ice::{Ice, IceServers, TurnServer};
use voipd::sdp::{IceDescription, Sdp};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Whether a `candidate:` value names a loopback address (or none that parses: then it
/// is refused anyway).
fn stays_home(candidate: &str) -> bool {
    candidate
        .split_whitespace()
        .nth(4)
        .and_then(|a| a.parse::<IpAddr>().ok())
        .is_none_or(|a| a.is_loopback())
}

fuzz_target!(|data: &[u8]| {
    let (sdp, mut datagrams) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(desc) = Sdp::parse(sdp) else { return };
    let Some(theirs) = desc.media.iter().find_map(|m| IceDescription::of(&desc, m)) else {
        return;
    };
    let Ok(rtp) = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)) else { return };
    let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)) else { return };
    let hosts = [&rtp, &rtcp];
    let turn = SocketAddr::new(LOOPBACK, 9);
    let servers = IceServers {
        stun: Some(SocketAddr::new(LOOPBACK, 9)),
        turn: Some(TurnServer {
            addr: turn,
            username: "u".into(),
            password: "p".into(),
        }),
    };
    let controlling = theirs.ufrag.len() % 2 == 0;
    let (near, far): (Vec<String>, Vec<String>) =
        theirs.candidates.iter().cloned().partition(|c| stays_home(c));
    if let Ok(mut parse_only) = Ice::new(controlling, &hosts, &IceServers::default()) {
        let _ = parse_only.set_remote(&theirs.ufrag, &theirs.pwd, &far);
    }
    let Ok(mut ice) = Ice::new(controlling, &hosts, &servers) else { return };
    let _ = ice.set_remote(&theirs.ufrag, &theirs.pwd, &near);
    // Datagrams come from the far side's first candidate, so that they can match a pair.
    let peer = near
        .first()
        .and_then(|c| {
            let mut t = c.split_whitespace().skip(4);
            let ip = t.next()?.parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, t.next()?.parse().ok()?))
        })
        .unwrap_or(SocketAddr::new(LOOPBACK, 7));
    let mut now = Instant::now();
    let _ = ice.step(now, &hosts);
    while let [flags, len, rest @ ..] = datagrams {
        let n = usize::from(*len).min(rest.len());
        let (dgram, tail) = rest.split_at(n);
        datagrams = tail;
        let comp = usize::from(flags & 1);
        let via_turn = flags & 2 != 0;
        let from = if via_turn || flags & 4 != 0 { turn } else { peer };
        ice.input(comp, via_turn, dgram, from, now, &hosts, &mut |_, _| {});
        now += Duration::from_millis(u64::from(flags >> 3) * 50);
        let _ = ice.step(now, &hosts);
        let _ = ice.send(1 + comp, b"rtp", now, &hosts);
    }
    for c in 1..=2 {
        let _ = ice.selected(c);
        let _ = ice.default_address(c);
    }
});
