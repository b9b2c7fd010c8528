//! One run of a hook program: the event in, its first line out, killed at its deadline.

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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
    /// A deciding hook printed its action (at once, before it exits).
    Decided {
        call: u64,
        action: Action,
        hook: String,
    },
    /// A run is over, however it ended.
    Done { decides: Option<u64> },
}

/// How much of a hook's output is read: an action is one line, and a log is no place for
/// a novel.
const OUTPUT_LIMIT: u64 = 4096;

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
    tracing::debug!(hook = %name, "hook {name} started in {:?}", started.elapsed());
    let pid = child.id();
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
    let decides = job.decides;
    let reports2 = reports.clone();
    let hook_name = name.clone();
    let read_out = async move {
        let Some(o) = stdout else { return };
        let mut lines = BufReader::new(o.take(OUTPUT_LIMIT)).lines();
        let mut first = true;
        while let Ok(Some(line)) = lines.next_line().await {
            match decides {
                Some(call) if first => {
                    first = false;
                    match Action::parse(&line) {
                        Ok(action) => {
                            let _ = reports2
                                .send(Report::Decided {
                                    call,
                                    action,
                                    hook: hook_name.clone(),
                                })
                                .await;
                        }
                        Err(e) => {
                            tracing::warn!(hook = %hook_name, "hook {hook_name}: {e}; taken as continue")
                        }
                    }
                }
                _ => tracing::info!(hook = %hook_name, "hook {hook_name}: {line}"),
            }
        }
    };
    let read_err = async move {
        let mut text = String::new();
        if let Some(e) = stderr {
            let _ = e.take(OUTPUT_LIMIT).read_to_string(&mut text).await;
        }
        text
    };
    let whole = async { tokio::join!(feed, read_out, read_err, child.wait()) };
    match tokio::time::timeout(job.hook.timeout, whole).await {
        Ok(((), (), err, status)) => match status {
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
        },
        Err(_) => {
            kill_group(pid);
            let _ = child.wait().await;
            tracing::warn!(
                hook = %name,
                "hook {name} killed after {:.1} s (timeout_secs)",
                job.hook.timeout.as_secs_f64()
            );
        }
    }
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

/// Kills the hook and whatever it started (its process group).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
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
