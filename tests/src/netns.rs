//! A small internet in network namespaces, made and torn down by each test: a "provider"
//! network (the registrar, STUN/TURN server and public far phones, on 203.0.113.0/24) and
//! homes behind routers that NAT with nftables masquerade. Processes start in a namespace
//! through `ip netns exec`, which execs them (their PID is the one the test holds).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::require_tool;

/// How a home router maps and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Linux's masquerade onto a port range: one public port per inside socket, whatever
    /// the destination (endpoint-independent mapping), and only the endpoints the inside
    /// sent to may answer (address- and port-dependent filtering).
    PortRestricted,
    /// `masquerade fully-random`: a new public port for every destination, so the
    /// address a STUN server sees is not the one a far phone would.
    Symmetric,
}

/// One host: a namespace and its address.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    pub ip: IpAddr,
}

impl Host {
    /// `program` run inside this host's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c
    }

    /// The prefix that runs a program in this namespace (for harness helpers that take
    /// one).
    pub fn prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.ns].map(String::from).to_vec()
    }

    /// Runs `f` on a thread inside this namespace: sockets it makes stay there, so a test
    /// can reach a peer's control port on the namespace's own loopback.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = PathBuf::from("/run/netns").join(&self.ns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open the namespace");
            nix_setns(ns.as_fd());
            f()
        })
        .join()
        .expect("thread in namespace")
    }
}

fn nix_setns(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // setns(2) moves only the calling thread, which is why `within` runs on its own.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A home: the host inside and the router that NATs it.
pub struct Home {
    pub host: Host,
    pub router: Host,
    /// The router's address on the provider network: what the internet sees.
    pub public: IpAddr,
    pub kind: NatKind,
}

impl Home {
    /// Forgets every mapping the router holds (`conntrack -F`), as a router reboot or a
    /// mapping timeout would.
    pub fn flush(&self) {
        run(self.router.command("conntrack").args(["-F"]), true);
    }

    /// The router's NAT moves to public ports `lo..=hi` (mappings made from now on).
    pub fn remap_ports(&self, lo: u16, hi: u16) {
        let rule = masquerade_rule(self.kind, Some((lo, hi)));
        run(
            self.router.command("nft").args(["flush chain ip nat post"]),
            true,
        );
        run(
            self.router
                .command("nft")
                .arg(format!("add rule ip nat post {rule}")),
            true,
        );
    }
}

fn masquerade_rule(kind: NatKind, ports: Option<(u16, u16)>) -> String {
    let to = ports
        .map(|(lo, hi)| format!(" to :{lo}-{hi}"))
        .unwrap_or_default();
    let random = match kind {
        NatKind::PortRestricted => "",
        NatKind::Symmetric => " fully-random",
    };
    // A port range needs the protocol said first.
    let l4 = if ports.is_some() {
        " meta l4proto { tcp, udp }"
    } else {
        ""
    };
    format!("oifname \"wan\"{l4} masquerade{to}{random}")
}

/// The provider network and the homes on it; everything goes when it drops.
pub struct World {
    namespaces: Vec<String>,
    pub provider: Host,
    pub homes: Vec<Home>,
}

/// The ports a router maps its home to. Not the inside port numbers: a NAT that keeps
/// them would hide a phone that offers its inside port instead of asking STUN.
pub const PUBLIC_PORTS: Option<(u16, u16)> = Some((20000, 29999));

/// The provider network's prefix, as the test names it (TEST-NET-3).
pub const PROVIDER_NET: &str = "203.0.113";

impl World {
    /// The provider network with one home per entry of `homes`; home `i` is
    /// 192.168.(i+1).2 behind the router at 203.0.113.(10+i).
    pub fn new(homes: &[NatKind]) -> World {
        require_tool("ip", "iproute2");
        require_tool("nft", "nftables");
        require_tool("conntrack", "conntrack");
        assert!(
            Path::new("/proc/self/ns/net").exists(),
            "network namespaces are needed (run as root on Linux)"
        );
        sweep_stale();
        let tag = format!("vd{}x{}", std::process::id(), crate::unique());
        let mut w = World {
            namespaces: Vec::new(),
            provider: Host {
                ns: format!("{tag}p"),
                ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            },
            homes: Vec::new(),
        };
        w.add_ns(&w.provider.ns.clone());
        let p = w.provider.ns.clone();
        ip(&p, "link add lan type bridge");
        ip(&p, "link set lan up");
        ip(&p, &format!("addr add {PROVIDER_NET}.1/24 dev lan"));
        // The rest of the internet: what goes to an address nobody here has (a home's
        // private one, from a TURN relay or a router) vanishes into it as it would out
        // there, rather than failing at once with "network unreachable" (coturn stops
        // relaying for an allocation whose send failed so). Its gateway has a MAC address
        // no one on the bridge takes.
        internet(&p, "lan");
        for (i, kind) in homes.iter().enumerate() {
            let n = u8::try_from(i).expect("few homes");
            let router = format!("{tag}r{i}");
            let inside = format!("{tag}h{i}");
            w.add_ns(&router);
            w.add_ns(&inside);
            // The router's WAN on the provider's bridge, its LAN to the home.
            ip(
                &router,
                &format!("link add wan type veth peer name up{i} netns {p}"),
            );
            ip(&p, &format!("link set up{i} master lan up"));
            ip(
                &router,
                &format!("link add home type veth peer name eth0 netns {inside}"),
            );
            let public = Ipv4Addr::new(203, 0, 113, 10 + n);
            ip(&router, &format!("addr add {public}/24 dev wan"));
            ip(&router, "link set wan up");
            internet(&router, "wan");
            ip(
                &router,
                &format!("addr add 192.168.{}.1/24 dev home", n + 1),
            );
            ip(&router, "link set home up");
            ip(
                &inside,
                &format!("addr add 192.168.{}.2/24 dev eth0", n + 1),
            );
            ip(&inside, "link set eth0 up");
            ip(
                &inside,
                &format!("route add default via 192.168.{}.1", n + 1),
            );
            run(
                Command::new("ip").args(["netns", "exec", &router]).args([
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ip_forward=1",
                ]),
                true,
            );
            // Nothing from outside reaches the home unless it answers what went out, nor
            // the router itself: a stranger's packet to a public port is dropped before
            // conntrack keeps it, so it cannot take a port the home is about to use (as a
            // router that answered it would, turning the NAT symmetric).
            let ruleset = format!(
                "table ip nat {{\n chain post {{\n  type nat hook postrouting priority srcnat;\n  {}\n }}\n}}\n\
                 table ip filter {{\n chain pass {{\n  type filter hook forward priority filter; policy drop;\n  \
                 ct state established,related accept\n  iifname \"home\" accept\n }}\n \
                 chain own {{\n  type filter hook input priority filter; policy drop;\n  \
                 ct state established,related accept\n  iifname {{ \"home\", \"lo\" }} accept\n }}\n}}\n",
                masquerade_rule(*kind, PUBLIC_PORTS)
            );
            let file = std::env::temp_dir().join(format!("{router}.nft"));
            std::fs::write(&file, ruleset).expect("write ruleset");
            run(
                Command::new("ip")
                    .args(["netns", "exec", &router, "nft", "-f"])
                    .arg(&file),
                true,
            );
            let _ = std::fs::remove_file(&file);
            w.homes.push(Home {
                host: Host {
                    ns: inside,
                    ip: IpAddr::V4(Ipv4Addr::new(192, 168, n + 1, 2)),
                },
                router: Host {
                    ns: router,
                    ip: IpAddr::V4(Ipv4Addr::new(192, 168, n + 1, 1)),
                },
                public: IpAddr::V4(public),
                kind: *kind,
            });
        }
        w
    }

    fn add_ns(&mut self, name: &str) {
        run(Command::new("ip").args(["netns", "add", name]), true);
        self.namespaces.push(name.to_string());
        ip(name, "link set lo up");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Removes namespaces a crashed run left (their name carries a PID that is gone).
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("vd")
            .and_then(|r| r.split('x').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// A default route in `ns` out of `dev` to the rest of the internet (see [`World::new`]).
fn internet(ns: &str, dev: &str) {
    ip(
        ns,
        &format!("neigh add {PROVIDER_NET}.254 lladdr 02:00:00:00:00:fe dev {dev} nud permanent"),
    );
    ip(
        ns,
        &format!("route add default via {PROVIDER_NET}.254 dev {dev}"),
    );
}

fn ip(ns: &str, args: &str) {
    run(
        Command::new("ip")
            .args(["-n", ns])
            .args(args.split_whitespace()),
        true,
    );
}

fn run(c: &mut Command, must: bool) {
    let out = c.output().expect("run a network command");
    if must {
        assert!(
            out.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
