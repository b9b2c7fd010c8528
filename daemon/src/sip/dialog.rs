//! Dialogs (RFC 3261 §12): the state two user agents share for a call, and the requests
//! sent inside it (ACK, BYE, re-INVITE) with the right tags, CSeq, target and route set.

use crate::sip::message::{Headers, Method, Name, NameAddr, Request, Response, SipHeaders};
use crate::sip::resolve::resolve;
use crate::sip::transport::Target;
use crate::sip::uri::Uri;

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our side, with our tag: From in our requests.
    pub local: NameAddr,
    /// The far side, with its tag: To in our requests.
    pub remote: NameAddr,
    /// Where in-dialog requests go: the far side's Contact.
    pub remote_target: Uri,
    /// Route header values, in the order our requests carry them.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    /// Our Contact, for re-INVITEs and their answers.
    pub contact: String,
}

fn contact_uri(h: &Headers) -> Option<Uri> {
    h.get(&Name::Contact)
        .and_then(|c| NameAddr::parse(c).ok())
        .map(|c| c.uri)
}

impl Dialog {
    /// The UAC's dialog from a 2xx (or a 1xx with a To tag) to its INVITE.
    pub fn from_response(invite: &Request, resp: &Response, contact: String) -> Option<Dialog> {
        let remote = resp.to()?;
        remote.tag()?;
        let mut route_set: Vec<String> = resp
            .headers
            .all(&Name::RecordRoute)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            call_id: invite.call_id()?.to_string(),
            local: invite.from()?,
            remote,
            remote_target: contact_uri(&resp.headers)?,
            route_set,
            local_cseq: invite.cseq()?.seq,
            remote_cseq: None,
            contact,
        })
    }

    /// The UAS's dialog from an INVITE it answers, with the To tag it chose.
    pub fn from_request(req: &Request, local_tag: &str, contact: String) -> Option<Dialog> {
        let mut local = req.to()?;
        local.set_param("tag", Some(local_tag.to_string()));
        Some(Dialog {
            call_id: req.call_id()?.to_string(),
            local,
            remote: req.from()?,
            remote_target: contact_uri(&req.headers)?,
            route_set: req
                .headers
                .all(&Name::RecordRoute)
                .map(str::to_string)
                .collect(),
            local_cseq: fastrand::u32(1..1 << 16),
            remote_cseq: req.cseq().map(|c| c.seq),
            contact,
        })
    }

    /// Whether `req` belongs to this dialog (Call-ID and both tags).
    pub fn matches(&self, req: &Request) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req.to().is_some_and(|t| t.tag() == self.local.tag())
            && req.from().is_some_and(|f| f.tag() == self.remote.tag())
    }

    /// A new request in the dialog. ACK reuses the INVITE's CSeq number; others count up.
    pub fn request(&mut self, method: Method, invite_cseq: Option<u32>) -> Request {
        let seq = match (&method, invite_cseq) {
            (Method::Ack, Some(n)) => n,
            _ => {
                self.local_cseq += 1;
                self.local_cseq
            }
        };
        let mut h = Headers::default();
        h.push(Name::MaxForwards, "70");
        h.push(Name::From, self.local.to_string());
        h.push(Name::To, self.remote.to_string());
        h.push(Name::CallId, self.call_id.clone());
        h.push(Name::CSeq, format!("{seq} {method}"));
        for r in &self.route_set {
            h.push(Name::Route, r.clone());
        }
        if method != Method::Ack {
            h.push(Name::Contact, self.contact.clone());
        }
        Request {
            method,
            uri: self.remote_target.clone(),
            headers: h,
            body: Vec::new(),
        }
    }

    /// Where in-dialog requests are sent: the first route (loose routing), else the target.
    pub async fn next_hop(&self) -> Result<Target, String> {
        let uri = match self.route_set.first() {
            Some(r) => {
                NameAddr::parse(r)
                    .map_err(|e| format!("bad route {r}: {e}"))?
                    .uri
            }
            None => self.remote_target.clone(),
        };
        match uri {
            Uri::Sip(u) => resolve(&u).await,
            other => Err(format!("cannot send to {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Message, parse};

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=a1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\nRecord-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\nContent-Length: 0\r\n\r\n";

    fn req() -> Request {
        match parse(INVITE.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uas_dialog_routes_in_record_route_order() {
        let r = req();
        let mut d = Dialog::from_request(&r, "b1", "<sip:bob@10.0.0.2>".into()).unwrap();
        let bye = d.request(Method::Bye, None);
        assert_eq!(bye.uri.to_string(), "sip:alice@10.0.0.1");
        assert_eq!(
            bye.headers.all(&Name::Route).collect::<Vec<_>>(),
            ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
        );
        assert_eq!(bye.from().unwrap().tag(), Some("b1"));
        assert_eq!(bye.to().unwrap().tag(), Some("a1"));
        assert!(d.matches(&{
            let mut x = r.clone();
            x.headers.set_first(Name::To, "<sip:bob@b.example>;tag=b1");
            x
        }));
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_invite_cseq() {
        let r = req();
        let mut resp = r.response(200, "OK");
        resp.headers
            .set_first(Name::To, "<sip:bob@b.example>;tag=b9");
        // The 200 carries the INVITE's Record-Route (Request::response copies it).
        resp.headers.push(Name::Contact, "<sip:bob@10.0.0.2:5070>");
        let mut d = Dialog::from_response(&r, &resp, "<sip:alice@10.0.0.1>".into()).unwrap();
        let ack = d.request(Method::Ack, Some(5));
        assert_eq!(ack.cseq().unwrap().seq, 5);
        assert_eq!(ack.uri.to_string(), "sip:bob@10.0.0.2:5070");
        assert_eq!(
            ack.headers.all(&Name::Route).collect::<Vec<_>>(),
            ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
        );
        assert_eq!(d.request(Method::Bye, None).cseq().unwrap().seq, 6);
    }
}
