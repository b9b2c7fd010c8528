//! MQTT: every event published as JSON under `PREFIX/event/NAME`, commands taken on
//! `PREFIX/command` with their results on `PREFIX/command/result`, availability on
//! `PREFIX/status` (with a last will), what sensors show on `PREFIX/state`, and Home
//! Assistant's discovery. An adapter like the others: it reads the core's events and acts
//! through the core's API.

mod command;
mod discovery;
mod state;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event as MqttEvent, EventLoop, LastWill, MqttOptions, Packet, QoS, Request,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use voipd_proto::v1 as pb;

use crate::config::MqttConfig;
use crate::core::{Event, EventKind, PhoneHandle};
use state::State;

/// Reconnecting waits this long at first, then twice as long each time, up to…
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// …this.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Commands running at once; more are refused (busy) rather than queued without bound.
const MAX_COMMANDS: usize = 16;

/// Follows `[mqtt]` across reloads until the daemon stops: a change starts a new session.
pub async fn serve(phone: PhoneHandle) {
    let mut set = phone.hooks();
    let mut config = set.borrow_and_update().mqtt.clone();
    loop {
        let session = async {
            match &config {
                Some(c) => Session::run(phone.clone(), Arc::new(c.clone())).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = session => return,
            changed = wait_for_change(&mut set, &config) => match changed {
                Some(now) => config = now,
                None => return,
            },
        }
    }
}

/// The next `[mqtt]` unlike `now`; None when the core is gone.
async fn wait_for_change(
    set: &mut tokio::sync::watch::Receiver<Arc<crate::core::HookSet>>,
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

struct Session {
    phone: PhoneHandle,
    c: Arc<MqttConfig>,
    client: AsyncClient,
    state: State,
    /// The discovery topics announced, to clear those of entities that went away.
    announced: BTreeSet<String>,
    /// Publications the broker had not acknowledged when the connection broke: sent again
    /// once it is back (a broker that restarted has no session to resume them from).
    unacked: VecDeque<Request>,
    /// Publications refused because the queue was full, since the start.
    dropped: u64,
    connected: bool,
}

impl Session {
    async fn run(phone: PhoneHandle, c: Arc<MqttConfig>) {
        let (client, mut eventloop) = match connect_options(&c) {
            Ok(o) => AsyncClient::new(o, c.queue as usize),
            Err(e) => {
                tracing::error!("mqtt: {e}; not connecting");
                return phone.stopped().await;
            }
        };
        let mut events = phone.subscribe();
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
            unacked: VecDeque::new(),
            dropped: 0,
            connected: false,
        };
        let (results_tx, mut results) = mpsc::channel::<String>(MAX_COMMANDS);
        let mut commands = JoinSet::new();
        let mut backoff = FIRST_RETRY;
        let mut failures = 0u32;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                polled = poll(&mut eventloop, retry_at) => match polled {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        retry_at = None;
                        if failures > 0 {
                            tracing::info!("mqtt: connected to {} again after {failures} failed tries", s.c.url);
                        } else {
                            tracing::info!("mqtt: connected to {}", s.c.url);
                        }
                        backoff = FIRST_RETRY;
                        failures = 0;
                        s.connected(&mut eventloop);
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        s.incoming(&p.topic, &p.payload, &mut commands, &results_tx);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        retry_at = Some(tokio::time::Instant::now() + backoff);
                        if s.connected || failures == 0 || failures.is_power_of_two() {
                            tracing::warn!("mqtt: {}: {e}; trying again in {:.1} s", s.c.url, backoff.as_secs_f64());
                        }
                        s.connected = false;
                        failures += 1;
                        backoff = (backoff * 2).min(MAX_RETRY);
                        // Unacknowledged publications survive the broker's restart.
                        s.unacked.extend(eventloop.pending.drain(..));
                    }
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
        // Said at once, rather than left to the will after the keepalive.
        if s.connected {
            let _ = s
                .client
                .try_publish(s.status(), QoS::AtLeastOnce, true, "offline");
            let _ = s.client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while eventloop.poll().await.is_ok() {}
            })
            .await;
        }
        commands.shutdown().await;
    }

    fn status(&self) -> String {
        format!("{}/status", self.c.prefix)
    }

    /// (Re)subscribes and (re)announces: a broker that restarted knows nothing of us.
    fn connected(&mut self, eventloop: &mut EventLoop) {
        self.connected = true;
        let p = self.c.prefix.clone();
        let _ = self
            .client
            .try_subscribe(format!("{p}/command"), QoS::AtLeastOnce);
        if self.c.discovery {
            let d = &self.c.discovery_prefix;
            let _ = self
                .client
                .try_subscribe(format!("{d}/status"), QoS::AtLeastOnce);
            // Retained configs of ours from before, to clear those no longer announced.
            let _ = self.client.try_subscribe(
                format!("{d}/+/{}/+/config", self.c.node_id),
                QoS::AtLeastOnce,
            );
        }
        self.publish(&self.status(), true, "online".into());
        self.announce();
        self.publish_state();
        for r in std::mem::take(&mut self.unacked) {
            eventloop.pending.push_back(r);
        }
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
        match serde_json::to_string(&pb::Event::from(ev)) {
            Ok(json) => {
                let topic = format!("{}/event/{}", self.c.prefix, ev.name);
                self.publish(&topic, false, json);
            }
            Err(e) => tracing::error!("mqtt: event {} not put in JSON: {e}", ev.seq),
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
        topic: &str,
        payload: &[u8],
        commands: &mut JoinSet<()>,
        results: &mpsc::Sender<String>,
    ) {
        let d = &self.c.discovery_prefix;
        if topic == format!("{}/command", self.c.prefix) {
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

/// The next event of the connection; after a failure, not before `retry_at`.
async fn poll(
    eventloop: &mut EventLoop,
    retry_at: Option<tokio::time::Instant>,
) -> Result<MqttEvent, rumqttc::ConnectionError> {
    if let Some(at) = retry_at {
        tokio::time::sleep_until(at).await;
    }
    eventloop.poll().await
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
