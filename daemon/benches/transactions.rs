//! The transaction layer end to end over loopback UDP: one endpoint sends MESSAGE requests
//! as client transactions, another answers each 200 through its server transactions.
//! `cargo bench -p voipd --bench transactions` prints transactions/s and the time per one.

use std::time::Instant;

use voipd::sip::message::{Headers, Method, Name, Request, reason_phrase};
use voipd::sip::transaction::{Endpoint, Timers};
use voipd::sip::transport::ListenAddr;
use voipd::sip::transport::{Proto, Target, Transport};
use voipd::sip::uri::Uri;

const TOTAL: usize = 50_000;
const IN_FLIGHT: usize = 200;

async fn endpoint() -> (
    Endpoint,
    tokio::sync::mpsc::Receiver<voipd::sip::transaction::TuRequest>,
    Target,
) {
    let listen = ListenAddr::try_from("udp:127.0.0.1:0".to_string()).expect("addr");
    let (t, incoming) = Transport::start(&[listen], false, None)
        .await
        .expect("bind");
    let addr = t.listening()[0]
        .trim_start_matches("udp:")
        .parse()
        .expect("addr");
    let (ep, tu) = Endpoint::start(
        t,
        incoming,
        Timers::default(),
        "bench".into(),
        Default::default(),
    );
    (
        ep,
        tu,
        Target {
            proto: Proto::Udp,
            addr,
        },
    )
}

fn message(n: usize) -> Request {
    let mut h = Headers::default();
    h.push(Name::MaxForwards, "70");
    h.push(Name::From, "<sip:a@127.0.0.1>;tag=bench");
    h.push(Name::To, "<sip:b@127.0.0.1>");
    h.push(Name::CallId, format!("bench-{n}"));
    h.push(Name::CSeq, "1 MESSAGE");
    h.push(Name::ContentType, "text/plain");
    Request {
        method: Method::Message,
        uri: "sip:b@127.0.0.1".parse::<Uri>().expect("uri"),
        headers: h,
        body: b"hello".to_vec(),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, _, _) = endpoint().await;
        let (_server, mut requests, server_addr) = endpoint().await;
        tokio::spawn(async move {
            while let Some(r) = requests.recv().await {
                let resp = r.request.response(200, reason_phrase(200));
                tokio::spawn(async move { r.tx.respond(resp).await });
            }
        });
        let start = Instant::now();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = Vec::with_capacity(TOTAL);
        for n in 0..TOTAL {
            let permit = sem.clone().acquire_owned().await.expect("semaphore");
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                let mut tx = client.request(message(n), server_addr).await.expect("send");
                loop {
                    let r = tx.response().await.expect("response");
                    if r.code >= 200 {
                        return r.code;
                    }
                }
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.expect("task") == 200 {
                ok += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "transactions over loopback UDP: {TOTAL} MESSAGE → 200, {ok} answered, {:.0} transactions/s, {IN_FLIGHT} in flight",
            TOTAL as f64 / secs
        );
    });
}
