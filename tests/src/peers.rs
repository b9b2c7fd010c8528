//! Real peers the tests run: Kamailio and SIPp, each on free loopback ports in the
//! sandbox, stopped by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Host;
use crate::{PATIENCE, require_tool};

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = i32::try_from(pid) {
        kill(pid, sig);
    }
}

/// kill(2) on a child we started (`target` > 0) or its process group (< 0).
fn kill(target: i32, sig: libc::c_int) {
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(target, sig);
    }
}

/// A signal to every process in the group `pgid` leads.
fn signal_group(pgid: u32, sig: libc::c_int) {
    if let Ok(pgid) = i32::try_from(pgid) {
        kill(-pgid, sig);
    }
}

/// An even port with `n` free UDP ports from it on, for RTP/RTCP pairs.
pub fn free_even_ports(n: u16) -> u16 {
    loop {
        let p = free_port() & !1;
        if p > 1024
            && p < 60_000
            && (0..n).all(|i| std::net::UdpSocket::bind(("127.0.0.1", p + i)).is_ok())
        {
            return p;
        }
    }
}

/// Whether some socket on this machine holds UDP `port` (IPv4 or IPv6). Read from
/// /proc rather than probed by binding, which would take the port from its owner.
fn udp_port_bound(port: u16) -> bool {
    udp_port_bound_in("/proc/net", port)
}

/// [`udp_port_bound`] in the network namespace whose /proc `net` directory is `net`.
fn udp_port_bound_in(net: &str, port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    ["udp", "udp6"].iter().any(|table| {
        std::fs::read_to_string(format!("{net}/{table}")).is_ok_and(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(1))
                .any(|local| local.ends_with(&suffix))
        })
    })
}

/// SIGTERM, then SIGKILL if it has not ended within 5 s.
pub fn stop_child(child: &mut Child) {
    signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kamailio as registrar and proxy (tests/peers/kamailio.cfg): users alice, bob, carol,
/// dave, erin with passwords NAMEpw, domain 127.0.0.1.
pub struct Kamailio {
    pub port: u16,
    dir: PathBuf,
    log: PathBuf,
    defines: Vec<String>,
    /// What runs it (`ip netns exec NS`), if anything.
    prefix: Vec<String>,
    child: Option<Child>,
}

impl Kamailio {
    pub fn start(dir: &Path, defines: &[&str]) -> Kamailio {
        Kamailio::launch(dir, free_port(), Vec::new(), defines)
    }

    /// Kamailio on `host` (a provider in the tests' own network), port 5060, the domain
    /// its address: `sip:alice@203.0.113.1`.
    pub fn start_on(dir: &Path, host: &Host, defines: &[&str]) -> Kamailio {
        let mut all = vec![
            format!("LISTEN_IP={}", host.ip),
            format!("SIP_DOMAIN=\"{}\"", host.ip),
        ];
        all.extend(defines.iter().map(|d| d.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Kamailio::launch(dir, 5060, host.prefix(), &all)
    }

    fn launch(dir: &Path, port: u16, prefix: Vec<String>, defines: &[&str]) -> Kamailio {
        let mut k = Kamailio {
            port,
            dir: dir.join("kamailio"),
            log: dir.join("kamailio.log"),
            defines: defines.iter().map(|d| d.to_string()).collect(),
            prefix,
            child: None,
        };
        k.run();
        k
    }

    fn run(&mut self) {
        let bin = require_tool("kamailio", "kamailio");
        std::fs::create_dir_all(&self.dir).expect("kamailio dir");
        let before = self.log_text().matches("KAMAILIO-READY").count();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("kamailio log");
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kamailio.cfg");
        let mut cmd = match self.prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        // Its own process group: stopped as a whole, workers included.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["-DD", "-E", "-f"])
            .arg(cfg)
            .arg("-Y")
            .arg(&self.dir)
            .arg("-P")
            .arg(self.dir.join("kamailio.pid"))
            .args(["-L", "/usr/lib/x86_64-linux-gnu/kamailio/modules/"])
            .arg("-A")
            .arg(format!("LISTEN_PORT={}", self.port))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        for d in &self.defines {
            cmd.arg("-A").arg(d);
        }
        self.child = Some(cmd.spawn().expect("start kamailio"));
        let deadline = Instant::now() + PATIENCE;
        while self.log_text().matches("KAMAILIO-READY").count() <= before {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("kamailio exited ({st}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "kamailio not ready:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Kamailio and the workers it forked: its process group, so that none is left
    /// behind when the main process must be killed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = c.id();
            signal_group(group, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Workers that outlived their parent (or a parent that would not end).
            signal_group(group, libc::SIGKILL);
            let _ = c.wait();
        }
    }

    /// Starts again on the same port, with an empty location table.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// REGISTER requests Kamailio received from `user`.
    /// The lines where it judged a request of `method` from `user` (CALL-AUTH).
    pub fn call_auth(&self, method: &str, user: &str) -> Vec<String> {
        let (m, f) = (format!("method={method} "), format!("from={user}"));
        self.log_text()
            .lines()
            .filter(|l| l.contains("CALL-AUTH") && l.contains(&m) && l.ends_with(&f))
            .map(str::to_string)
            .collect()
    }

    /// Whether it challenged `user`'s `method` and then took it with their credentials.
    pub fn challenged_then_took(&self, method: &str, user: &str) -> bool {
        let lines = self.call_auth(method, user);
        lines.iter().any(|l| l.contains("result=challenge"))
            && lines.iter().any(|l| l.contains("result=ok"))
    }

    pub fn registers_from(&self, user: &str) -> Vec<String> {
        let needle = format!("REGISTER-RECEIVED from=sip:{user}@");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    /// Successful registrations Kamailio stored for `user` (to=sip:user@…).
    pub fn saved(&self, user: &str) -> usize {
        let needle = format!("REGISTER-SAVED aor=sip:{user}@");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
    }
}

/// coturn (`turnserver`) as the provider's STUN and TURN server, on port 3478 of a host
/// in the tests' network, with one long-term credential ([`Coturn::USER`]).
pub struct Coturn {
    child: Option<Child>,
    log: PathBuf,
    pub addr: std::net::SocketAddr,
}

impl Coturn {
    pub const USER: &str = "voipd";
    pub const PASSWORD: &str = "turnpw";
    pub const REALM: &str = "voipd.test";

    pub fn start_on(dir: &Path, host: &Host) -> Coturn {
        let bin = require_tool("turnserver", "coturn");
        let log = dir.join("coturn.log");
        let out = std::fs::File::create(&log).expect("coturn log");
        let ip = host.ip.to_string();
        let child = host
            .command(bin)
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "-v"])
            .arg(format!("--listening-ip={ip}"))
            .arg(format!("--relay-ip={ip}"))
            .args([
                "--listening-port=3478",
                "--min-port=40000",
                "--max-port=40999",
            ])
            .args(["--lt-cred-mech", "--fingerprint"])
            .arg(format!("--user={}:{}", Coturn::USER, Coturn::PASSWORD))
            .arg(format!("--realm={}", Coturn::REALM))
            .arg(format!("--pidfile={}", dir.join("coturn.pid").display()))
            .args(["--log-file=stdout", "--simple-log"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start turnserver");
        let mut c = Coturn {
            child: Some(child),
            log,
            addr: std::net::SocketAddr::new(host.ip, 3478),
        };
        let pid = c.child.as_ref().map(Child::id).unwrap_or_default();
        let deadline = Instant::now() + PATIENCE;
        // Its namespace's sockets, seen through its own /proc entry.
        while !udp_port_bound_in(&format!("/proc/{pid}/net"), 3478) {
            if let Some(Ok(Some(st))) = c.child.as_mut().map(Child::try_wait) {
                panic!("turnserver exited ({st}):\n{}", c.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "turnserver not ready:\n{}",
                c.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}

/// One SIPp run in the background.
pub struct Sipp {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Sipp {
    /// Runs `sipp` with `args` (scenario, ports, …) writing its output to a log file.
    pub fn spawn(dir: &Path, name: &str, args: &[String]) -> Sipp {
        let bin = require_tool("sipp", "sip-tester");
        let log = dir.join(format!("sipp-{name}.log"));
        let out = std::fs::File::create(&log).expect("sipp log");
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start sipp");
        Sipp {
            child: Some(child),
            log,
        }
    }

    /// The arguments for SIPp playing `scenario` once, from a port of its own, echoing
    /// the RTP it gets (`-rtp_echo`), then `extra`.
    pub fn echoing_args(scenario: &str, extra: &[String]) -> Vec<String> {
        let mut a: Vec<String> = [
            "-sf",
            &sipp_scenario(scenario).display().to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-mi",
            "127.0.0.1",
            "-mp",
            // SIPp echoes audio on this port and video on the one two above.
            &free_even_ports(4).to_string(),
            "-rtp_echo",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_err",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend_from_slice(extra);
        a
    }

    /// SIPp playing `scenario` once towards voipd's SIP `port` as user alice, echoing the
    /// RTP it gets, logging as `name`.
    pub fn echoing_uac(dir: &Path, name: &str, scenario: &str, port: u16) -> Sipp {
        let mut args = vec![format!("127.0.0.1:{port}"), "-s".into(), "alice".into()];
        args.extend(Sipp::echoing_args(scenario, &[]));
        Sipp::spawn(dir, name, &args)
    }

    /// SIPp playing `scenario` (tests/sipp) once as a client towards voipd's SIP `port`,
    /// as user alice.
    pub fn client(dir: &Path, scenario: &str, port: u16) -> Sipp {
        Sipp::client_from(dir, scenario, scenario, "127.0.0.1", port, "alice", 1)
    }

    /// SIPp playing `scenario` `calls` times as a client from the loopback address `ip`
    /// towards voipd's SIP `port`, for user `service`, logging as `name`.
    pub fn client_from(
        dir: &Path,
        name: &str,
        scenario: &str,
        ip: &str,
        port: u16,
        service: &str,
        calls: u32,
    ) -> Sipp {
        let to = [format!("127.0.0.1:{port}"), "-s".into(), service.into()];
        Sipp::scenario(dir, name, scenario, ip, free_port(), calls, &to)
    }

    /// SIPp playing `scenario` as a server on `port` for `calls` calls, bound when this
    /// returns.
    pub fn server(dir: &Path, scenario: &str, port: u16, calls: u32) -> Sipp {
        Sipp::server_at(dir, scenario, scenario, "127.0.0.1", port, calls)
    }

    /// As [`Sipp::server`], on the loopback address `ip`, logging as `name` (several
    /// servers may play one scenario).
    pub fn server_at(
        dir: &Path,
        name: &str,
        scenario: &str,
        ip: &str,
        port: u16,
        calls: u32,
    ) -> Sipp {
        let mut sipp = Sipp::scenario(dir, name, scenario, ip, port, calls, &[]);
        sipp.wait_bound(port);
        sipp
    }

    /// Waits until SIPp holds UDP `port`, so a request sent now is not lost to a
    /// process still starting; fails with SIPp's output if it ends first (a port it
    /// could not bind, a scenario it could not read).
    pub fn wait_bound(&mut self, port: u16) {
        let deadline = Instant::now() + PATIENCE;
        while !udp_port_bound(port) {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "sipp ended ({st}) before it bound {port}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sipp did not bind {port} within {PATIENCE:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn scenario(
        dir: &Path,
        name: &str,
        scenario: &str,
        ip: &str,
        port: u16,
        calls: u32,
        extra: &[String],
    ) -> Sipp {
        let mut args = extra.to_vec();
        args.extend(
            [
                "-sf",
                &sipp_scenario(scenario).display().to_string(),
                "-i",
                ip,
                "-p",
                &port.to_string(),
                "-m",
                &calls.to_string(),
                "-nostdin",
                "-timeout",
                "60s",
                "-timeout_error",
                "-trace_err",
            ]
            .map(String::from),
        );
        Sipp::spawn(dir, name, &args)
    }

    /// Waits for SIPp to end by itself; its exit code (0: every call passed).
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                stop_child(&mut c);
                panic!("sipp did not finish within {limit:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}

pub fn sipp_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// (successful, failed) calls from the last row of a SIPp `-trace_stat` CSV.
pub fn sipp_totals(csv: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split(';').collect();
    let last: Vec<&str> = lines.next_back().expect("a stats row").split(';').collect();
    let col = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column"));
        last.get(i)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("bad {name}"))
    };
    (col("SuccessfulCall(C)"), col("FailedCall(C)"))
}
