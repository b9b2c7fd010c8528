use std::pin::Pin;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use crate::core::{EVENT_QUEUE, EventKind, PhoneHandle};

pub(super) struct EventsService {
    phone: PhoneHandle,
}

impl EventsService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        EventsService { phone }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl pb::events_server::Events for EventsService {
    type WatchStream = EventStream;

    async fn watch(&self, _: Request<pb::WatchRequest>) -> Result<Response<EventStream>, Status> {
        let mut events = self.phone.subscribe();
        let phone = self.phone.clone();
        // Small: the real buffer is the broadcast queue, whose bound cuts off slow watchers.
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let item = tokio::select! {
                    ev = events.recv() => ev,
                    // The client went away: let go of the subscription now, not at the
                    // next event (the watcher count and its memory come back).
                    () = tx.closed() => return,
                    // Ends the stream so graceful shutdown is not held up by watchers.
                    () = phone.stopped() => match events.try_recv() {
                        Ok(ev) => Ok(ev),
                        Err(_) => return,
                    },
                };
                let (out, last) = match item {
                    Ok(ev) => (
                        Ok(pb::Event::from(&*ev)),
                        matches!(ev.kind, EventKind::ShuttingDown { .. }),
                    ),
                    Err(broadcast::error::RecvError::Lagged(n)) => (
                        Err(Status::resource_exhausted(format!(
                            "watcher fell {n} events behind (the queue holds {EVENT_QUEUE}); reconnect to resume"
                        ))),
                        true,
                    ),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(out).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
