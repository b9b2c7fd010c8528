//! Fuzzes the RTCP compound-packet reader (`voipd::media::rtcp::reports_about`): the report
//! blocks it finds about the SSRC of the input's first RR block (offset 8) or first SR
//! block (offset 28) must survive a round trip through our own SR/RR writer
//! (`voipd::media::rtcp::compound`), which also gets the input as an SDES CNAME.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::media::rtcp::{SenderInfo, compound, reports_about};

fn word(d: &[u8], at: usize) -> u32 {
    d.get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

const SENDER: SenderInfo = SenderInfo {
    ntp: 0xe000_0000_8000_0000,
    rtp_timestamp: 160,
    packets: 1,
    octets: 160,
};

fuzz_target!(|data: &[u8]| {
    for ours in [word(data, 8), word(data, 28)] {
        for block in reports_about(data, ours) {
            assert_eq!(block.ssrc, ours);
            for sender in [None, Some(SENDER)] {
                let pkt = compound(ours ^ 1, sender, Some(block), "voipd@fuzz");
                assert_eq!(
                    reports_about(&pkt, ours),
                    vec![block],
                    "written: {pkt:02x?}"
                );
            }
        }
    }
    let cname = String::from_utf8_lossy(data);
    let pkt = compound(7, Some(SENDER), None, &cname);
    assert!(reports_about(&pkt, 7).is_empty());
});
