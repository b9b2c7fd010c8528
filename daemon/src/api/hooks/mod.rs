//! Exec hooks: programs started on events (`[[hook]]`). An adapter like the others: it
//! reads the core's event stream and acts through the core's API, so a slow or hung hook
//! holds up nothing but itself.

mod exec;
mod subject;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use crate::core::{CallAction, Endpoints, Event, HookSet, PhoneHandle};
use exec::{Action, Job, Report};

/// How long hooks still running at shutdown are given before they are killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Starts the hook runner. It follows events from this moment on (subscribed before this
/// returns, so that `daemon_started` reaches it), until the daemon stops; it owns every hook
/// process, and kills those still running when it ends.
pub fn start(phone: PhoneHandle) -> tokio::task::JoinHandle<()> {
    let mut set = phone.hooks();
    let runner = Runner::new(phone.clone(), set.borrow_and_update().clone());
    // Subscribed only while there are hooks: `status` counts watchers, and an idle
    // runner is none.
    let events = (!runner.hooks.hooks.is_empty()).then(|| phone.subscribe());
    tokio::spawn(serve(phone, set, runner, events))
}

async fn serve(
    phone: PhoneHandle,
    mut set: tokio::sync::watch::Receiver<Arc<HookSet>>,
    mut runner: Runner,
    mut events: Option<broadcast::Receiver<Arc<Event>>>,
) {
    let (reports_tx, mut reports) = mpsc::channel(64);
    loop {
        runner.start_waiting(&reports_tx);
        tokio::select! {
            ev = super::next_event(&mut events) => match ev {
                Ok(ev) => runner.event(&ev, &reports_tx),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("hooks fell {n} events behind; those events ran no hook");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(r) = reports.recv() => runner.report(r).await,
            Some(_) = runner.running.join_next() => {}
            Ok(()) = set.changed() => {
                runner.hooks = set.borrow_and_update().clone();
                if runner.hooks.hooks.is_empty() {
                    events = None;
                    // What it knew of calls goes stale while it does not listen.
                    runner.calls = subject::Calls::default();
                } else if events.is_none() {
                    events = Some(phone.subscribe());
                }
            }
            () = phone.stopped() => break,
        }
    }
    // What was already emitted (shutting_down among it) still runs, briefly.
    while let Some(Ok(ev)) = events.as_mut().map(broadcast::Receiver::try_recv) {
        runner.event(&ev, &reports_tx);
    }
    runner.start_waiting(&reports_tx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while runner.running.join_next().await.is_some() {
            runner.start_waiting(&reports_tx);
        }
    })
    .await;
    // A run dropped unfinished kills its hook's whole process group.
    runner.running.shutdown().await;
}

struct Runner {
    phone: PhoneHandle,
    hooks: Arc<HookSet>,
    calls: subject::Calls,
    waiting: VecDeque<Job>,
    running: JoinSet<()>,
    /// Incoming calls waiting for their hooks: how many have yet to finish.
    deciding: HashMap<u64, usize>,
    /// Runs dropped because the queue was full, since the start.
    dropped: u64,
}

impl Runner {
    fn new(phone: PhoneHandle, hooks: Arc<HookSet>) -> Runner {
        Runner {
            phone,
            hooks,
            calls: subject::Calls::default(),
            waiting: VecDeque::new(),
            running: JoinSet::new(),
            deciding: HashMap::new(),
            dropped: 0,
        }
    }

    /// Queues a run of every hook that wants the event.
    fn event(&mut self, ev: &Event, reports: &mpsc::Sender<Report>) {
        self.calls.see(ev);
        let call = self.calls.of(ev);
        let subject = subject::subject(ev, call);
        let wanted: Vec<_> = self
            .hooks
            .hooks
            .iter()
            .filter(|h| h.wants(ev.name, &subject))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let Some(json) = super::event_json(ev).map(Arc::new) else {
            return;
        };
        let vars = Arc::new(subject::variables(ev, call));
        let decides = (ev.name == voipd_proto::events::CALL_INCOMING)
            .then(|| call.map(|c| c.id))
            .flatten();
        for hook in wanted {
            let job = Job {
                hook: Arc::new(hook),
                json: json.clone(),
                vars: vars.clone(),
                decides,
            };
            match decides {
                // The caller is waiting: these start at once, outside `max_running`
                // (bounded by the calls that may ring at once).
                Some(id) => {
                    *self.deciding.entry(id).or_default() += 1;
                    self.running.spawn(exec::run(job, reports.clone()));
                }
                None => self.queue(job),
            }
        }
    }

    /// Queues a run that does not decide a call (those start at once).
    fn queue(&mut self, job: Job) {
        let bound = self.hooks.settings.queue.max(1) as usize;
        while self.waiting.len() >= bound {
            let Some(old) = self.waiting.pop_front() else {
                break;
            };
            self.dropped += 1;
            tracing::warn!(
                hook = %old.hook.name,
                "hook queue full ({bound} waiting): the oldest run, of {}, is dropped ({} dropped since start)",
                old.hook.name,
                self.dropped
            );
        }
        self.waiting.push_back(job);
    }

    /// Starts waiting runs while there is room.
    fn start_waiting(&mut self, reports: &mpsc::Sender<Report>) {
        let max = self.hooks.settings.max_running.max(1) as usize;
        while self.running.len() < max {
            let Some(job) = self.waiting.pop_front() else {
                return;
            };
            self.running.spawn(exec::run(job, reports.clone()));
        }
    }

    async fn report(&mut self, r: Report) {
        match r {
            Report::Decided { call, action, hook } => {
                if action == Action::Continue {
                    return self.settle(call);
                }
                if !self.deciding.contains_key(&call) {
                    return;
                }
                // The first word wins; the call's other hooks run on unheard.
                self.deciding.remove(&call);
                tracing::info!(call_id = call, "hook {hook} says {action:?}");
                let act = match action {
                    Action::Answer => CallAction::Answer(Endpoints::default()),
                    Action::Reject => CallAction::Reject { busy: false },
                    Action::Busy => CallAction::Reject { busy: true },
                    Action::Forward(to) => CallAction::Forward(to),
                    Action::Continue => CallAction::Proceed,
                };
                if let Err(e) = self.phone.call(call, act).await {
                    tracing::warn!(call_id = call, "hook {hook}'s word was not taken: {e}");
                    let _ = self.phone.call(call, CallAction::Proceed).await;
                }
            }
            Report::Done { decides } => {
                if let Some(call) = decides {
                    self.settle(call);
                }
            }
        }
    }

    /// One of a call's deciding runs is over; the last one lets the answer mode go on.
    fn settle(&mut self, call: u64) {
        let Some(left) = self.deciding.get_mut(&call) else {
            return;
        };
        *left -= 1;
        if *left == 0 {
            self.deciding.remove(&call);
            let phone = self.phone.clone();
            // Not awaited here: the core's answer is not needed, and a run's report must
            // not wait on it.
            self.running.spawn(async move {
                // The call may have ended meanwhile: nothing to do then.
                let _ = phone.call(call, CallAction::Proceed).await;
            });
        }
    }
}
