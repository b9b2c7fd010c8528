use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be used. Every variant names the file; validation errors
/// also name the line, column and dotted field path, so a user can go straight to it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read configuration: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path such as `account[1].aor`; empty for a syntax error.
    pub field: String,
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

impl ConfigError {
    pub(super) fn invalid(
        file: &str,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        field: String,
        message: String,
    ) -> Self {
        let offset = span.map_or(0, |s| s.start.min(text.len()));
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::Invalid(Box::new(Invalid {
            file: file.to_string(),
            line,
            column,
            field,
            message,
        }))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
