//! Commands taken as JSON on `PREFIX/command`, checked as strictly as gRPC arguments, and
//! their results or errors for `PREFIX/command/result`.

use serde::Deserialize;
use serde_json::{Value, json};
use voipd_proto::v1 as pb;

use crate::core::{CallAction, CallPick, CoreError, Endpoints, PhoneHandle};

/// What a command asks. `call` is a call's id; without it, the only call that fits.
#[derive(Debug, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Dial {
        to: String,
        account: Option<String>,
    },
    Answer {
        call: Option<u64>,
    },
    Hangup {
        call: Option<u64>,
    },
    Reject {
        call: Option<u64>,
        #[serde(default)]
        busy: bool,
    },
    Dtmf {
        digits: String,
        call: Option<u64>,
    },
    Play {
        what: String,
        #[serde(default)]
        secs: f64,
        call: Option<u64>,
    },
    Message {
        to: String,
        text: String,
        account: Option<String>,
    },
}

const COMMANDS: &str = "dial, answer, hangup, reject, dtmf, play, message";

/// Runs one command message and says what came of it: the JSON for the result topic.
pub(super) async fn run(phone: &PhoneHandle, payload: &[u8]) -> String {
    let mut v: Value = match serde_json::from_slice(payload) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return failed(
                Value::Null,
                None,
                "invalid_argument",
                None,
                "a command is a JSON object, e.g. {\"command\":\"dial\",\"to\":\"alice\"}",
            );
        }
        Err(e) => {
            return failed(
                Value::Null,
                None,
                "invalid_argument",
                None,
                &format!("not JSON: {e}"),
            );
        }
    };
    // Any JSON value the sender chose, to match the result to its command.
    let id = v
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .unwrap_or(Value::Null);
    let name = v.get("command").and_then(Value::as_str).map(str::to_string);
    let command: Command = match serde_path_to_error::deserialize(v) {
        Ok(c) => c,
        Err(e) => {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            let message = if message.starts_with("unknown variant")
                || message.starts_with("missing field `command`")
            {
                format!("{message}; the commands are {COMMANDS}")
            } else {
                message
            };
            // serde names a field it lacks or does not know in its message, not its path.
            let named = ["unknown field `", "missing field `"]
                .iter()
                .find_map(|p| message.strip_prefix(p))
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string);
            let field = named.or((field != ".").then_some(field));
            return failed(
                id,
                name.as_deref(),
                "invalid_argument",
                field.as_deref(),
                &message,
            );
        }
    };
    let name = name.unwrap_or_default();
    match execute(phone, command).await {
        Ok(result) => {
            let mut out = json!({"id": id, "command": name, "ok": true});
            if let (Value::Object(o), Value::Object(r)) = (&mut out, result) {
                o.extend(r);
            }
            out.to_string()
        }
        Err(e) => {
            let (code, field) = match &e {
                CoreError::InvalidArgument { field, .. } => ("invalid_argument", Some(*field)),
                CoreError::NotFound { .. } => ("not_found", None),
                CoreError::FailedPrecondition(_) => ("failed_precondition", None),
                CoreError::Stopped => ("unavailable", None),
                CoreError::Config(_) | CoreError::Store(_) => ("internal", None),
            };
            let message = match &e {
                CoreError::InvalidArgument { message, .. } => message.clone(),
                other => other.to_string(),
            };
            failed(id, Some(&name), code, field, &message)
        }
    }
}

fn failed(
    id: Value,
    command: Option<&str>,
    code: &str,
    field: Option<&str>,
    message: &str,
) -> String {
    json!({
        "id": id,
        "command": command,
        "ok": false,
        "error": {"code": code, "field": field, "message": message},
    })
    .to_string()
}

fn call_json(c: crate::core::CallInfo) -> Value {
    json!({ "call": serde_json::to_value(pb::Call::from(c)).unwrap_or(Value::Null) })
}

async fn execute(phone: &PhoneHandle, c: Command) -> Result<Value, CoreError> {
    Ok(match c {
        Command::Dial { to, account } => call_json(
            phone
                .dial(account.as_deref(), &to, Endpoints::default())
                .await?,
        ),
        Command::Answer { call } => {
            let id = phone.pick_call(call, CallPick::Ringing).await?;
            call_json(
                phone
                    .call(id, CallAction::Answer(Endpoints::default()))
                    .await?,
            )
        }
        Command::Hangup { call } => {
            let id = phone.pick_call(call, CallPick::Any).await?;
            call_json(phone.call(id, CallAction::Hangup).await?)
        }
        Command::Reject { call, busy } => {
            let id = phone.pick_call(call, CallPick::Ringing).await?;
            call_json(phone.call(id, CallAction::Reject { busy }).await?)
        }
        Command::Dtmf { digits, call } => {
            let id = phone.pick_call(call, CallPick::Established).await?;
            call_json(phone.send_dtmf(id, &digits).await?)
        }
        Command::Play { what, secs, call } => {
            let id = phone.pick_call(call, CallPick::Established).await?;
            call_json(phone.play(id, &what, secs).await?)
        }
        Command::Message { to, text, account } => {
            let m = phone.send_message(account.as_deref(), &to, &text).await?;
            json!({ "message": serde_json::to_value(pb::Message::from(m)).unwrap_or(Value::Null) })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Command, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        serde_path_to_error::deserialize::<_, Command>(v).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })
    }

    #[test]
    fn commands_are_strict() {
        assert!(matches!(
            parse(r#"{"command":"dial","to":"alice"}"#),
            Ok(Command::Dial { .. })
        ));
        assert!(matches!(
            parse(r#"{"command":"reject","busy":true}"#),
            Ok(Command::Reject {
                call: None,
                busy: true
            })
        ));
        for bad in [
            r#"{"command":"dial"}"#,
            r#"{"command":"dial","to":"alice","colour":"red"}"#,
            r#"{"command":"fly"}"#,
            r#"{"command":"answer","call":"seven"}"#,
            r#"{"to":"alice"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
