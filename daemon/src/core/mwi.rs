//! Message waiting (RFC 3842): the provider's voicemail box summarised for an account, from
//! the NOTIFYs of a `message-summary` subscription to the account's AOR or unsolicited
//! ones from its registrar.

use super::calls::CallUpdate;
use super::subscriber::Watch;
use crate::sip::usage::subscription::{MESSAGE_SUMMARY, Package, SubState};

/// An account's voicemail as the provider counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageSummary {
    /// Messages-Waiting: yes.
    pub waiting: bool,
    /// Voice-Message: new/old (urgent new/urgent old).
    pub new: u32,
    pub old: u32,
    pub urgent_new: u32,
    pub urgent_old: u32,
}

/// Reads an `application/simple-message-summary` body (RFC 3842 §5). Only voice messages
/// are counted; other classes (fax, text…) are read and left aside. Anything that is not
/// such a body is an error, so that a count is never made up.
pub(super) fn parse(body: &[u8]) -> Result<MessageSummary, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8".to_string())?;
    let mut summary = MessageSummary::default();
    let mut waiting = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("{line:?} is not a header line"));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "messages-waiting" => {
                waiting = Some(match value.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("Messages-Waiting: {value:?} is neither yes nor no")),
                });
            }
            "voice-message" => {
                summary = counts(value).ok_or_else(|| {
                    format!("Voice-Message: {value:?} is not new/old (urgent/urgent)")
                })?;
            }
            // Message-Account, other message classes (fax, text…), and the optional
            // message headers after them.
            _ => {}
        }
    }
    summary.waiting =
        waiting.ok_or_else(|| "no Messages-Waiting line (RFC 3842 requires it)".to_string())?;
    Ok(summary)
}

/// "2/8 (0/2)": new/old and, optionally, urgent new/urgent old.
fn counts(value: &str) -> Option<MessageSummary> {
    let pair = |s: &str| -> Option<(u32, u32)> {
        let (a, b) = s.split_once('/')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    let (main, urgent) = match value.split_once('(') {
        Some((main, rest)) => (main, pair(rest.trim().strip_suffix(')')?)?),
        None => (value, (0, 0)),
    };
    let (new, old) = pair(main)?;
    Some(MessageSummary {
        waiting: false,
        new,
        old,
        urgent_new: urgent.0,
        urgent_old: urgent.1,
    })
}

/// A subscription's view of one account's box.
pub(super) struct MwiWatch {
    pub account: String,
    pub name: String,
    last: Option<MessageSummary>,
    pending: Option<MessageSummary>,
}

impl MwiWatch {
    pub(super) fn new(account: &str) -> MwiWatch {
        MwiWatch {
            account: account.to_string(),
            name: format!("voicemail summary of account {account}"),
            last: None,
            pending: None,
        }
    }
}

impl Watch for MwiWatch {
    const PACKAGE: Package = MESSAGE_SUMMARY;

    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, body: &[u8], _: &SubState) -> Result<Option<CallUpdate>, String> {
        // No body (a pending subscription, a server with nothing to say): no news.
        if body.is_empty() {
            return Ok(None);
        }
        let summary = parse(body)?;
        if self.last == Some(summary) {
            return Ok(None);
        }
        self.pending = Some(summary);
        Ok(Some(CallUpdate::MessageSummary {
            account: self.account.clone(),
            summary,
        }))
    }

    // The counts stay as last told: a server that cannot be asked now has not emptied
    // the box.
    fn unknown(&mut self, _: String) -> Option<CallUpdate> {
        None
    }

    fn absent(&mut self) -> Option<CallUpdate> {
        None
    }

    fn delivered(&mut self) {
        if let Some(s) = self.pending.take() {
            self.last = Some(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_read_as_rfc_3842_writes_them() {
        let s = parse(
            b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n\
              Voice-Message: 2/8 (0/2)\r\nFax-Message: 1/0\r\n",
        )
        .unwrap();
        assert_eq!(
            s,
            MessageSummary {
                waiting: true,
                new: 2,
                old: 8,
                urgent_new: 0,
                urgent_old: 2
            }
        );
        let s = parse(b"messages-waiting: NO\r\n").unwrap();
        assert_eq!(s, MessageSummary::default());
    }

    #[test]
    fn malformed_summaries_are_refused() {
        for bad in [
            &b""[..],
            b"Voice-Message: 1/0\r\n",
            b"Messages-Waiting: maybe\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: many\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3\r\n",
            b"garbage",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
