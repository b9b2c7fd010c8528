//! Packet captures with tshark on loopback: what really crossed the wire, to show that
//! encrypted media does not carry what the recordings hold.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::stop_child;
use crate::{PATIENCE, require_tool};

/// A running capture, written to a pcap file in the test's directory.
pub struct Capture {
    child: Option<Child>,
    file: PathBuf,
    log: PathBuf,
}

/// One UDP datagram seen.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

impl Capture {
    /// Captures UDP on `lo` matching the capture filter `filter` (e.g. "udp portrange
    /// 30000-30009"); returns once tshark says it is capturing.
    pub fn start(dir: &Path, name: &str, filter: &str) -> Capture {
        let bin = require_tool("tshark", "tshark");
        let file = dir.join(format!("{name}.pcap"));
        let log = dir.join(format!("{name}.tshark.log"));
        let out = std::fs::File::create(&log).expect("tshark log");
        let child = Command::new(bin)
            .args(["-i", "lo", "-n", "-q", "-f", filter, "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start tshark");
        let c = Capture {
            child: Some(child),
            file,
            log,
        };
        let deadline = Instant::now() + PATIENCE;
        while !std::fs::read_to_string(&c.log).is_ok_and(|l| l.contains("Capturing on")) {
            assert!(
                Instant::now() < deadline,
                "tshark did not start capturing: {}",
                std::fs::read_to_string(&c.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// Stops the capture and reads back every UDP datagram in it.
    pub fn stop(mut self) -> Vec<Datagram> {
        // Let the last packets reach the file before tshark is told to stop.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
        let out = Command::new(require_tool("tshark", "tshark"))
            .args(["-n", "-r"])
            .arg(&self.file)
            .args([
                "-T",
                "fields",
                "-e",
                "udp.srcport",
                "-e",
                "udp.dstport",
                "-e",
                "udp.payload",
            ])
            .output()
            .expect("tshark -r");
        assert!(
            out.status.success(),
            "tshark -r {}: {}",
            self.file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let src_port = f.next()?.parse().ok()?;
                let dst_port = f.next()?.parse().ok()?;
                let hex = f.next()?.replace(':', "");
                let payload = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect::<Option<Vec<u8>>>()?;
                Some(Datagram {
                    src_port,
                    dst_port,
                    payload,
                })
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}
