//! MQTT: every event published as JSON under `PREFIX/event/NAME`, commands taken on
//! `PREFIX/command` with their results on `PREFIX/command/result`, availability on
//! `PREFIX/status` (with a last will), what sensors show on `PREFIX/state`, and Home
//! Assistant's discovery. An adapter like the others: it reads the core's events and acts
//! through the core's API.

mod command;
mod discovery;
mod state;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event as MqttEvent, EventLoop, LastWill, MqttOptions, Packet, Publish, QoS,
    Request, Subscribe,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use crate::config::MqttConfig;
use crate::core::{Event, EventKind, HookSet, PhoneHandle};
use state::State;

/// Reconnecting waits this long at first, then twice as long each time, up to…
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// …this.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Commands running at once; more are refused (busy) rather than queued without bound.
const MAX_COMMANDS: usize = 16;
/// Publications in flight at once: above what one connection's announcements take, so
/// that those (sent ahead of the queue) never wrap the packet ids.
const INFLIGHT: u16 = 1000;

type Events = broadcast::Receiver<Arc<Event>>;

/// Starts following `[mqtt]` across reloads (subscribed before this returns, so that
/// `daemon_started` goes out too), until the daemon stops: a change starts a new session.
pub fn start(phone: PhoneHandle) -> tokio::task::JoinHandle<()> {
    let mut set = phone.hooks();
    let config = set.borrow_and_update().mqtt.clone();
    let events = config.is_some().then(|| phone.subscribe());
    tokio::spawn(serve(phone, set, config, events))
}

async fn serve(
    phone: PhoneHandle,
    mut set: tokio::sync::watch::Receiver<Arc<HookSet>>,
    mut config: Option<MqttConfig>,
    mut events: Option<Events>,
) {
    loop {
        let session = async {
            match (&config, events.take()) {
                (Some(c), Some(ev)) => Session::run(phone.clone(), Arc::new(c.clone()), ev).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = session => return,
            changed = wait_for_change(&mut set, &config) => match changed {
                Some(now) => {
                    config = now;
                    events = config.is_some().then(|| phone.subscribe());
                }
                None => return,
            },
        }
    }
}

/// The next `[mqtt]` unlike `now`; None when the core is gone.
async fn wait_for_change(
    set: &mut tokio::sync::watch::Receiver<Arc<HookSet>>,
    now: &Option<MqttConfig>,
) -> Option<Option<MqttConfig>> {
    loop {
        set.changed().await.ok()?;
        let next = set.borrow_and_update().mqtt.clone();
        if next != *now {
            return Some(next);
        }
    }
}

/// What the connection's driver tells the session.
enum Link {
    /// Connected (again): the driver waits for the session's announcements.
    Up,
    Down,
    Message(Publish),
}

/// Drives the connection in a task of its own, so that nothing else the session does
/// cancels a connect under way. After each CONNACK it sends the session's announcements
/// (subscriptions, status, discovery, state) ahead of everything, then again what the
/// broker had not acknowledged when the connection broke: a broker that restarted has no
/// session to resume them from.
async fn drive(
    mut el: EventLoop,
    client: AsyncClient,
    url: String,
    links: mpsc::Sender<Link>,
    mut bursts: mpsc::Receiver<Vec<Request>>,
) {
    let mut unacked: Vec<Request> = Vec::new();
    let (mut backoff, mut failures, mut up) = (FIRST_RETRY, 0u32, false);
    loop {
        match el.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                if failures > 0 {
                    tracing::info!("mqtt: connected to {url} again after {failures} failed tries");
                } else {
                    tracing::info!("mqtt: connected to {url}");
                }
                (backoff, failures, up) = (FIRST_RETRY, 0, true);
                if links.send(Link::Up).await.is_err() {
                    return;
                }
                let Some(burst) = bursts.recv().await else {
                    return;
                };
                el.pending.extend(burst);
                // Through the queue, whose flow control keeps packet ids from wrapping.
                for r in unacked.drain(..) {
                    if let Request::Publish(p) = r {
                        let _ = client.try_publish(p.topic, p.qos, p.retain, p.payload);
                    }
                }
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                if links.send(Link::Message(p)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                unacked.extend(
                    el.pending
                        .drain(..)
                        .filter(|r| matches!(r, Request::Publish(_))),
                );
                if up || failures == 0 || failures.is_power_of_two() {
                    tracing::warn!(
                        "mqtt: {url}: {e}; trying again in {:.1} s",
                        backoff.as_secs_f64()
                    );
                }
                if up && links.send(Link::Down).await.is_err() {
                    return;
                }
                up = false;
                failures += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_RETRY);
            }
        }
    }
}

struct Session {
    phone: PhoneHandle,
    c: Arc<MqttConfig>,
    client: AsyncClient,
    state: State,
    /// The discovery topics announced, to clear those of entities that went away.
    announced: BTreeSet<String>,
    /// While announcing after a connect: what goes ahead of the queue.
    burst: Option<Vec<Request>>,
    /// Publications refused because the queue was full, since the start.
    dropped: u64,
    connected: bool,
}

/// Aborts the connection's driver when the session ends, however it ends.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Session {
    async fn run(phone: PhoneHandle, c: Arc<MqttConfig>, mut events: Events) {
        let (client, eventloop) = match connect_options(&c) {
            Ok(o) => AsyncClient::new(o, c.queue as usize),
            Err(e) => {
                tracing::error!("mqtt: {e}; not connecting");
                return phone.stopped().await;
            }
        };
        let (links_tx, mut links) = mpsc::channel(64);
        let (bursts_tx, bursts) = mpsc::channel(1);
        let driver = Driver(tokio::spawn(drive(
            eventloop,
            client.clone(),
            c.url.clone(),
            links_tx,
            bursts,
        )));
        let counts = (
            phone.missed_unseen().await.unwrap_or_default(),
            phone.unread_messages().await.unwrap_or_default(),
            phone.voicemails(1).await.map_or(0, |(_, n)| n),
        );
        let state = State::new(
            &phone.accounts().await.unwrap_or_default(),
            &phone.calls().await.unwrap_or_default(),
            counts,
        );
        let mut s = Session {
            phone: phone.clone(),
            c,
            client,
            state,
            announced: BTreeSet::new(),
            burst: None,
            dropped: 0,
            connected: false,
        };
        let (results_tx, mut results) = mpsc::channel::<String>(MAX_COMMANDS);
        let mut commands = JoinSet::new();
        loop {
            tokio::select! {
                link = links.recv() => match link {
                    Some(Link::Up) => {
                        let burst = s.connected();
                        if bursts_tx.send(burst).await.is_err() {
                            break;
                        }
                    }
                    Some(Link::Down) => s.connected = false,
                    Some(Link::Message(p)) => s.incoming(&p, &mut commands, &results_tx),
                    None => break,
                },
                ev = events.recv() => match ev {
                    Ok(ev) => s.event(&ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("mqtt fell {n} events behind; those were not published");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(r) = results.recv() => {
                    let topic = format!("{}/command/result", s.c.prefix);
                    s.publish(&topic, false, r);
                }
                Some(_) = commands.join_next() => {}
                () = phone.stopped() => break,
            }
        }
        // What was emitted before the stop (shutting_down among it) goes out, then
        // offline at once, rather than left to the will after the keepalive.
        while let Ok(ev) = events.try_recv() {
            s.event(&ev);
        }
        if s.connected {
            let status = s.status();
            s.publish(&status, true, "offline".into());
            let _ = s.client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(l) = links.recv().await {
                    if matches!(l, Link::Down) {
                        break;
                    }
                }
            })
            .await;
        }
        drop(driver);
        commands.shutdown().await;
    }

    fn status(&self) -> String {
        format!("{}/status", self.c.prefix)
    }

    /// What goes out first on a new connection, ahead of the queue: subscriptions, online,
    /// the discovery and the state. A broker that restarted knows nothing of us.
    fn connected(&mut self) -> Vec<Request> {
        self.connected = true;
        self.burst = Some(Vec::new());
        let mut filters = vec![format!("{}/command", self.c.prefix)];
        if self.c.discovery {
            let d = &self.c.discovery_prefix;
            filters.push(format!("{d}/status"));
            // Retained configs of ours from before, to clear those no longer announced.
            filters.push(format!("{d}/+/{}/+/config", self.c.node_id));
        }
        if let Some(b) = &mut self.burst {
            for f in filters {
                b.push(Request::Subscribe(Subscribe::new(f, QoS::AtLeastOnce)));
            }
        }
        self.publish(&self.status(), true, "online".into());
        self.announce();
        self.publish_state();
        self.burst.take().unwrap_or_default()
    }

    /// Home Assistant's discovery, and empty configs for entities that went away.
    fn announce(&mut self) {
        if !self.c.discovery {
            return;
        }
        let accounts: Vec<String> = self.state.accounts.keys().cloned().collect();
        let now: Vec<(String, String)> = discovery::announcements(&self.c, &accounts);
        let topics: BTreeSet<String> = now.iter().map(|(t, _)| t.clone()).collect();
        for gone in self
            .announced
            .difference(&topics)
            .cloned()
            .collect::<Vec<_>>()
        {
            self.publish(&gone, true, String::new());
        }
        for (topic, payload) in now {
            self.publish(&topic, true, payload);
        }
        self.announced = topics;
    }

    fn publish_state(&mut self) {
        let topic = format!("{}/state", self.c.prefix);
        match serde_json::to_string(&self.state) {
            Ok(s) => self.publish(&topic, true, s),
            Err(e) => tracing::error!("mqtt: state not put in JSON: {e}"),
        }
    }

    fn publish(&mut self, topic: &str, retain: bool, payload: String) {
        if let Some(b) = &mut self.burst {
            let mut p = Publish::new(topic, QoS::AtLeastOnce, payload);
            p.retain = retain;
            b.push(Request::Publish(p));
            return;
        }
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            self.dropped += 1;
            if self.dropped == 1 || self.dropped.is_power_of_two() {
                tracing::warn!(
                    "mqtt: {topic} not published ({e}; the queue holds {}): {} dropped since start",
                    self.c.queue,
                    self.dropped
                );
            }
        }
    }

    fn event(&mut self, ev: &Event) {
        if let Some(json) = super::event_json(ev) {
            let topic = format!("{}/event/{}", self.c.prefix, ev.name);
            self.publish(&topic, false, json);
        }
        let accounts_changed = matches!(
            ev.kind,
            EventKind::AccountRemoved { .. } | EventKind::ConfigReloaded { .. }
        ) || matches!(&ev.kind, EventKind::AccountChanged(a) if !self.state.accounts.contains_key(&a.id));
        if self.state.apply(ev) {
            self.publish_state();
        }
        if accounts_changed && self.connected {
            self.announce();
        }
    }

    fn incoming(
        &mut self,
        p: &Publish,
        commands: &mut JoinSet<()>,
        results: &mpsc::Sender<String>,
    ) {
        let (topic, payload) = (p.topic.as_str(), &p.payload[..]);
        let d = &self.c.discovery_prefix;
        if topic == format!("{}/command", self.c.prefix) {
            // A retained command would run again at every reconnect: a dial, each time.
            if p.retain {
                tracing::warn!(
                    "mqtt: a retained command on {topic} is ignored; publish commands without retain"
                );
                return;
            }
            if commands.len() >= MAX_COMMANDS {
                let busy = serde_json::json!({
                    "ok": false,
                    "error": {"code": "unavailable", "message": format!("{MAX_COMMANDS} commands are running; try again")},
                });
                let topic = format!("{}/command/result", self.c.prefix);
                self.publish(&topic, false, busy.to_string());
                return;
            }
            let (phone, payload, results) = (self.phone.clone(), payload.to_vec(), results.clone());
            commands.spawn(async move {
                let r = command::run(&phone, &payload).await;
                let _ = results.send(r).await;
            });
        } else if self.c.discovery && topic == format!("{d}/status") {
            // Home Assistant (re)started: it wants the discovery again.
            if payload == b"online" {
                tracing::info!("mqtt: Home Assistant is online; announcing again");
                self.announce();
                self.publish_state();
            }
        } else if self.c.discovery
            && topic.ends_with("/config")
            && !payload.is_empty()
            && !self.announced.contains(topic)
        {
            // Retained from an earlier run, for an entity that is no more.
            tracing::info!("mqtt: clearing {topic}, no longer announced");
            self.publish(topic, true, String::new());
        }
    }
}

fn connect_options(c: &MqttConfig) -> Result<MqttOptions, String> {
    let mut o = MqttOptions::new(c.client_id.clone(), c.host.clone(), c.port);
    o.set_keep_alive(c.keepalive);
    o.set_clean_session(true);
    o.set_last_will(LastWill::new(
        format!("{}/status", c.prefix),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    // Discovery payloads and events with long contact lists are larger than the default.
    o.set_max_packet_size(256 * 1024, 256 * 1024);
    o.set_pending_throttle(Duration::ZERO);
    o.set_inflight(INFLIGHT);
    if let Some(u) = &c.username {
        o.set_credentials(
            u.clone(),
            c.password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        );
    }
    if c.tls {
        let config = crate::sip::transport::tls::client_config(c.ca_pem.as_deref(), None)
            .map_err(|e| e.to_string())?;
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
    }
    Ok(o)
}
