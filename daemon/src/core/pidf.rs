//! Presence documents: PIDF (RFC 3863) with the RPID activities (RFC 4480) that say away
//! or busy. What other clients send varies; this reads the common shapes and writes one.

use super::presence::PresenceStatus;

pub(super) const CONTENT_TYPE: &str = "application/pidf+xml";

const PIDF: &str = "urn:ietf:params:xml:ns:pidf";
const RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";

/// A document's status and note (the first note found, person before tuple).
pub fn parse(body: &[u8]) -> Result<(PresenceStatus, String), String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8".to_string())?;
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "presence" || root.tag_name().namespace() != Some(PIDF) {
        return Err("not a PIDF document (no urn:ietf:params:xml:ns:pidf presence)".into());
    }
    let named =
        |n: &roxmltree::Node<'_, '_>, name: &str| n.is_element() && n.tag_name().name() == name;
    let basics: Vec<String> = root
        .children()
        .filter(|n| named(n, "tuple"))
        .flat_map(|t| t.descendants().filter(|n| named(n, "basic")))
        .filter_map(|b| b.text().map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    let open = basics.iter().any(|b| b == "open");
    // Neither open nor closed (baresip sends "?" before its user sets a status).
    if !open && !basics.iter().any(|b| b == "closed") {
        return Ok((PresenceStatus::Unknown, String::new()));
    }
    let activities: Vec<&str> = root
        .descendants()
        // By local name: RFC 4480's namespace, or Asterisk's rpid-person one.
        .filter(|n| {
            named(n, "activities")
                && n.tag_name()
                    .namespace()
                    .is_some_and(|ns| ns.starts_with(RPID))
        })
        .flat_map(|a| a.children().filter(|n| n.is_element()))
        .map(|n| n.tag_name().name())
        .collect();
    let note = root
        .descendants()
        .filter(|n| named(n, "note"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .find(|t| !t.is_empty())
        .unwrap_or_default()
        .to_string();
    let busy = [
        "busy",
        "on-the-phone",
        "meeting",
        "performance",
        "presentation",
    ];
    let away = [
        "away",
        "vacation",
        "sleeping",
        "appointment",
        "steering",
        "travel",
    ];
    let says = |list: &[&str]| {
        activities.iter().any(|a| list.contains(a))
            // Older clients (and baresip) say it only in the note.
            || list.iter().any(|w| note.eq_ignore_ascii_case(w))
    };
    let status = if !open {
        PresenceStatus::Offline
    } else if says(&busy) {
        PresenceStatus::Busy
    } else if says(&away) {
        PresenceStatus::Away
    } else {
        PresenceStatus::Online
    };
    Ok((status, note))
}

/// Our document for `entity` (our address of record).
pub fn write(entity: &str, status: PresenceStatus, note: &str) -> String {
    let basic = if status == PresenceStatus::Offline {
        "closed"
    } else {
        "open"
    };
    let activity = match status {
        PresenceStatus::Away => "<rpid:away/>",
        PresenceStatus::Busy => "<rpid:busy/>",
        _ => "",
    };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<dm:note>{}</dm:note>", xml_escape(note))
    };
    let person = if activity.is_empty() && note.is_empty() {
        String::new()
    } else {
        let activities = if activity.is_empty() {
            String::new()
        } else {
            format!("<rpid:activities>{activity}</rpid:activities>")
        };
        format!("<dm:person id=\"p1\">{activities}{note}</dm:person>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <presence xmlns=\"{PIDF}\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"{RPID}\" entity=\"{}\">\
         <tuple id=\"t1\"><status><basic>{basic}</basic></status></tuple>{person}</presence>\r\n",
        xml_escape(entity)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_reads_back() {
        for s in [
            PresenceStatus::Online,
            PresenceStatus::Away,
            PresenceStatus::Busy,
            PresenceStatus::Offline,
        ] {
            let doc = write("sip:me@example.com", s, "at <home> & \"happy\"");
            assert_eq!(
                parse(doc.as_bytes()).unwrap(),
                (s, "at <home> & \"happy\"".to_string())
            );
        }
    }

    #[test]
    fn reads_a_plain_pidf_with_a_note() {
        let doc = r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"><tuple id="x"><status><basic>open</basic></status><note>Busy</note></tuple></presence>"#;
        assert_eq!(
            parse(doc.as_bytes()).unwrap(),
            (PresenceStatus::Busy, "Busy".to_string())
        );
    }

    #[test]
    fn an_undecided_status_is_unknown() {
        let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:b@x"><tuple id="t"><status><basic>?</basic></status></tuple></presence>"#;
        assert_eq!(parse(doc.as_bytes()).unwrap().0, PresenceStatus::Unknown);
    }

    #[test]
    fn reads_asterisks_activities() {
        let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:pp="urn:ietf:params:xml:ns:pidf:person" xmlns:es="urn:ietf:params:xml:ns:pidf:rpid:status:rpid-status" xmlns:ep="urn:ietf:params:xml:ns:pidf:rpid:rpid-person" entity="sip:100@pbx"><pp:person><status><ep:activities><ep:busy/></ep:activities></status></pp:person><tuple id="100"><status><basic>open</basic></status></tuple></presence>"#;
        assert_eq!(parse(doc.as_bytes()).unwrap().0, PresenceStatus::Busy);
    }

    #[test]
    fn refuses_what_is_not_pidf() {
        assert!(parse(b"<presence/>").is_err());
        assert!(parse(b"<<<").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
