//! Harness for the end-to-end tests: runs the real `voipd` and `voipctl` binaries and the
//! real peers in a private temp directory each, and stops them by PID.

pub mod audio;
pub mod baresip;
pub mod capture;
pub mod dbus;
pub mod dns;
pub mod mqtt;
pub mod netns;
pub mod peers;
pub mod picture;
pub mod pki;

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long anything in these tests may take to happen before the test fails. Generous:
/// CI shares two cores with the build.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A binary of this workspace, built next to this test's own executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries first with `cargo build --workspace --bins` \
         (./dev test does this)",
        path.display()
    );
    path
}

/// A program the tests need from the system. Fails with how to install it.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` not found: install it with `apt-get install {package}` (./dev test does this)"
        )
    })
}

/// The Python with grpcio in it: $VOIPD_TEST_PYTHON, else the venv ./dev test makes.
pub fn python() -> PathBuf {
    let py = std::env::var_os("VOIPD_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/voipd-venv/bin/python3"));
    let ok = Command::new(&py)
        .args(["-c", "import grpc, grpc_reflection"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import grpc and grpc_reflection: run `python3 -m venv /var/tmp/voipd-venv && \
         /var/tmp/voipd-venv/bin/pip install grpcio grpcio-reflection` (./dev test does this), \
         or set VOIPD_TEST_PYTHON",
        py.display()
    );
    py
}

/// A scripts file under tests/py.
pub fn py_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py").join(name)
}

/// A private world for one daemon: its own HOME, config and runtime directories, and a
/// systemd notify socket to hear READY=1 on.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub notify: UnixDatagram,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("voipd-test-")
            .tempdir()
            .expect("temp dir");
        for sub in ["home", "config/voipd", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let notify =
            UnixDatagram::bind(dir.path().join("notify.sock")).expect("bind notify socket");
        Sandbox { dir, notify }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where a user daemon in this sandbox reads its config by default.
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config/voipd/config.toml")
    }

    /// Where a user daemon in this sandbox puts its socket by default.
    pub fn socket(&self) -> PathBuf {
        self.path().join("run/voipd/voipd.sock")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// A command with this sandbox's environment and nothing inherited that could change
    /// what the daemon does.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path().join("home"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("XDG_STATE_HOME", self.path().join("state"))
            .env("TMPDIR", self.path())
            .current_dir(self.path())
            .stdin(Stdio::null());
        c
    }

    /// Starts voipd with `args`, stderr to a log file in the sandbox, NOTIFY_SOCKET set.
    pub fn spawn_daemon(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Daemon {
        self.spawn_daemon_as(None, args, extra_env)
    }

    /// [`Sandbox::spawn_daemon`], run as `user` (see [`Sandbox::open_to_all`]).
    pub fn spawn_daemon_as(
        &self,
        user: Option<&str>,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Daemon {
        let prefix = match user {
            Some(u) => [vec!["setpriv".to_string()], setpriv_args(u)].concat(),
            None => Vec::new(),
        };
        self.spawn_daemon_via(&prefix, args, extra_env)
    }

    /// Starts voipd, and waits for READY=1, with at most `nofile` open files (soft and
    /// hard limit, as a unit's LimitNOFILE sets them).
    pub fn start_daemon_with_nofile(&self, nofile: u64) -> Daemon {
        require_tool("prlimit", "util-linux");
        let prefix = ["prlimit".to_string(), format!("--nofile={nofile}:{nofile}")];
        let mut d = self.spawn_daemon_via(&prefix, &[], &[]);
        self.wait_notify(|m| m.contains("READY=1"), &mut d);
        d
    }

    /// Runs voipd through `prefix` (a program that execs it: its PID is voipd's).
    fn spawn_daemon_via(
        &self,
        prefix: &[String],
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Daemon {
        let log = self.path().join(format!("voipd-{}.log", unique()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = self.command(program);
                c.args(rest).arg(bin("voipd"));
                c
            }
            None => self.command(bin("voipd")),
        };
        cmd.args(args)
            .env("NOTIFY_SOCKET", self.path().join("notify.sock"))
            .stdout(file.try_clone().expect("dup log"))
            .stderr(file);
        // For a person debugging a test: the daemons' log filter (e.g. "rice_proto=debug").
        if let Ok(filter) = std::env::var("VOIPD_TEST_RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn voipd");
        Daemon {
            child: Some(child),
            log,
        }
    }

    /// Starts voipd on `host` (inside its network namespace) and waits for READY=1.
    pub fn start_daemon_on(&self, host: &netns::Host) -> Daemon {
        let mut d = self.spawn_daemon_via(&host.prefix(), &[], &[]);
        self.wait_notify(|m| m.contains("READY=1"), &mut d);
        d
    }

    /// Starts voipd and waits for READY=1.
    pub fn start_daemon(&self) -> Daemon {
        let mut d = self.spawn_daemon(&[], &[]);
        let msgs = self.wait_notify(|m| m.contains("READY=1"), &mut d);
        assert!(
            msgs.iter().any(|m| m.contains("STATUS=")),
            "READY came without STATUS: {msgs:?}"
        );
        d
    }

    /// Collects sd_notify messages until one satisfies `done`; fails if the daemon exits
    /// or PATIENCE runs out first.
    pub fn wait_notify(&self, done: impl Fn(&str) -> bool, daemon: &mut Daemon) -> Vec<String> {
        self.notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let hit = done(&msg);
                    seen.push(msg);
                    if hit {
                        return seen;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if let Some(status) = daemon.try_exit() {
                        panic!(
                            "voipd exited ({status}) before notifying; log:\n{}",
                            daemon.log()
                        );
                    }
                }
                // A signal to this test process (another test's child ending) is not news.
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("notify socket: {e} ({:?})", e.kind()),
            }
        }
        panic!(
            "no matching sd_notify message within {PATIENCE:?}; saw {seen:?}; log:\n{}",
            daemon.log()
        );
    }

    /// The SIP port of this sandbox's running daemon, from `voipctl status` (its first
    /// udp listener: the ports tests let it choose).
    pub fn sip_port(&self) -> u16 {
        let out = self.voipctl(&["--json", "status"]);
        let s: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
        s["listening"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str()?.strip_prefix("udp:"))
            .find_map(|a| a.rsplit(':').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no udp listener in {s}"))
    }

    /// Lets another user run a daemon here: the sandbox's directories become writable by
    /// all (they are private temp dirs, removed after the test).
    pub fn open_to_all(&self) {
        use std::os::unix::fs::PermissionsExt;
        for sub in ["", "home", "config", "config/voipd", "run"] {
            std::fs::set_permissions(
                self.path().join(sub),
                std::fs::Permissions::from_mode(0o1777),
            )
            .expect("chmod sandbox");
        }
    }

    /// Runs voipctl against this sandbox's daemon and returns its output.
    /// A shell line run as a script would, with voipctl on PATH and this sandbox's socket.
    pub fn script(&self, line: &str) -> Output {
        let voipctl = bin("voipctl");
        let dir = voipctl.parent().expect("voipctl's directory");
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.command("sh")
            .arg("-c")
            .arg(line)
            .env("PATH", path)
            .env("VOIPD_SOCKET", self.socket())
            .output()
            .expect("run sh")
    }

    pub fn voipctl(&self, args: &[&str]) -> Output {
        self.command(bin("voipctl"))
            .args(args)
            .output()
            .expect("run voipctl")
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// A number no other call in this test process got: for file names.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A running voipd. Dropping it kills the process by PID if it still runs.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .expect("running daemon")
    }

    pub fn signal(&self, sig: libc::c_int) {
        // kill(2) on our own child's PID.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the daemon to exit on its own, failing the test after PATIENCE.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(s) = self.try_exit() {
                self.child = None;
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "voipd did not exit within {PATIENCE:?}; log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The file its stderr goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Resident memory from /proc/PID/status, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A local user named `name` (created as a system user if missing; the tests run as
/// root), optionally in `group` (created too). `voipd` is made as an install makes it, by
/// systemd-sysusers from systemd/sysusers.d/voipd.conf (home /var/lib/voipd, in `audio`).
pub fn ensure_user(name: &str, group: Option<&str>) {
    let exists = |db: &str, key: &str| {
        Command::new("getent")
            .args([db, key])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if name == "voipd" {
        ensure_voipd_user(group);
        return;
    }
    if let Some(g) = group
        && !exists("group", g)
    {
        let out = Command::new("groupadd").args(["--system", g]).output();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "groupadd {g}: {out:?}"
        );
    }
    if !exists("passwd", name) {
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ]);
        match group {
            Some(g) if g == name => cmd.args(["--gid", g]),
            Some(g) => cmd.args(["--groups", g]),
            None => &mut cmd,
        };
        let out = cmd.arg(name).output();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "useradd {name} (the tests must run as root to create users): {out:?}"
        );
    } else if let Some(g) = group {
        // Made earlier, perhaps by another test with another group.
        let out = Command::new("usermod").args(["-a", "-G", g, name]).output();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "usermod {name}: {out:?}"
        );
    }
}

/// The system service's user, from the shipped sysusers.d file; one made earlier (by
/// useradd, or an older sysusers file) keeps its home but is put in `audio` as well.
fn ensure_voipd_user(group: Option<&str>) {
    let sysusers = require_tool("systemd-sysusers", "systemd");
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/sysusers.d/voipd.conf");
    let out = Command::new(sysusers).arg(&conf).output();
    assert!(
        out.as_ref().is_ok_and(|o| o.status.success()),
        "systemd-sysusers {} (the tests must run as root to create users): {out:?}",
        conf.display()
    );
    // sysusers applies `m voipd audio` to a user that existed too; usermod makes sure of it
    // (it is idempotent). `voipd` is the user's own group, not a supplementary one.
    let groups = ["audio"].into_iter().chain(group.filter(|&g| g != "voipd"));
    for g in groups {
        let out = Command::new("usermod")
            .args(["-a", "-G", g, "voipd"])
            .output();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "usermod -a -G {g} voipd: {out:?}"
        );
    }
}

/// setpriv(1) arguments that run the program after them as `user`, with its groups.
/// setpriv execs, so the child's pid is the program's and killing it stops the program.
pub fn setpriv_args(user: &str) -> Vec<String> {
    let out = Command::new("id").args(["-gn", user]).output().expect("id");
    assert!(out.status.success(), "no user {user}");
    let group = String::from_utf8_lossy(&out.stdout).trim().to_string();
    vec![
        format!("--reuid={user}"),
        format!("--regid={group}"),
        "--init-groups".into(),
        "--".into(),
    ]
}

/// A command run as `user` (see [`setpriv_args`]).
pub fn command_as(user: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("setpriv");
    c.args(setpriv_args(user)).arg(program);
    c
}

/// Polls `cond` until it holds; fails the test after PATIENCE.
pub fn wait_until(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {PATIENCE:?} waiting for: {what}");
}

/// Waits for a child process to exit on its own; kills it and fails after PATIENCE.
pub fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().expect("wait for child") {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("child process did not exit within {PATIENCE:?}");
}

/// `voipctl --json watch` running into a file, registered with the daemon before this
/// returns. Kill the child when done; read with [`watched`].
pub fn watch_events(sb: &Sandbox) -> (Child, PathBuf) {
    let path = sb.path().join(format!("watch-{}.jsonl", unique()));
    let child = sb
        .command(bin("voipctl"))
        .args(["--json", "watch"])
        .stdout(std::fs::File::create(&path).expect("events file"))
        .spawn()
        .expect("voipctl watch");
    wait_until(
        || stdout(&sb.voipctl(&["--json", "status"])).contains("\"watchers\":1"),
        "the watcher to be registered",
    );
    (child, path)
}

/// The events a [`watch_events`] file holds so far.
pub fn watched(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The daemon's accounts, as `voipctl --json accounts` lists them.
pub fn accounts(sb: &Sandbox) -> Vec<serde_json::Value> {
    let out = sb.voipctl(&["--json", "accounts"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    v["accounts"].as_array().cloned().unwrap_or_default()
}

/// The calls `voipctl --json calls` lists.
pub fn calls(sb: &Sandbox) -> Vec<serde_json::Value> {
    let out = sb.voipctl(&["--json", "calls"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    v["calls"].as_array().cloned().unwrap_or_default()
}

/// Waits for a call that `fits`; returns it as `voipctl --json calls` shows it.
pub fn wait_call_where(
    sb: &Sandbox,
    fits: impl Fn(&serde_json::Value) -> bool,
    what: &str,
) -> serde_json::Value {
    let mut found = None;
    wait_until(
        || {
            found = calls(sb).into_iter().find(|c| fits(c));
            found.is_some()
        },
        what,
    );
    found.unwrap_or_default()
}

/// Runs voipctl and fails the test if it fails.
pub fn ok(sb: &Sandbox, args: &[&str]) -> Output {
    let o = sb.voipctl(args);
    assert!(o.status.success(), "{args:?}: {}", describe(&o));
    o
}

pub fn account(sb: &Sandbox, id: &str) -> serde_json::Value {
    accounts(sb)
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no account {id}"))
}

/// Waits until account `id` is in `state` (as voipctl names it); returns the account.
pub fn wait_account_state(
    sb: &Sandbox,
    id: &str,
    state: &str,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let a = account(sb, id);
        if a["state"] == state {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "{id} not {state} within {within:?}: {a}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What a Python grpcio client that knows no .proto file (server reflection) gets from
/// `voipd.v1.Calls.METHOD` with `request` (JSON) over the daemon's socket.
pub fn grpc_calls(sb: &Sandbox, method: &str, request: &str) -> serde_json::Value {
    let out = Command::new(python())
        .arg(py_script("grpc_client.py"))
        .args([
            sb.socket().to_string_lossy().as_ref(),
            "voipd.v1.Calls",
            method,
            request,
        ])
        .output()
        .expect("run python");
    assert!(out.status.success(), "python: {}", describe(&out));
    serde_json::from_str(&stdout(&out)).expect("JSON from the client")
}
