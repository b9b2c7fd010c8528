//! vCard (RFC 6350, 4.0; 3.0 and 2.1 as other programs still write them) to contacts and
//! back. What a phone needs is read: the name (FN, else N, else ORG), SIP addresses (IMPP, X-SIP, a
//! sip: URL in TEL) and numbers (TEL), NOTE, UID and a favourite mark (CATEGORIES Favourites
//! or Google's starred, or X-VOIPD-FAVOURITE). What voipd has no place for (EMAIL, ADR, PHOTO,
//! ORG beside a name, a number's extension, …) is not kept but named in [`Card::skipped`], so
//! the import can say what it left out; a card's bookkeeping (VERSION, PRODID, REV, …) is not.
//!
//! Written cards are vCard 4.0. Numbers are tel: URIs; a local one (no leading +) carries
//! the domain it is dialled in as phone-context (RFC 3966 §5.1.5), or is written as text
//! when no domain is known. A contact named by its number has an empty N.

use std::fmt::Write as _;

use crate::store::Contact;

/// A contact as one card describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Card {
    /// UID, when the card has one.
    pub uid: Option<String>,
    /// FN, else N, else ORG.
    pub name: String,
    /// As written in the card, in preference order; checked and normalised by the caller.
    pub addresses: Vec<String>,
    /// In the favourites category.
    pub favourite: bool,
    /// NOTE.
    pub notes: String,
    /// What the card has that is not kept (`EMAIL`, `IMPP (xmpp)`, `TEL extension 12`),
    /// each once, in the order first seen; bookkeeping that loses nothing is not named.
    pub skipped: Vec<String>,
}

/// Why a file is not vCards, and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct VcardError {
    /// Where, counting from 1.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

/// The CATEGORIES value that marks a favourite, written and read.
const FAVOURITES: &str = "Favourites";

/// CATEGORIES values read as a favourite mark, any case: ours, the American spelling and
/// Google Contacts' `starred` (it exports `CATEGORIES:myContacts,starred`).
const FAVOURITE_CATEGORIES: &[&str] = &[
    "favourites",
    "favorites",
    "favourite",
    "favorite",
    "starred",
];

/// Properties not named among the skipped although they are not kept: they describe the
/// card rather than the person (format version, the program that wrote it, when, how to
/// sort or file it, sync state), so nothing the user entered is lost with them. The X-
/// ones are the vendor bookkeeping phones and mail programs commonly write (Apple's ids,
/// item labels and display hints, Outlook's layout, Thunderbird's mail format flag); a
/// label (X-ABLabel) only describes a value beside it, which is kept or named itself.
/// Other X- properties are named: they are private to their writer (RFC 6350 §6.10) and
/// often hold what the user typed (X-ANDROID-CUSTOM nicknames, X-JABBER, X-SKYPE), and
/// saying too much is better than losing something silently.
const NOT_REPORTED: &[&str] = &[
    "VERSION",
    "PRODID",
    "REV",
    "KIND",
    "SOURCE",
    "CLIENTPIDMAP",
    "PROFILE",
    "NAME",
    "SORT-STRING",
    "CLASS",
    "X-ABUID",
    "X-ABLABEL",
    "X-ABSHOWAS",
    "X-ABADR",
    "X-ADDRESSBOOKSERVER-KIND",
    "X-IMAGETYPE",
    "X-IMAGEHASH",
    "X-SHARED-PHOTO-DISPLAY-PREF",
    "X-MOZILLA-HTML",
    "X-EVOLUTION-FILE-AS",
    "X-MS-OL-DESIGN",
    "X-MS-OL-DEFAULT-POSTAL-ADDRESS",
];

/// One content line, unfolded: `group.NAME;PARAM=V:value`.
struct Line {
    /// Where it starts in the file, 1-based.
    number: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl Line {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// vCard 2.1 writes types bare (`TEL;CELL:`); later versions as TYPE=.
    fn has_type(&self, t: &str) -> bool {
        self.params.iter().any(|(n, v)| {
            (n.eq_ignore_ascii_case("TYPE") && v.split(',').any(|x| x.eq_ignore_ascii_case(t)))
                || (v.is_empty() && n.eq_ignore_ascii_case(t))
        })
    }
}

/// Every card in `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Card>, VcardError> {
    let mut cards = Vec::new();
    let mut current: Option<(usize, Vec<Line>)> = None;
    for line in unfold(text.trim_start_matches('\u{feff}')) {
        let line = line?;
        match (line.name.as_str(), &mut current) {
            ("BEGIN", None) if line.value.eq_ignore_ascii_case("VCARD") => {
                current = Some((line.number, Vec::new()));
            }
            ("END", Some(_)) if line.value.eq_ignore_ascii_case("VCARD") => {
                if let Some((_, lines)) = current.take() {
                    cards.push(card(&lines)?);
                }
            }
            // A card inside a card (vCard 2.1 AGENT) is not one of the address book's.
            ("BEGIN", Some(_)) => {
                return Err(VcardError {
                    line: line.number,
                    message: "BEGIN inside a card".into(),
                });
            }
            (_, Some((_, lines))) => lines.push(line),
            (_, None) => {
                return Err(VcardError {
                    line: line.number,
                    message: format!("{} outside BEGIN:VCARD … END:VCARD", line.name),
                });
            }
        }
    }
    if let Some((begun, _)) = current {
        return Err(VcardError {
            line: begun,
            message: "this card has no END:VCARD".into(),
        });
    }
    Ok(cards)
}

fn card(lines: &[Line]) -> Result<Card, VcardError> {
    let mut c = Card::default();
    let mut full_name = None;
    let mut structured = None;
    // (preference, order seen, address): PREF (1 most preferred) first, then file order.
    let mut addresses: Vec<(u32, usize, String)> = Vec::new();
    let mut notes = Vec::new();
    let mut organisation: Option<String> = None;
    // What is not kept, as it will be named; the first ORG's place, as it is kept after
    // all when it names the card.
    let mut left: Vec<String> = Vec::new();
    let mut organisation_at = None;
    for (i, l) in lines.iter().enumerate() {
        let pref = l
            .param("PREF")
            .and_then(|p| p.parse().ok())
            .unwrap_or(if l.has_type("PREF") { 100 } else { 101 });
        match l.name.as_str() {
            "FN" => full_name = Some(unescape(&l.text()?)),
            "N" => structured = Some(l.text()?),
            "ORG" if organisation.is_none() => {
                let o = split_escaped(&l.text()?, ';')
                    .first()
                    .map(|o| unescape(o))
                    .unwrap_or_default();
                if !o.trim().is_empty() {
                    organisation_at = Some(left.len());
                    left.push("ORG".into());
                }
                organisation = Some(o);
            }
            "UID" => c.uid = Some(l.value.trim().to_string()).filter(|u| !u.is_empty()),
            "NOTE" => notes.push(unescape(&l.text()?)),
            "TEL" => {
                let v = percent_decoded(&unescape(&l.text()?));
                let v = v.trim();
                // A tel: URI's parameters (;ext=, ;phone-context=) are not part of the number.
                let (v, params) = match strip_scheme(v, "tel:") {
                    Some(uri) => uri.split_once(';').unwrap_or((uri, "")),
                    None => (v, ""),
                };
                if !v.is_empty() {
                    addresses.push((pref, i, v.to_string()));
                    // Dialling the number without it reaches the switchboard, not the person.
                    if let Some(ext) = param_value(params, "ext") {
                        left.push(extension(ext));
                    }
                }
            }
            "IMPP" | "X-SIP" | "X-SIP-URI" => {
                let v = unescape(&l.text()?);
                let v = v.trim();
                let sip = if strip_scheme(v, "sip:").is_some() || strip_scheme(v, "sips:").is_some()
                {
                    Some(v.to_string())
                } else if l.name != "IMPP" && !v.contains(':') {
                    Some(format!("sip:{v}"))
                } else {
                    // xmpp:, skype: and other services are not ours to call.
                    None
                };
                match sip {
                    Some(a) => addresses.push((pref, i, a)),
                    None if !v.is_empty() => left.push(with_scheme(&l.name, v)),
                    None => {}
                }
            }
            // Read for the favourite mark only: its other values (Google's myContacts) are
            // groups in the program the card came from, not facts about the person.
            "CATEGORIES" => {
                c.favourite |= split_list(&l.value).iter().any(|x| {
                    FAVOURITE_CATEGORIES
                        .iter()
                        .any(|f| x.trim().eq_ignore_ascii_case(f))
                });
            }
            "X-VOIPD-FAVOURITE" => c.favourite |= l.value.trim().eq_ignore_ascii_case("TRUE"),
            name if NOT_REPORTED.contains(&name) || name.starts_with("X-VOIPD-") => {}
            _ if !has_value(l) => {}
            "X-ANDROID-CUSTOM" => left.push(android_custom(&l.value)),
            name => left.push(shown(name)),
        }
    }
    // Phones export cards with only a company, or only a number: name them by that.
    let full_name = full_name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let structured = structured
        .map(|n| name_from_parts(&n))
        .filter(|n| !n.is_empty());
    let organisation = organisation
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty());
    c.name = match (full_name.or(structured), organisation) {
        (Some(name), _) => name,
        (None, Some(o)) => {
            if let Some(at) = organisation_at {
                left.remove(at);
            }
            o
        }
        (None, None) => String::new(),
    };
    addresses.sort_by_key(|(pref, i, _)| (*pref, *i));
    // A set, not a scan of what is kept: a crafted card of a million lines stays linear.
    let mut seen = std::collections::HashSet::new();
    c.addresses = addresses
        .into_iter()
        .map(|(_, _, a)| a)
        .filter(|a| seen.insert(a.clone()))
        .collect();
    c.notes = notes.join("\n");
    let mut seen = std::collections::HashSet::new();
    c.skipped = left
        .into_iter()
        .filter(|l| seen.insert(l.clone()))
        .collect();
    Ok(c)
}

/// Whether a property says anything: `ADR:;;;;;;` and `ORG:` do not, so nothing is lost.
fn has_value(l: &Line) -> bool {
    !l.value
        .trim_matches(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .is_empty()
}

/// The value of `;name=value` among a tel: URI's parameters (`ext=12;isub=3`).
fn param_value<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        p.split_once('=')
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    })
}

/// `TEL extension 12`; the extension only when it is digits, as it comes from the file.
fn extension(ext: &str) -> String {
    let digits = !ext.is_empty()
        && ext.len() <= 20
        && ext
            .chars()
            .all(|c| c.is_ascii_digit() || "-.()".contains(c));
    if digits {
        format!("TEL extension {ext}")
    } else {
        "TEL extension".into()
    }
}

/// `IMPP (xmpp)`: which service an address not called was for, when it says.
fn with_scheme(name: &str, v: &str) -> String {
    match v.split_once(':') {
        Some((scheme, _)) if is_scheme(scheme) => {
            format!("{} ({})", shown(name), shown(&scheme.to_ascii_lowercase()))
        }
        _ => shown(name),
    }
}

/// RFC 3986 §3.1: a letter, then letters, digits, '+', '-' and '.'.
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Android writes what vCard has no property for (nickname, relation, events) as
/// `X-ANDROID-CUSTOM:vnd.android.cursor.item/nickname;…`: named by that kind.
fn android_custom(v: &str) -> String {
    let kind = v
        .split(';')
        .next()
        .and_then(|t| t.rsplit('/').next())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match kind {
        Some(k) => format!("X-ANDROID-CUSTOM ({})", shown(k)),
        None => "X-ANDROID-CUSTOM".into(),
    }
}

/// A name from the file as it may be shown on a terminal: short, and only the characters
/// a property name has (RFC 6350 §3.3), others as '?'.
fn shown(name: &str) -> String {
    name.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// N is family;given;additional;prefixes;suffixes: "Dr. Given Additional Family Jr.".
fn name_from_parts(n: &str) -> String {
    let parts: Vec<String> = split_escaped(n, ';').iter().map(|p| unescape(p)).collect();
    let at = |i: usize| parts.get(i).map_or("", |s| s.trim());
    [at(3), at(1), at(2), at(0), at(4)]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `%XX` escapes (as in a tel: URI's `%23`) decoded; others left as they are.
fn percent_decoded(v: &str) -> String {
    String::from_utf8(hex_escapes(v, b'%')).unwrap_or_else(|_| v.to_string())
}

/// `v` with every `MARK` and two hex digits replaced by that byte.
fn hex_escapes(v: &str, mark: u8) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (c, Some(x)) if c == mark => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn strip_scheme<'a>(v: &'a str, scheme: &str) -> Option<&'a str> {
    v.get(..scheme.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        .then(|| &v[scheme.len()..])
}

fn split_list(v: &str) -> Vec<String> {
    split_escaped(v, ',').iter().map(|p| unescape(p)).collect()
}

/// Splits at `sep` where it is not escaped with a backslash.
fn split_escaped(v: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, ch) in v.char_indices() {
        match ch {
            '\\' if !escaped => escaped = true,
            c if c == sep && !escaped => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    out.push(&v[start..]);
    out
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The content lines of `text`, unfolded (a line starting with a space or tab continues
/// the one before; vCard 2.1 quoted-printable continues with a trailing `=`) and decoded.
fn unfold(text: &str) -> impl Iterator<Item = Result<Line, VcardError>> + '_ {
    let mut raw = text.lines().enumerate().peekable();
    std::iter::from_fn(move || {
        loop {
            let (i, first) = raw.next()?;
            if first.trim().is_empty() {
                continue;
            }
            let mut joined = first.to_string();
            let quoted_printable = first
                .split(':')
                .next()
                .is_some_and(|head| head.to_ascii_uppercase().contains("QUOTED-PRINTABLE"));
            loop {
                if quoted_printable && joined.ends_with('=') {
                    match raw.next() {
                        Some((_, next)) => {
                            joined.pop();
                            joined.push_str(next);
                            continue;
                        }
                        None => break,
                    }
                }
                match raw.peek() {
                    Some((_, next)) if next.starts_with([' ', '\t']) => {
                        joined.push_str(&next[1..]);
                        raw.next();
                    }
                    _ => break,
                }
            }
            return Some(content_line(i + 1, &joined));
        }
    })
}

fn content_line(number: usize, text: &str) -> Result<Line, VcardError> {
    let bad = |message: String| VcardError {
        line: number,
        message,
    };
    // The value starts at the first colon outside a quoted parameter value.
    let mut quoted = false;
    let colon = text
        .char_indices()
        .find(|&(_, c)| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ':' && !quoted
        })
        .map(|(i, _)| i)
        .ok_or_else(|| bad(format!("no ':' in {:?}", truncate(text))))?;
    let (head, value) = (&text[..colon], &text[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or_default();
    // A group prefix (item1.TEL) only ties properties together; the name is what counts.
    let name = name.rsplit('.').next().unwrap_or(name).trim();
    if name.is_empty() {
        return Err(bad(format!("no property name in {:?}", truncate(text))));
    }
    let params: Vec<(String, String)> = parts
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_string(), v.trim().trim_matches('"').to_string()),
            None => (p.trim().to_string(), String::new()),
        })
        .collect();
    Ok(Line {
        number,
        name: name.to_ascii_uppercase(),
        params,
        value: value.to_string(),
    })
}

impl Line {
    /// The value as text: quoted-printable (vCard 2.1) decoded in its charset. Only the
    /// properties read are decoded, so an odd charset elsewhere (a photo, an address)
    /// does not stop an import.
    fn text(&self) -> Result<String, VcardError> {
        let qp = self
            .param("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("QUOTED-PRINTABLE"))
            || self.has_type("QUOTED-PRINTABLE");
        if !qp {
            return Ok(self.value.clone());
        }
        decode_charset(&quoted_printable(&self.value), self.param("CHARSET")).map_err(|message| {
            VcardError {
                line: self.number,
                message,
            }
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn quoted_printable(v: &str) -> Vec<u8> {
    hex_escapes(v, b'=')
}

const WINDOWS_1252: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

fn decode_charset(bytes: &[u8], charset: Option<&str>) -> Result<String, String> {
    match charset.map(str::to_ascii_uppercase).as_deref() {
        None | Some("UTF-8" | "US-ASCII") => String::from_utf8(bytes.to_vec())
            .map_err(|_| "the text is not valid UTF-8 (say CHARSET= if it is not)".into()),
        // Latin-1 bytes are the first 256 code points.
        Some("ISO-8859-1" | "LATIN1") => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        // What Outlook writes: Latin-1 with printable characters where it has controls.
        Some("WINDOWS-1252" | "CP1252") => Ok(bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9f => WINDOWS_1252[usize::from(b - 0x80)],
                _ => char::from(b),
            })
            .collect()),
        Some(other) => Err(format!("charset {other} is not supported; use UTF-8")),
    }
}

/// vCard 4.0, CRLF line ends, lines folded at 75 octets. `phone_context` is the domain
/// local numbers (those without a leading +) are dialled in, such as the account's; it is
/// not used unless it is a domain name.
pub fn write<'a>(
    contacts: impl IntoIterator<Item = &'a Contact>,
    phone_context: Option<&str>,
) -> String {
    let phone_context = phone_context.filter(|d| is_domain_name(d));
    let mut s = String::new();
    for c in contacts {
        let mut lines = vec![
            "BEGIN:VCARD".to_string(),
            "VERSION:4.0".to_string(),
            format!("UID:{}", c.uid),
            format!("FN:{}", escape(&c.name)),
        ];
        // A contact imported with only a number (or SIP address) is named by it; as a
        // family name it would be filed under its digits. N is still written, empty, as
        // vCard 3.0 readers require one.
        if super::contacts::normalise_address(&c.name).is_ok() {
            lines.push("N:;;;;".to_string());
        } else {
            // N is family;given: the last word is taken as the family name, as most do.
            let (given, family) = c.name.rsplit_once(' ').unwrap_or(("", &c.name));
            lines.push(format!("N:{};{};;;", escape(family), escape(given)));
        }
        for (i, a) in c.addresses.iter().enumerate() {
            let pref = i + 1;
            // '#' would start a URI's fragment.
            let uri = || a.replace('#', "%23");
            if a.starts_with("sip:") || a.starts_with("sips:") {
                lines.push(format!("IMPP;PREF={pref}:{a}"));
            } else if a.starts_with('+') {
                lines.push(format!("TEL;VALUE=uri;PREF={pref}:tel:{}", uri()));
            } else if let Some(domain) = phone_context {
                // RFC 3966 §5.1.5: a local number's tel: URI must say where it is local.
                lines.push(format!(
                    "TEL;VALUE=uri;PREF={pref}:tel:{};phone-context={domain}",
                    uri()
                ));
            } else {
                // No domain is known, and one made up would claim a numbering plan nobody
                // runs. Text is what TEL is by default (RFC 6350 §6.4.1) and what vCard
                // 3.0 always wrote, so every reader takes it; a tel: URI without
                // phone-context would be invalid.
                lines.push(format!("TEL;VALUE=text;PREF={pref}:{}", escape(a)));
            }
        }
        if c.favourite {
            lines.push(format!("CATEGORIES:{FAVOURITES}"));
        }
        if !c.notes.is_empty() {
            lines.push(format!("NOTE:{}", escape(&c.notes)));
        }
        lines.push("END:VCARD".to_string());
        for l in lines {
            fold(&mut s, &l);
        }
    }
    s
}

/// RFC 3966's domainname: labels of letters, digits and inner hyphens, the last starting
/// with a letter (so an IP address, which phone-context cannot hold, is not one).
fn is_domain_name(d: &str) -> bool {
    let d = d.strip_suffix('.').unwrap_or(d);
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let top = d.rsplit('.').next().unwrap_or(d);
    d.len() <= 253 && d.split('.').all(label) && top.starts_with(|c: char| c.is_ascii_alphabetic())
}

fn fold(out: &mut String, line: &str) {
    let mut width = 0;
    for ch in line.chars() {
        if width + ch.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += ch.len_utf8();
    }
    let _ = write!(out, "\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(
        uid: &str,
        name: &str,
        addresses: Vec<String>,
        favourite: bool,
        notes: &str,
    ) -> Contact {
        Contact {
            id: 1,
            uid: uid.into(),
            name: name.into(),
            addresses,
            favourite,
            notes: notes.into(),
        }
    }

    #[test]
    fn reads_what_other_programs_write() {
        let text = "\u{feff}BEGIN:VCARD\r\nVERSION:3.0\r\nN:Liddell;Alice;;Ms.;\r\nFN:Alice Liddell\r\n\
            item1.TEL;TYPE=CELL:+44 1865 270000\r\nitem1.X-ABLabel:mobile\r\n\
            IMPP;X-SERVICE-TYPE=xmpp:xmpp:alice@example.org\r\nX-SIP:alice@example.com\r\n\
            NOTE:Lives down the rabbit hole\\, mostly.\\nCall after 10.\r\n\
            CATEGORIES:friends,starred\r\nPHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD\r\n \
            /2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0\r\n\
            END:VCARD\r\n\
            BEGIN:VCARD\nVERSION:2.1\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen\n\
            TEL;WORK;VOICE:030 1234-567\nTEL;CELL;PREF:0170 7654321\nEND:VCARD\n";
        let cards = parse(text).unwrap();
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].name, "Alice Liddell");
        assert_eq!(
            cards[0].addresses,
            ["+44 1865 270000", "sip:alice@example.com"]
        );
        assert_eq!(
            cards[0].notes,
            "Lives down the rabbit hole, mostly.\nCall after 10."
        );
        assert!(cards[0].favourite);
        assert_eq!(
            cards[0].skipped,
            ["IMPP (xmpp)", "PHOTO"],
            "X-ABLabel is not"
        );
        assert_eq!(cards[1].name, "Jürgen Müller");
        assert_eq!(cards[1].addresses, ["0170 7654321", "030 1234-567"]);
        assert!(!cards[1].favourite);
        assert!(cards[1].skipped.is_empty());
    }

    #[test]
    fn a_broken_file_names_the_line() {
        let e =
            parse("BEGIN:VCARD\nVERSION:4.0\nFN:A\nthis has no colon\nEND:VCARD\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(parse("BEGIN:VCARD\nFN:A\n").unwrap_err().line, 1);
        // The name is read, so its charset must be known.
        let e = parse("BEGIN:VCARD\nN;CHARSET=KOI8-R;ENCODING=QUOTED-PRINTABLE:=C1\nEND:VCARD")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("KOI8-R"), "{e}");
    }

    #[test]
    fn odd_cards_are_read_not_refused() {
        let text = "BEGIN:VCARD\nVERSION:3.0\nORG:Pizza Roma;Delivery\nTEL:*21#\nEND:VCARD\n\
            BEGIN:VCARD\nVERSION:2.1\nTEL:123é\nIMPP:abcé\n\
            ADR;CHARSET=KOI8-R;ENCODING=QUOTED-PRINTABLE:=C1\n\
            NOTE;CHARSET=WINDOWS-1252;ENCODING=QUOTED-PRINTABLE:=80 5 =96 cheap\nEND:VCARD\n";
        let cards = parse(text).unwrap();
        assert_eq!(cards[0].name, "Pizza Roma");
        assert_eq!(cards[0].addresses, ["*21#"]);
        assert_eq!(cards[1].name, "", "the caller names it by an address");
        assert_eq!(cards[1].notes, "€ 5 – cheap");
        assert!(
            cards[0].skipped.is_empty(),
            "ORG names it: {:?}",
            cards[0].skipped
        );
        assert_eq!(
            cards[1].skipped,
            ["IMPP", "ADR"],
            "named, not decoded, so its charset does not matter"
        );
        for context in [None, Some("example.com")] {
            let back = parse(&write(
                [&contact(
                    "u",
                    "Pizza Roma",
                    cards[0].addresses.clone(),
                    false,
                    "",
                )],
                context,
            ))
            .unwrap();
            assert_eq!(back[0].addresses, ["*21#"], "# survives as %23");
        }
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let addresses = vec![
            "+441865270000".to_string(),
            "sip:alice@example.com".to_string(),
            "01707654321".to_string(),
            "*21#".to_string(),
        ];
        let notes = "a, b; c\\d\nsecond line that is long enough to be folded somewhere past seventy-five octets ✓✓✓";
        for context in [None, Some("sip.example.com"), Some("192.0.2.1")] {
            let text = write(
                [&contact(
                    "urn:uuid:1",
                    "Ålice Liddell",
                    addresses.clone(),
                    true,
                    notes,
                )],
                context,
            );
            assert!(text.lines().all(|l| l.len() <= 76), "{text}");
            let back = parse(&text).unwrap();
            assert_eq!(
                back,
                [Card {
                    uid: Some("urn:uuid:1".into()),
                    name: "Ålice Liddell".into(),
                    addresses: addresses.clone(),
                    favourite: true,
                    notes: notes.into(),
                    skipped: Vec::new(),
                }],
                "{context:?}: {text}"
            );
        }
    }

    #[test]
    fn googles_starred_is_a_favourite() {
        let google = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice Liddell\r\nN:Liddell;Alice;;;\r\n\
            TEL;TYPE=CELL:+44 1865 270000\r\nCATEGORIES:myContacts,starred\r\nEND:VCARD\r\n";
        let cards = parse(google).unwrap();
        assert!(cards[0].favourite);
        assert!(cards[0].skipped.is_empty(), "{:?}", cards[0].skipped);
        for (categories, favourite) in [
            ("Starred", true),
            ("friends,FAVORITES", true),
            ("Favourite", true),
            ("favorite", true),
            ("myContacts", false),
            ("starred friends", false),
        ] {
            let text = format!("BEGIN:VCARD\nFN:A\nCATEGORIES:{categories}\nEND:VCARD\n");
            assert_eq!(
                parse(&text).unwrap()[0].favourite,
                favourite,
                "{categories}"
            );
        }
    }

    #[test]
    fn what_is_not_kept_is_named_once_per_card() {
        let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.2//EN\r\n\
            N:Liddell;Alice;;;\r\nFN:Alice Liddell\r\nORG:Wonderland Ltd.;Tea Parties\r\n\
            item1.EMAIL;TYPE=INTERNET:alice@example.org\r\nitem1.X-ABLabel:_$!<Home>!$_\r\n\
            EMAIL;TYPE=WORK:alice@work.example\r\nADR;TYPE=HOME:;;1 Rabbit Hole;Oxford;;;UK\r\n\
            ADR;TYPE=WORK:;;;;;;\r\nPHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQ\r\nBDAY:1852-05-04\r\n\
            item2.URL:http\\://example.org\r\nitem2.X-ABLabel:\r\n\
            TEL;VALUE=uri:tel:+1-555-0100;ext=12\r\nIMPP:xmpp:alice@example.org\r\n\
            IMPP:sip:alice@example.com\r\nX-JABBER:alice@example.org\r\n\
            X-ANDROID-CUSTOM:vnd.android.cursor.item/nickname;Ally;1;;;;;;;;;;;;;\r\n\
            X-ABUID:5AD380FD-B2DE-4261-BA99-DE1D1DB52FBE:ABPerson\r\nREV:2024-01-01T12:00:00Z\r\n\
            UID:1\r\nNOTE:kept\r\nCATEGORIES:myContacts\r\nX-VOIPD-FAVOURITE:FALSE\r\n\
            X-ODD\u{1b}[31m:x\r\nEND:VCARD\r\n\
            BEGIN:VCARD\r\nVERSION:4.0\r\nORG:Pizza Roma\r\nTEL:+39 06 1234\r\nKIND:org\r\n\
            END:VCARD\r\n";
        let cards = parse(text).unwrap();
        assert_eq!(cards[0].name, "Alice Liddell");
        assert_eq!(
            cards[0].addresses,
            ["+1-555-0100", "sip:alice@example.com"],
            "the number without its extension"
        );
        assert_eq!(
            cards[0].skipped,
            [
                "ORG",
                "EMAIL",
                "ADR",
                "PHOTO",
                "BDAY",
                "URL",
                "TEL extension 12",
                "IMPP (xmpp)",
                "X-JABBER",
                "X-ANDROID-CUSTOM (nickname)",
                "X-ODD??31M",
            ]
        );
        assert_eq!(cards[1].name, "Pizza Roma");
        assert!(
            cards[1].skipped.is_empty(),
            "the ORG that names a card is kept: {:?}",
            cards[1].skipped
        );
    }

    #[test]
    fn local_numbers_say_where_they_are_local() {
        let c = contact(
            "u",
            "Jürgen Müller",
            vec![
                "01707654321".to_string(),
                "+49301234567".to_string(),
                "*21#".to_string(),
            ],
            false,
            "",
        );
        let text = write([&c], Some("sip.example.de"));
        assert!(
            text.contains(
                "\r\nTEL;VALUE=uri;PREF=1:tel:01707654321;phone-context=sip.example.de\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\r\nTEL;VALUE=uri;PREF=2:tel:+49301234567\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\nTEL;VALUE=uri;PREF=3:tel:*21%23;phone-context=sip.example.de\r\n"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap()[0].addresses, c.addresses);
        // No domain, or none that phone-context can hold: text, never an invalid tel: URI.
        for context in [None, Some("192.0.2.1"), Some("[2001:db8::1]"), Some("")] {
            let text = write([&c], context);
            assert!(
                text.contains("\r\nTEL;VALUE=text;PREF=1:01707654321\r\n"),
                "{text}"
            );
            assert!(!text.contains("phone-context"), "{text}");
            assert_eq!(parse(&text).unwrap()[0].addresses, c.addresses);
        }
        // What others write reads as the same local number.
        let theirs =
            "BEGIN:VCARD\nFN:J\nTEL;VALUE=uri:tel:01707654321;phone-context=example.com\nEND:VCARD";
        assert_eq!(parse(theirs).unwrap()[0].addresses, ["01707654321"]);
        assert!(parse(theirs).unwrap()[0].skipped.is_empty());

        assert!(is_domain_name("example.com"));
        assert!(is_domain_name("example.com."));
        assert!(is_domain_name("localhost"));
        assert!(is_domain_name("a-1.example"));
        assert!(!is_domain_name("192.0.2.1"));
        assert!(!is_domain_name("-a.example"));
        assert!(!is_domain_name("a..example"));
        assert!(!is_domain_name("example.com;x=y"));
    }

    #[test]
    fn a_contact_named_by_its_number_has_no_family_name() {
        for name in ["+441865270000", "0170 7654321", "sip:bob@example.com"] {
            let text = write(
                [&contact("u", name, vec![name.to_string()], false, "")],
                None,
            );
            assert!(text.contains(&format!("\r\nFN:{name}\r\n")), "{text}");
            assert!(text.contains("\r\nN:;;;;\r\n"), "{text}");
            assert_eq!(parse(&text).unwrap()[0].name, name);
        }
        let text = write(
            [&contact("u", "Alice Liddell", Vec::new(), false, "")],
            None,
        );
        assert!(text.contains("\r\nN:Liddell;Alice;;;\r\n"), "{text}");
    }
}
