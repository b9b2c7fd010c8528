use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be used. Every variant names the file; validation errors
/// also name the line, column and dotted field path, so a user can go straight to it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read configuration: {source}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// One problem at one place.
    #[error("{0}")]
    Invalid(Box<Invalid>),
    /// Problems at several places, found together so that one run shows them all; one per
    /// line, in the order of the file.
    #[error("{}", lines(.0))]
    Several(Vec<Invalid>),
}

fn lines(problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(Invalid::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem in the configuration, where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path such as `account[1].aor`; empty for a syntax error.
    pub field: String,
    /// What is wrong, and where it helps, what to do.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl Invalid {
    /// The problem `message` with `field`, at the byte offset where `span` starts in `text`
    /// (the start of the file without one).
    pub(super) fn at(
        file: &str,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        field: String,
        message: String,
    ) -> Invalid {
        let offset = span.map_or(0, |s| s.start.min(text.len()));
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Invalid {
            file: file.to_string(),
            line,
            column,
            field,
            message,
        }
    }
}

impl ConfigError {
    pub(super) fn invalid(
        file: &str,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        field: String,
        message: String,
    ) -> Self {
        ConfigError::Invalid(Box::new(Invalid::at(file, text, span, field, message)))
    }

    /// `problems` as one error, in the order of the file; Ok when there are none.
    pub(super) fn from_all(mut problems: Vec<Invalid>) -> Result<(), Self> {
        problems.sort_by_key(|p| (p.line, p.column));
        match problems.len() {
            0 => Ok(()),
            1 => Err(ConfigError::Invalid(Box::new(problems.remove(0)))),
            _ => Err(ConfigError::Several(problems)),
        }
    }

    /// The problems this error holds, each where it was written; none for a file that could
    /// not be read.
    pub fn problems(&self) -> Vec<&Invalid> {
        match self {
            ConfigError::Read { .. } => Vec::new(),
            ConfigError::Invalid(i) => vec![i.as_ref()],
            ConfigError::Several(v) => v.iter().collect(),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Rewrites serde's type names in `message` into words a user of the file knows:
/// `expected u32` becomes `expected a whole number`, `expected a sequence` `expected a list`.
/// Only the standard shapes are touched ("invalid type: FOUND, expected WANTED" and the
/// like), so messages written by voipd itself pass through unchanged.
pub(super) fn in_words(message: &str) -> String {
    // toml's own wording for an enum given neither a string nor a table; every enum in the
    // configuration is written as a string.
    if message == "wanted string or table" {
        return "expected a string".into();
    }
    let Some(at) = message.rfind(", expected ") else {
        return message.to_string();
    };
    let (head, wanted) = (&message[..at], &message[at + ", expected ".len()..]);
    let out_of_range = head.starts_with("invalid value: ");
    let wanted = expected_in_words(wanted, out_of_range).unwrap_or_else(|| wanted.to_string());
    let head = match head.strip_prefix("invalid type: ") {
        Some(found) => format!("invalid type: {}", found_in_words(found)),
        None => head.to_string(),
    };
    format!("{head}, expected {wanted}")
}

/// What serde's visitors say they expected, in words; None for what is already words.
fn expected_in_words(wanted: &str, out_of_range: bool) -> Option<String> {
    let whole = |range: &str| format!("a whole number {range}");
    Some(match wanted {
        // The small types' ranges are what the user must stay in; the large ones' are
        // only worth saying when the value fell outside them.
        "u8" => whole("from 0 to 255"),
        "u16" => whole("from 0 to 65535"),
        "i8" => whole("from -128 to 127"),
        "i16" => whole("from -32768 to 32767"),
        "u32" if out_of_range => whole("from 0 to 4294967295"),
        "i32" if out_of_range => whole("from -2147483648 to 2147483647"),
        "u64" | "u128" | "usize" if out_of_range => "a whole number, 0 or more".into(),
        "u32" | "u64" | "u128" | "usize" | "i32" | "i64" | "i128" | "isize" => {
            "a whole number".into()
        }
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "a table".into(),
        "path string" => "a path, as a string".into(),
        "a borrowed string" => "a string".into(),
        _ if wanted.starts_with("struct ") => "a table".into(),
        _ if wanted.starts_with("enum ") => "a string".into(),
        _ => return None,
    })
}

/// serde's name for the value found, in the configuration's words.
fn found_in_words(found: &str) -> String {
    match found {
        "sequence" => "list".into(),
        "map" => "table".into(),
        _ => match found.strip_prefix("floating point ") {
            Some(v) => format!("decimal number {v}"),
            None => found.to_string(),
        },
    }
}
