//! `voipctl man`: one manual page with every command (clap_mangen would point at a page per
//! command, which nobody installs).

use std::io::Write;

use clap::Command;

/// roff treats a leading '.' or '\'' as a request and '\' as an escape; '-' should be '\-'.
fn roff(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// groff reads its input as Latin-1 and warns about (or garbles) the bytes of UTF-8, so the
/// page is pure ASCII: every other character is written as its Unicode escape, `\[u2026]`.
fn ascii(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

pub fn render(cmd: &Command, w: &mut dyn Write) -> std::io::Result<()> {
    let mut page = Vec::new();
    render_page(cmd, &mut page)?;
    w.write_all(ascii(&String::from_utf8_lossy(&page)).as_bytes())
}

fn render_page(cmd: &Command, w: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    writeln!(w, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands() {
        let mut usage = format!("voipctl {}", sub.get_name());
        for a in sub.get_arguments().filter(|a| a.is_positional()) {
            let name = a.get_id().as_str().to_uppercase();
            if a.is_required_set() {
                usage.push_str(&format!(" {name}"));
            } else {
                usage.push_str(&format!(" [{name}]"));
            }
        }
        writeln!(w, ".TP\n.B {}", roff(&usage))?;
        if let Some(about) = sub.get_about() {
            writeln!(w, "{}", roff(&about.to_string()))?;
        }
        for a in sub.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = a.get_long().unwrap_or_default();
            let value = a
                .get_value_names()
                .filter(|_| a.get_action().takes_values())
                .and_then(|v| v.first())
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            writeln!(w, ".RS\n.TP\n\\fB\\-\\-{}\\fR{}", roff(long), roff(&value))?;
            if let Some(help) = a.get_help() {
                writeln!(w, "{}", roff(&help.to_string()))?;
            }
            writeln!(w, ".RE")?;
        }
    }
    // Examples keep their columns: no filling, no adjusting.
    if let Some(after) = cmd.get_after_help() {
        writeln!(w, ".SH EXAMPLES\n.nf\n{}\n.fi", roff(&after.to_string()))?;
    }
    man.render_version_section(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_is_ascii() {
        assert_eq!(
            super::ascii("busy\u{2026} \u{25cf} caf\u{e9} \u{1f600}"),
            "busy\\[u2026] \\[u25CF] caf\\[u00E9] \\[u1F600]"
        );
    }
}
