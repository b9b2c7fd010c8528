//! Human tables by default, JSON with --json.

use serde::Serialize;

#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as one line of JSON. Serialising generated types cannot fail.
    pub fn json_line<T: Serialize>(&self, value: &T) {
        match serde_json::to_string(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("voipctl: cannot encode JSON: {e}"),
        }
    }
}

/// Whom a call or message is with: the contact's name, else the display name it gave,
/// with the address.
pub fn who(contact: &str, display: &str, uri: &str) -> String {
    match (contact, display) {
        ("", "") => uri.to_string(),
        ("", name) | (name, _) => format!("{name} <{uri}>"),
    }
}

#[cfg(test)]
mod who_tests {
    use super::who;

    #[test]
    fn a_contact_name_comes_first() {
        assert_eq!(who("", "", "sip:a@b"), "sip:a@b");
        assert_eq!(who("", "Al", "sip:a@b"), "Al <sip:a@b>");
        assert_eq!(who("Alice", "Al", "sip:a@b"), "Alice <sip:a@b>");
    }
}

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(c);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// "2026-11-26 19:45", UTC.
pub fn date_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    // Days to civil date (Howard Hinnant's algorithm), for the proleptic Gregorian calendar.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60
    )
}

pub fn clock(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}Z",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date_time(0), "1970-01-01 00:00");
        assert_eq!(date_time(1_795_724_125_000), "2026-11-26 20:15");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00");
    }

    #[test]
    fn tables_line_up() {
        let t = table(
            &["ID", "STATE", "DETAIL"],
            &[
                vec!["home".into(), "registered".into(), "until 12:00Z".into()],
                vec!["office-line".into(), "failed".into(), String::new()],
            ],
        );
        assert_eq!(
            t,
            "ID           STATE       DETAIL\n\
             home         registered  until 12:00Z\n\
             office-line  failed\n"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(65), "1m 5s");
        assert_eq!(duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(duration(2 * 86_400 + 3600), "2d 1h");
        assert_eq!(clock(3_723_000), "01:02:03Z");
    }
}
