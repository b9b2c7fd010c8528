//! voipctl: drive voipd from a shell or a script.

// A binary: `pub` here only means "used by other modules of voipctl".
#![allow(unreachable_pub)]

mod client;
mod cmd;
mod exit;
mod man;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd::calls::Act;
use crate::exit::Failure;

const EXAMPLES: &str = "\
Examples:
  voipctl status                  what the daemon runs with
  voipctl --json status | jq .counts
  voipctl reload                  re-read the configuration file
  voipctl watch                   follow events live (Ctrl-C to stop)
  voipctl watch --json            one JSON object per event, for scripts
  voipctl accounts                accounts and their registration state
  voipctl register home           register account \"home\" now (also retries a failed one)
  voipctl unregister home         un-REGISTER it until `register`, a reload or a restart
  voipctl dial alice              call the contact Alice (or alice at the account's domain)
  voipctl dial --wait alice && voipctl dtmf '#9' && voipctl hangup
                                  call, and once answered open the door and hang up
  voipctl answer                  answer the ringing call (reject: refuse it)
  voipctl dtmf '#9'               send DTMF on the established call
  voipctl play /srv/door-open.wav play a message into the call (or tone:HZ)
  voipctl record start --to /srv/rec/door.wav   record the call (record stop: end it)
  voipctl transfer carol          pass the call on to Carol (blind transfer)
  voipctl transfer 1 --to 2       attended: call 1's far side takes call 2's place
  voipctl conference 1 2          mix two calls: a three-way conference (split: undo)
  voipctl video on                add video to the call (off: remove it)
  voipctl video snapshot door.png the latest picture the call's video brought
  voipctl hold / resume / mute    on the only call, or give its id
  voipctl hangup                  end the only call (or give its id)
  voipctl calls                   the calls and their states
  voipctl history --missed        missed calls (and count them as seen)
  voipctl message send alice hi   send a text message (then: voipctl message list)
  voipctl message list --with alice   the conversation with a contact
  voipctl contacts add Alice -a alice@example.com -a +441865270000
  voipctl contacts import phone.vcf   vCards from another program (export: the reverse)
  voipctl contacts list           contacts with their presence (online, away, busy…)
  voipctl presence set away       what others see of us
  voipctl forward set no-answer alice --after 15
                                  unanswered calls go to Alice after 15 s of ringing
  voipctl forward show            each account's forwarding (off: `forward off RULE`)
  voipctl voicemail list          the answering machine's messages, new ones marked
  voipctl voicemail play 3 --output file:/tmp/3.wav   (no --output: the speaker)
  voipctl completions bash        shell completion (bash, zsh, fish, elvish, powershell)
  voipctl man | man -l -          this help as a manual page

Exit codes: 0 done, 1 refused or failed (no such call, the call ended; the message
says why), 2 usage error (a bad or ambiguous argument), 3 the daemon cannot be reached.";

/// Control voipd, the headless VoIP daemon.
#[derive(Parser)]
#[command(name = "voipctl", version, about, after_help = EXAMPLES)]
struct Cli {
    /// The daemon's control socket [default: $VOIPD_SOCKET, else the user daemon's
    /// $XDG_RUNTIME_DIR/voipd/voipd.sock, else the system service's /run/voipd/voipd.sock]
    #[arg(long, global = true, env = "VOIPD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Machine-readable output: one JSON document (one per line for `watch`)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

/// Media for one call: audio written as in the configuration's [audio]: "null",
/// "tone:440", "file:/path.wav" ("{id}" becomes the call's id), "file-once:…", a device
/// name; and video, whatever the account's `video` says.
#[derive(clap::Args, Clone, Default)]
pub struct AudioArgs {
    /// Where this call's audio comes from [default: audio.input]
    #[arg(long, value_name = "ENDPOINT", value_parser = absolute_file)]
    pub input: Option<String>,
    /// Where this call's audio goes [default: audio.output]
    #[arg(long, value_name = "ENDPOINT", value_parser = absolute_file)]
    pub output: Option<String>,
    /// Video in this call, both ways [default: the account's video]
    #[arg(long)]
    pub video: bool,
    /// The size of the video we send, WxH [default: video.size]
    #[arg(long, value_name = "WxH", requires = "video")]
    pub video_size: Option<String>,
    /// Pictures a second we send [default: video.fps]
    #[arg(long, value_name = "FPS", requires = "video")]
    pub video_fps: Option<u32>,
}

/// A file endpoint's relative path made absolute from where voipctl runs: the daemon's
/// working directory is another (/ under systemd), and it refuses relative paths.
fn absolute_file(s: &str) -> Result<String, String> {
    for prefix in ["file:", "file-once:"] {
        if let Some(path) = s.strip_prefix(prefix)
            && !path.is_empty()
            && !path.starts_with('/')
            && !path.starts_with('~')
        {
            let here = std::env::current_dir()
                .map_err(|e| format!("cannot tell the current directory: {e}"))?;
            return Ok(format!("{prefix}{}", here.join(path).display()));
        }
    }
    Ok(s.to_string())
}

#[derive(Subcommand)]
enum RecordVerb {
    /// Start recording a call [default: the only established one]
    Start {
        id: Option<u64>,
        /// A new .wav file, or .opus for Ogg/Opus [default: recordings/call-ID.wav in the
        /// daemon's state directory]
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
        /// Both directions mixed into one channel
        #[arg(long)]
        mono: bool,
    },
    /// Stop recording a call; the file is kept
    Stop { id: Option<u64> },
}

#[derive(Subcommand)]
enum VideoVerb {
    /// Add video to a call (or take it up again) by re-INVITE [default: the only
    /// established call]
    On {
        id: Option<u64>,
        /// The size we send, WxH [default: video.size]
        #[arg(long, value_name = "WxH")]
        size: Option<String>,
        /// Pictures a second we send [default: video.fps]
        #[arg(long)]
        fps: Option<u32>,
    },
    /// Remove a call's video by re-INVITE; the audio goes on
    Off { id: Option<u64> },
    /// The cameras the daemon sees, with their formats and sizes
    Devices,
    /// Save the latest picture of a call's received video as PNG: `snapshot [ID] FILE`
    Snapshot {
        /// [ID] FILE: the call (default: the only one with video) and the PNG to write
        #[arg(value_name = "ID|FILE", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
}

/// `transfer`'s words: `[ID] TARGET`, or `ID --to OTHER_ID`.
fn transfer_args(args: &[String], to: Option<u64>) -> Result<(Option<u64>, Act), Failure> {
    let id = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| Failure::Usage(format!("{s:?} is not a call id")))
    };
    match (args, to) {
        ([call], Some(other)) => Ok((Some(id(call)?), Act::TransferTo(other))),
        (_, Some(_)) => Err(Failure::Usage(
            "with --to, name only the call to transfer: transfer ID --to OTHER_ID".into(),
        )),
        ([target], None) => Ok((
            None,
            Act::Transfer {
                target: target.clone(),
            },
        )),
        ([call, target], None) => Ok((
            Some(id(call)?),
            Act::Transfer {
                target: target.clone(),
            },
        )),
        _ => Err(Failure::Usage("transfer [ID] TARGET".into())),
    }
}

#[derive(Subcommand)]
enum MessageVerb {
    /// Send a text message: to a contact's name, a SIP URI, user@host, or a user at the
    /// account's domain
    Send {
        /// Whom to write to
        #[arg(value_name = "WHOM")]
        to: String,
        /// The text (UTF-8)
        text: String,
        /// The account to send from [default: the first registered one]
        #[arg(long)]
        account: Option<String>,
    },
    /// The messages, oldest first [default: the last 100]; unread ones are marked, and
    /// read from then on
    List {
        /// Only those with this peer: a SIP URI, or a contact's name (all its addresses)
        #[arg(long, value_name = "WHOM")]
        with: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
        /// Do not count them as read
        #[arg(long)]
        peek: bool,
    },
}

#[derive(Subcommand)]
enum ContactsVerb {
    /// List contacts, favourites first, with their presence
    List {
        /// Only those whose name or an address contains this
        query: Option<String>,
        /// Only favourites
        #[arg(long)]
        favourites: bool,
    },
    /// Show one contact (by id or name)
    Show { contact: String },
    /// Add a contact
    Add {
        name: String,
        #[command(flatten)]
        fields: cmd::contacts::Fields,
    },
    /// Change a contact (by id or name); only what is given changes
    Edit {
        contact: String,
        #[command(flatten)]
        edit: cmd::contacts::Changes,
    },
    /// Remove a contact (by id or name)
    Remove { contact: String },
    /// Import vCards (4.0, 3.0 or 2.1; `-` for stdin); known UIDs are updated
    Import { file: PathBuf },
    /// Export all contacts as vCard 4.0 [default: to stdout]
    Export {
        /// Write to this file instead
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// The rules' names, for clap.
const RULES: [&str; 4] = ["always", "busy", "no-answer", "unavailable"];

#[derive(Subcommand)]
enum ForwardVerb {
    /// Each account's forwarding rules, and whether set live or by the configuration
    Show {
        /// Only this account
        #[arg(long)]
        account: Option<String>,
    },
    /// Forward calls by a rule: always, busy (in a call, or do not disturb), no-answer
    /// (after --after seconds) or unavailable (no sound device to answer with, or voipd
    /// stopping); to a contact's name, a SIP URI, user@host, or a number or user at the
    /// account's domain. Kept across restarts, over the configuration
    Set {
        #[arg(value_parser = RULES)]
        rule: String,
        /// Where calls go
        #[arg(value_name = "WHOM")]
        to: String,
        /// no-answer: seconds of ringing first [default: 20]
        #[arg(long, value_name = "SECS")]
        after: Option<u32>,
        /// The account [default: the first registered one]
        #[arg(long)]
        account: Option<String>,
    },
    /// Turn a rule off (all rules when none is named), whatever the configuration says
    Off {
        #[arg(value_parser = RULES)]
        rule: Option<String>,
        #[arg(long)]
        account: Option<String>,
    },
    /// Forget what was set live for a rule (or all): the configuration applies again
    Clear {
        #[arg(value_parser = RULES)]
        rule: Option<String>,
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Subcommand)]
enum VoicemailVerb {
    /// The messages, newest first, new ones marked
    List {
        /// At most this many
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
    /// Play a message (and mark it heard) [default: to the configured audio.output]
    Play {
        id: i64,
        /// Where to: "file:/path.wav", a sound device, "default"
        #[arg(long, value_name = "ENDPOINT", value_parser = absolute_file)]
        output: Option<String>,
    },
    /// Write a message's audio (WAV) to FILE (`-`: standard output)
    Export { id: i64, file: PathBuf },
    /// Remove a message and its audio
    Delete { id: i64 },
    /// Mark a message heard (--not: new again)
    Heard {
        id: i64,
        /// Mark it new again instead
        #[arg(long)]
        not: bool,
    },
}

#[derive(Subcommand)]
enum PresenceVerb {
    /// Show the presence others see of us
    Show,
    /// Set the presence others see: online, away, busy or offline
    Set {
        #[arg(value_enum)]
        status: PresenceStatus,
        /// A note shown with it
        #[arg(long)]
        note: Option<String>,
    },
}

/// What others may see of us.
#[derive(clap::ValueEnum, Clone, Copy)]
enum PresenceStatus {
    Online,
    Away,
    Busy,
    Offline,
}

impl PresenceStatus {
    fn word(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Busy => "busy",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// `--wait` and its `--timeout`, for verbs that start a call.
#[derive(clap::Args, Clone, Copy, Default)]
pub struct WaitArgs {
    /// Wait until the call is established (exit 0) or has ended (exit 1, with its code
    /// and reason); without it the command returns at once
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds, hang the call up and exit 1
    #[arg(long, value_name = "SECS", requires = "wait", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

impl From<WaitArgs> for cmd::calls::Wait {
    fn from(w: WaitArgs) -> Self {
        cmd::calls::Wait {
            wait: w.wait,
            timeout: w.timeout,
        }
    }
}

#[derive(Subcommand)]
enum Verb {
    /// Show version, uptime, configuration, listening addresses and counts
    Status,
    /// Re-read the configuration; a broken file is refused and the running one kept
    Reload,
    /// Follow the daemon's events as they happen
    Watch,
    /// Stop the daemon gracefully
    Shutdown,
    /// List the accounts with their registration state
    Accounts,
    /// Register an account now (also to retry a failed one at once)
    Register {
        /// The account's id from the configuration
        id: String,
    },
    /// Un-REGISTER an account and keep it unregistered
    Unregister {
        /// The account's id from the configuration
        id: String,
    },
    /// Call someone: a contact's name, a SIP URI, user@host, or a user or number at the
    /// account's domain; `echo` is the sound test. Returns once the call is dialling
    /// (see --wait)
    #[command(visible_alias = "call")]
    Dial {
        /// Whom to call
        #[arg(value_name = "WHOM")]
        whom: String,
        /// The account to call from [default: the first registered one]
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        audio: AudioArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Answer a ringing call [default: the only one ringing]; returns at once (see --wait)
    Answer {
        id: Option<u64>,
        #[command(flatten)]
        audio: AudioArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Refuse a ringing call: 603 Decline, or 486 Busy Here with --busy
    Reject {
        id: Option<u64>,
        /// Say 486 Busy Here instead of 603 Decline
        #[arg(long)]
        busy: bool,
    },
    /// Hang up, cancel or reject a call [default: the only call]
    Hangup { id: Option<u64> },
    /// Put a call on hold
    Hold { id: Option<u64> },
    /// Take a call off hold
    Resume { id: Option<u64> },
    /// Mute the microphone on a call (--off to unmute)
    Mute {
        id: Option<u64>,
        /// Unmute instead
        #[arg(long)]
        off: bool,
    },
    /// Send DTMF digits (0-9, *, #, A-D) on a call
    Dtmf {
        digits: String,
        /// The call [default: the only established one]
        #[arg(long)]
        call: Option<u64>,
    },
    /// Play a WAV file or a tone into a call, once, in place of the microphone
    Play {
        /// A WAV file, or tone:HZ
        #[arg(value_name = "WHAT", required_unless_present = "stop")]
        what: Option<String>,
        /// The call [default: the only established one]
        #[arg(long)]
        call: Option<u64>,
        /// A tone's length, or where to cut a file [default: 1 s of tone, all of a file]
        #[arg(long, value_name = "SECS")]
        secs: Option<f64>,
        /// Stop what is playing
        #[arg(long, conflicts_with = "what")]
        stop: bool,
    },
    /// Video in a call: add it, remove it, or save its latest picture
    Video {
        #[command(subcommand)]
        verb: VideoVerb,
    },
    /// Record a call, both directions, into a WAV file (stereo: ours left, theirs right)
    Record {
        #[command(subcommand)]
        verb: RecordVerb,
    },
    /// Pass a call on: `transfer [ID] TARGET` (blind), or `transfer ID --to OTHER_ID`
    /// (attended: the far side of ID takes the place of call OTHER_ID, our call to the
    /// target); our calls end once it has gone through
    Transfer {
        /// [ID] TARGET: the call (default: the only established one) and whom to pass it
        /// to; with --to, only the call
        #[arg(value_name = "ID|TARGET", num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// Attended transfer: the call whose far side is the target
        #[arg(long, value_name = "OTHER_ID")]
        to: Option<u64>,
    },
    /// Accept the far side's request to transfer a call (the account's transfer = "ask")
    AcceptTransfer { id: Option<u64> },
    /// Decline the far side's request to transfer a call
    DeclineTransfer { id: Option<u64> },
    /// Mix established calls together: each far side hears the others and us
    Conference {
        #[arg(value_name = "ID", num_args = 2.., required = true)]
        ids: Vec<u64>,
    },
    /// Take apart the conference a call is in: each call goes on alone
    Split { id: Option<u64> },
    /// List the calls
    Calls,
    /// Past calls, newest first, missed ones marked (counts them as seen)
    History {
        /// Only missed calls
        #[arg(long)]
        missed: bool,
        /// At most this many [default: 100]
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
        /// Do not count missed calls as seen
        #[arg(long)]
        peek: bool,
    },
    /// Text messages
    Message {
        #[command(subcommand)]
        verb: MessageVerb,
    },
    /// The address book (and contacts' presence)
    Contacts {
        #[command(subcommand)]
        verb: ContactsVerb,
    },
    /// Our own presence, as others see it
    Presence {
        #[command(subcommand)]
        verb: PresenceVerb,
    },
    /// The answering machine's messages
    Voicemail {
        #[command(subcommand)]
        verb: VoicemailVerb,
    },
    /// Call forwarding (302) per account
    Forward {
        #[command(subcommand)]
        verb: ForwardVerb,
    },
    /// Print a shell completion script (e.g. `voipctl completions bash > /etc/bash_completion.d/voipctl`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page, roff (e.g. `voipctl man | man -l -`)
    Man,
}

/// `voipctl [--json] status`, what panels and scripts run most, read without clap: building
/// clap's whole command tree is a third of voipctl's start-up (issue #20). Anything else,
/// `--help` included, goes through clap.
fn quick(args: &[std::ffi::OsString]) -> Option<Cli> {
    let json = match args {
        [v] if v == "status" => false,
        [a, b] if (a == "--json" && b == "status") || (a == "status" && b == "--json") => true,
        _ => return None,
    };
    Some(Cli {
        socket: std::env::var_os("VOIPD_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        json,
        verb: Verb::Status,
    })
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let cli = quick(&args).unwrap_or_else(Cli::parse);
    // These two need no daemon.
    match cli.verb {
        Verb::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "voipctl",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Verb::Man => {
            return match man::render(&Cli::command(), &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voipctl: cannot write the manual page: {e}");
                    ExitCode::from(exit::DAEMON_SAID_NO)
                }
            };
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("voipctl: cannot start: {e}");
            return ExitCode::from(exit::DAEMON_SAID_NO);
        }
    };
    let out = output::Output { json: cli.json };
    match runtime.block_on(run(cli.socket, cli.verb, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("voipctl: {f}");
            ExitCode::from(f.code())
        }
    }
}

/// A call verb that returns at once.
async fn act(
    conn: tonic::transport::Channel,
    out: output::Output,
    id: Option<u64>,
    act: Act,
) -> Result<(), Failure> {
    cmd::calls::act(conn, out, id, act, cmd::calls::Wait::default()).await
}

async fn run(socket: Option<PathBuf>, verb: Verb, out: output::Output) -> Result<(), Failure> {
    let conn = client::connect(socket).await?;
    match verb {
        Verb::Status => cmd::status::run(conn, out).await,
        Verb::Reload => cmd::reload::run(conn, out).await,
        Verb::Watch => cmd::watch::run(conn, out).await,
        Verb::Shutdown => cmd::shutdown::run(conn, out).await,
        Verb::Accounts => cmd::accounts::list(conn, out).await,
        Verb::Register { id } => cmd::accounts::register(conn, out, id, true).await,
        Verb::Unregister { id } => cmd::accounts::register(conn, out, id, false).await,
        Verb::Dial {
            whom,
            account,
            audio,
            wait,
        } => cmd::calls::dial(conn, out, whom, account, audio, wait.into()).await,
        Verb::Answer { id, audio, wait } => {
            cmd::calls::act(conn, out, id, Act::Answer(audio), wait.into()).await
        }
        Verb::Reject { id, busy } => act(conn, out, id, Act::Reject { busy }).await,
        Verb::Hangup { id } => act(conn, out, id, Act::Hangup).await,
        Verb::Hold { id } => act(conn, out, id, Act::Hold).await,
        Verb::Resume { id } => act(conn, out, id, Act::Resume).await,
        Verb::Mute { id, off } => act(conn, out, id, Act::Mute(!off)).await,
        Verb::Dtmf { digits, call } => act(conn, out, call, Act::Dtmf(digits)).await,
        Verb::Play {
            what,
            call,
            secs,
            stop: _,
        } => {
            let what = cmd::calls::play_target(what)?;
            act(
                conn,
                out,
                call,
                Act::Play {
                    what,
                    secs: secs.unwrap_or(0.0),
                },
            )
            .await
        }
        Verb::Video { verb } => match verb {
            VideoVerb::On { id, size, fps } => {
                act(
                    conn,
                    out,
                    id,
                    Act::Video(Some((size.unwrap_or_default(), fps.unwrap_or(0)))),
                )
                .await
            }
            VideoVerb::Off { id } => act(conn, out, id, Act::Video(None)).await,
            VideoVerb::Devices => cmd::calls::video_devices(conn, out).await,
            VideoVerb::Snapshot { args } => {
                let (id, file) = match args.as_slice() {
                    [file] => (None, file),
                    [id, file] => (
                        Some(
                            id.parse::<u64>()
                                .map_err(|_| Failure::Usage(format!("{id:?} is not a call id")))?,
                        ),
                        file,
                    ),
                    _ => return Err(Failure::Usage("snapshot [ID] FILE".into())),
                };
                cmd::calls::snapshot(conn, out, id, PathBuf::from(file)).await
            }
        },
        Verb::Record { verb } => match verb {
            RecordVerb::Start { id, to, mono } => {
                let to = match to {
                    Some(p) => std::path::absolute(&p)
                        .map_err(|e| Failure::Usage(format!("--to: {}: {e}", p.display())))?
                        .display()
                        .to_string(),
                    None => String::new(),
                };
                act(conn, out, id, Act::Record { to, mono }).await
            }
            RecordVerb::Stop { id } => act(conn, out, id, Act::StopRecording).await,
        },
        Verb::Transfer { args, to } => {
            let (id, what) = transfer_args(&args, to)?;
            act(conn, out, id, what).await
        }
        Verb::AcceptTransfer { id } => act(conn, out, id, Act::AnswerTransfer(true)).await,
        Verb::DeclineTransfer { id } => act(conn, out, id, Act::AnswerTransfer(false)).await,
        Verb::Conference { ids } => cmd::calls::conference(conn, out, ids).await,
        Verb::Split { id } => act(conn, out, id, Act::Split).await,
        Verb::Calls => cmd::calls::list(conn, out).await,
        Verb::History {
            missed,
            limit,
            peek,
        } => cmd::history::list(conn, out, missed, limit, peek).await,
        Verb::Message {
            verb: MessageVerb::List { with, limit, peek },
        } => cmd::messages::list(conn, out, with, limit, peek).await,
        Verb::Message {
            verb: MessageVerb::Send { to, text, account },
        } => cmd::messages::send(conn, out, to, text, account).await,
        Verb::Contacts { verb } => match verb {
            ContactsVerb::List { query, favourites } => {
                cmd::contacts::list(conn, out, query, favourites).await
            }
            ContactsVerb::Show { contact } => cmd::contacts::get(conn, out, contact).await,
            ContactsVerb::Add { name, fields } => cmd::contacts::add(conn, out, name, fields).await,
            ContactsVerb::Edit { contact, edit } => {
                cmd::contacts::edit(conn, out, contact, edit).await
            }
            ContactsVerb::Remove { contact } => cmd::contacts::remove(conn, out, contact).await,
            ContactsVerb::Import { file } => cmd::contacts::import(conn, out, file).await,
            ContactsVerb::Export { output } => cmd::contacts::export(conn, out, output).await,
        },
        Verb::Presence {
            verb: PresenceVerb::Set { status, note },
        } => cmd::contacts::set_presence(conn, out, status.word().to_string(), note).await,
        Verb::Presence {
            verb: PresenceVerb::Show,
        } => cmd::contacts::show_presence(conn, out).await,
        Verb::Voicemail { verb } => match verb {
            VoicemailVerb::List { limit } => cmd::voicemail::list(conn, out, limit).await,
            VoicemailVerb::Play { id, output } => cmd::voicemail::play(conn, out, id, output).await,
            VoicemailVerb::Export { id, file } => cmd::voicemail::export(conn, out, id, file).await,
            VoicemailVerb::Delete { id } => cmd::voicemail::delete(conn, out, id).await,
            VoicemailVerb::Heard { id, not } => cmd::voicemail::heard(conn, out, id, !not).await,
        },
        Verb::Forward { verb } => match verb {
            ForwardVerb::Show { account } => cmd::forward::show(conn, out, account).await,
            ForwardVerb::Set {
                rule,
                to,
                after,
                account,
            } => cmd::forward::set(conn, out, account, rule, Some(to), after).await,
            ForwardVerb::Off {
                rule: Some(rule),
                account,
            } => cmd::forward::set(conn, out, account, rule, None, None).await,
            ForwardVerb::Off {
                rule: None,
                account,
            } => cmd::forward::off_all(conn, out, account, &RULES).await,
            ForwardVerb::Clear { rule, account } => {
                cmd::forward::clear(conn, out, account, rule).await
            }
        },
        // Handled in main, before connecting.
        Verb::Completions { .. } | Verb::Man => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The quick path reads what clap would, and leaves everything else to clap.
    #[test]
    fn quick_status_reads_as_clap_does() {
        let os = |a: &[&str]| {
            a.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        for args in [
            &["status"][..],
            &["--json", "status"],
            &["status", "--json"],
        ] {
            let q = quick(&os(args)).expect("quick");
            let c = Cli::try_parse_from(std::iter::once("voipctl").chain(args.iter().copied()))
                .expect("clap");
            assert_eq!((q.json, &q.socket), (c.json, &c.socket), "{args:?}");
            assert!(matches!((q.verb, c.verb), (Verb::Status, Verb::Status)));
        }
        for args in [
            &[][..],
            &["status", "--help"],
            &["--socket", "/x", "status"],
            &["calls"],
            &["status", "extra"],
        ] {
            assert!(quick(&os(args)).is_none(), "{args:?}");
        }
    }
}
