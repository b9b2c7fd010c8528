//! A private dbus-daemon for one test, and the stock D-Bus clients (busctl, gdbus) aimed
//! at it. voipd is pointed at it through DBUS_SESSION_BUS_ADDRESS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::{describe, require_tool, stdout, unique, wait_until};

pub const NAME: &str = "org.voipd.Voipd";
pub const ROOT: &str = "/org/voipd/Voipd";

pub struct Bus {
    child: Child,
    pub address: String,
    dir: PathBuf,
}

const SESSION_POLICY: &str = r#"<type>session</type>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>"#;

/// The default policy of Debian's system bus (/usr/share/dbus-1/system.conf): services
/// punch their own holes with a policy file.
const SYSTEM_POLICY: &str = r#"<type>system</type>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>"#;

impl Bus {
    /// A session-type bus that lets anyone do anything, on a socket in `dir`.
    pub fn start(dir: &Path) -> Bus {
        Bus::launch(dir, SESSION_POLICY, false)
    }

    /// A system-type bus with the system bus's default policy plus `policy_file`, on a
    /// socket other users can reach.
    pub fn start_system(dir: &Path, policy_file: &Path) -> Bus {
        let policy = format!(
            "{SYSTEM_POLICY}\n  <include>{}</include>",
            policy_file.display()
        );
        Bus::launch(dir, &policy, true)
    }

    fn launch(dir: &Path, policy: &str, open: bool) -> Bus {
        let dbus = require_tool("dbus-daemon", "dbus");
        require_tool("busctl", "systemd");
        require_tool("gdbus", "libglib2.0-bin");
        let dir = dir.join(format!("bus-{}", unique()));
        std::fs::create_dir_all(&dir).expect("bus dir");
        if open {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .expect("chmod bus dir");
        }
        let socket = dir.join("socket");
        let conf = dir.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  {policy}
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("bus config");
        let log = dir.join("bus.log");
        let child = Command::new(dbus)
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("bus log"))
            .spawn()
            .expect("start dbus-daemon");
        let address = format!("unix:path={}", socket.display());
        wait_until(
            || socket.exists(),
            &format!(
                "dbus-daemon to listen; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        );
        Bus {
            child,
            address,
            dir,
        }
    }

    /// What dbus-daemon said (it complains here about bad policy files).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bus.log")).unwrap_or_default()
    }

    /// The environment voipd needs to find this bus.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("DBUS_SESSION_BUS_ADDRESS", self.address.as_str()),
            ("DBUS_SYSTEM_BUS_ADDRESS", self.address.as_str()),
        ]
    }

    pub fn busctl(&self, args: &[&str]) -> Output {
        self.busctl_as(None, args)
    }

    /// busctl run as `user`, or as ourselves.
    pub fn busctl_as(&self, user: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = match user {
            Some(u) => crate::command_as(u, "busctl"),
            None => Command::new("busctl"),
        };
        cmd.arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .expect("run busctl")
    }

    /// busctl, which must succeed; its stdout.
    pub fn busctl_ok(&self, args: &[&str]) -> String {
        let out = self.busctl(args);
        assert!(out.status.success(), "busctl {args:?}: {}", describe(&out));
        stdout(&out)
    }

    pub fn gdbus(&self, args: &[&str]) -> Output {
        let (verb, rest) = args.split_first().expect("a gdbus verb");
        Command::new("gdbus")
            .arg(verb)
            .args(["--address", &self.address])
            .args(rest)
            .output()
            .expect("run gdbus")
    }

    /// A property of a voipd object as busctl prints it, e.g. `s "active"` or `b true`.
    pub fn property(&self, path: &str, iface: &str, name: &str) -> String {
        self.busctl_ok(&["get-property", NAME, path, iface, name])
            .trim()
            .to_string()
    }

    /// Waits until voipd owns its name on this bus.
    pub fn wait_for_voipd(&self) {
        wait_until(
            || stdout(&self.busctl(&["list", "--no-legend"])).contains(NAME),
            "voipd to take its D-Bus name",
        );
    }

    /// `gdbus monitor` on voipd's name, into a file; read it with [`Monitor::text`].
    pub fn monitor(&self) -> Monitor {
        let path = self.dir.join(format!("monitor-{}.txt", unique()));
        let child = Command::new("gdbus")
            .args(["monitor", "--address", &self.address, "--dest", NAME])
            .stdout(std::fs::File::create(&path).expect("monitor file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("gdbus monitor");
        // gdbus prints this once its match rules are in place.
        let m = Monitor { child, path };
        wait_until(
            || m.text().contains("Monitoring signals"),
            "gdbus monitor to start",
        );
        m
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Monitor {
    child: Child,
    path: PathBuf,
}

impl Monitor {
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
