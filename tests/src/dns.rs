//! dnsmasq as the DNS server for test domains (NAPTR, SRV and A records), on a free
//! loopback port, with nothing from upstream and no hosts file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{free_port, stop_child};
use crate::{PATIENCE, require_tool};

pub struct Dnsmasq {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Dnsmasq {
    /// Serves `records`, each a dnsmasq option such as
    /// `--srv-host=_sip._udp.voipd.test,kam1.voipd.test,5070,10,50`.
    pub fn start(dir: &Path, records: &[String]) -> Dnsmasq {
        let bin = require_tool("dnsmasq", "dnsmasq-base");
        let port = free_port();
        let log = dir.join("dnsmasq.log");
        let out = std::fs::File::create(&log).expect("dnsmasq log");
        let child = Command::new(bin)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--user=root",
                "--log-queries",
                "--log-facility=-",
                // Answers are kept for their TTL: the resolver's cache is in play.
                "--local-ttl=30",
                &format!("--port={port}"),
            ])
            .args(records)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start dnsmasq");
        let d = Dnsmasq {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        let deadline = Instant::now() + PATIENCE;
        while !d.log_text().contains("started") {
            assert!(
                Instant::now() < deadline,
                "dnsmasq not ready:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}
