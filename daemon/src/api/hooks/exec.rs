//! One run of a hook program: the event in, its first line out, killed at its deadline.

use std::process::Stdio;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::config::Hook;

/// What a `call_incoming` hook may print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    Answer,
    Reject,
    Busy,
    Forward(String),
    Continue,
}

impl Action {
    /// A line a hook printed, if it is an action.
    pub(super) fn parse(line: &str) -> Result<Action, String> {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let action = match word.to_ascii_lowercase().as_str() {
            "answer" => Action::Answer,
            "reject" => Action::Reject,
            "busy" => Action::Busy,
            "continue" | "" => Action::Continue,
            "forward" if !rest.is_empty() => return Ok(Action::Forward(rest.to_string())),
            "forward" => return Err("forward needs a target: forward sip:bob@example.com".into()),
            _ => {
                return Err(format!(
                    "{line:?} is not answer, reject, busy, forward TARGET or continue"
                ));
            }
        };
        if rest.is_empty() {
            Ok(action)
        } else {
            Err(format!("{word} takes nothing after it, not {rest:?}"))
        }
    }
}

/// One run to make.
pub(super) struct Job {
    pub hook: Arc<Hook>,
    pub json: Arc<String>,
    pub vars: Arc<Vec<(&'static str, String)>>,
    /// For a `call_incoming` hook: the call that waits for its word.
    pub decides: Option<u64>,
}

/// What a run tells the runner.
#[derive(Debug)]
pub(super) enum Report {
    /// A deciding hook's first line (at once, before it exits): its action, `continue`
    /// for a line that is none. The call waits for it no longer.
    Decided {
        call: u64,
        action: Action,
        hook: String,
    },
    /// A run is over, however it ended; `decides` when it had not decided before.
    Done { decides: Option<u64> },
}

/// How much of a hook's output is kept: an action is one line, and a log is no place for
/// a novel. The rest is read and thrown away, so that a chatty hook is not killed by a
/// closed pipe.
const OUTPUT_LIMIT: usize = 4096;

/// Kills the hook's whole process group unless it was let go: at its deadline, and when
/// the runner drops an unfinished run at shutdown.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        let Some(pid) = self.0.take().and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A hook's output, line by line, as text even where it is not UTF-8: the first
/// `OUTPUT_LIMIT` bytes; the rest is read and dropped.
struct Lines<R> {
    r: BufReader<R>,
    kept: usize,
    buf: Vec<u8>,
}

impl<R: tokio::io::AsyncRead + Unpin> Lines<R> {
    fn new(r: R) -> Self {
        Lines {
            r: BufReader::new(r),
            kept: 0,
            buf: Vec::new(),
        }
    }

    /// The next line kept; None at the end.
    async fn next(&mut self) -> Option<String> {
        loop {
            self.buf.clear();
            match self.r.read_until(b'\n', &mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) if self.kept < OUTPUT_LIMIT => {
                    self.kept += n;
                    let text = String::from_utf8_lossy(&self.buf);
                    return Some(text.trim_end_matches(['\n', '\r']).to_string());
                }
                Ok(_) => {}
            }
        }
    }
}

/// Runs a hook to its end or its deadline, then reports. Never fails: what goes wrong is
/// logged with the hook's name.
pub(super) async fn run(job: Job, reports: mpsc::Sender<Report>) {
    let name = &job.hook.name;
    let started = tokio::time::Instant::now();
    let mut cmd = Command::new(&job.hook.exec[0]);
    cmd.args(&job.hook.exec[1..])
        .envs(job.vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a shell script's children die with it.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(hook = %name, "hook {name} could not start {:?}: {e}", job.hook.exec[0]);
            let _ = reports
                .send(Report::Done {
                    decides: job.decides,
                })
                .await;
            return;
        }
    };
    let mut group = Group(child.id());
    tracing::debug!(hook = %name, "hook {name} started in {:?}", started.elapsed());
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let json = job.json.clone();
    let feed = async move {
        if let Some(mut i) = stdin {
            // A hook that does not read its input closes the pipe: that is fine.
            let _ = i.write_all(json.as_bytes()).await;
            let _ = i.write_all(b"\n").await;
        }
    };
    let reports2 = reports.clone();
    let hook_name = name.clone();
    let decides = job.decides;
    let decided = Arc::new(AtomicBool::new(false));
    let decided2 = decided.clone();
    // A deciding hook's first line is reported the moment it is read, not at its exit.
    let read_out = async move {
        let Some(o) = stdout else { return };
        let mut lines = Lines::new(o);
        let mut first = decides;
        while let Some(line) = lines.next().await {
            match first.take() {
                Some(call) => {
                    let action = Action::parse(&line).unwrap_or_else(|e| {
                        tracing::warn!(hook = %hook_name, "hook {hook_name}: {e}; taken as continue");
                        Action::Continue
                    });
                    decided2.store(true, Ordering::Relaxed);
                    let _ = reports2
                        .send(Report::Decided {
                            call,
                            action,
                            hook: hook_name.clone(),
                        })
                        .await;
                }
                None => tracing::info!(hook = %hook_name, "hook {hook_name}: {line}"),
            }
        }
    };
    let read_err = async move {
        let mut text = String::new();
        if let Some(e) = stderr {
            let mut lines = Lines::new(e);
            while let Some(l) = lines.next().await {
                text.push_str(&l);
                text.push('\n');
            }
        }
        text
    };
    let whole = async { tokio::join!(feed, read_out, read_err, child.wait()) };
    let timed_out = match tokio::time::timeout(job.hook.timeout, whole).await {
        Ok(((), (), err, status)) => {
            match status {
                Ok(s) if s.success() => {
                    tracing::debug!(hook = %name, "hook {name} done in {:?}", started.elapsed());
                }
                Ok(s) => tracing::warn!(
                    hook = %name,
                    "hook {name} failed ({}){}",
                    describe(s),
                    first_line(&err)
                ),
                Err(e) => tracing::warn!(hook = %name, "hook {name}: waiting for it failed: {e}"),
            }
            false
        }
        Err(_) => true,
    };
    if timed_out {
        drop(group);
        let _ = child.wait().await;
        tracing::warn!(
            hook = %name,
            "hook {name} killed after {:.1} s (timeout_secs)",
            job.hook.timeout.as_secs_f64()
        );
    } else {
        // It exited; what it left running in its group is its own business.
        group.0 = None;
    }
    // A call is settled once: by the first line, or else here.
    let decides = if decided.load(Ordering::Relaxed) {
        None
    } else {
        job.decides
    };
    let _ = reports.send(Report::Done { decides }).await;
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

fn first_line(err: &str) -> String {
    err.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_bad_lines_say_why() {
        assert_eq!(Action::parse("answer\n"), Ok(Action::Answer));
        assert_eq!(Action::parse("  REJECT "), Ok(Action::Reject));
        assert_eq!(Action::parse("busy"), Ok(Action::Busy));
        assert_eq!(Action::parse(""), Ok(Action::Continue));
        assert_eq!(
            Action::parse("forward sip:bob@example.com"),
            Ok(Action::Forward("sip:bob@example.com".into()))
        );
        assert!(Action::parse("forward").is_err());
        assert!(Action::parse("answer now").is_err());
        assert!(Action::parse("pick up").is_err());
    }
}
