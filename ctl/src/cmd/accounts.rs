use tonic::transport::Channel;
use voipd_proto::v1::accounts_client::AccountsClient;
use voipd_proto::v1::{Account, AccountRequest, ListAccountsRequest, RegistrationState};

use crate::exit::Failure;
use crate::output::{Output, clock};

pub fn state_name(a: &Account) -> &'static str {
    match a.state() {
        RegistrationState::Unspecified => "?",
        RegistrationState::Unregistered => "unregistered",
        RegistrationState::Registering => "registering",
        RegistrationState::Registered => "registered",
        RegistrationState::Failed => "failed",
        RegistrationState::BackingOff => "backing off",
    }
}

/// What a person wants to know beyond the state: where, until when, why not; and the
/// provider's voicemail, once it told.
pub fn detail(a: &Account) -> String {
    let mut d = registration(a);
    if a.messages_waiting || a.voicemail_new + a.voicemail_old > 0 {
        if !d.is_empty() {
            d.push_str("; ");
        }
        d.push_str(&format!(
            "voicemail {} new, {} old",
            a.voicemail_new, a.voicemail_old
        ));
        if a.voicemail_urgent > 0 {
            d.push_str(&format!(" ({} urgent)", a.voicemail_urgent));
        }
    }
    d
}

fn registration(a: &Account) -> String {
    match a.state() {
        RegistrationState::Registered => {
            format!(
                "at {} until {}",
                a.registrar,
                clock(a.registered_until_unix_ms)
            )
        }
        RegistrationState::Failed | RegistrationState::BackingOff => {
            let code = if a.last_code > 0 {
                format!("{} ", a.last_code)
            } else {
                String::new()
            };
            format!(
                "{code}{}; retry at {}",
                a.last_reason,
                clock(a.retry_at_unix_ms)
            )
        }
        RegistrationState::Unregistered if !a.enabled => "disabled".into(),
        _ => String::new(),
    }
}

pub async fn list(conn: Channel, out: Output) -> Result<(), Failure> {
    let r = AccountsClient::new(conn)
        .list(ListAccountsRequest {})
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
        return Ok(());
    }
    if r.accounts.is_empty() {
        println!("no accounts configured (add [[account]] tables to the configuration)");
        return Ok(());
    }
    print!("{}", table(&r.accounts));
    Ok(())
}

/// The accounts as a table: id, state, address of record, and the detail that matters.
pub fn table(accounts: &[Account]) -> String {
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| vec![a.id.clone(), state_name(a).into(), a.aor.clone(), detail(a)])
        .collect();
    crate::output::table(&["ID", "STATE", "AOR", "DETAIL"], &rows)
}

pub async fn register(conn: Channel, out: Output, id: String, on: bool) -> Result<(), Failure> {
    let mut client = AccountsClient::new(conn);
    let req = AccountRequest { id };
    let a = if on {
        client.register(req).await?
    } else {
        client.unregister(req).await?
    }
    .into_inner();
    if out.json {
        out.json_line(&a);
    } else if on {
        println!("{}: registering (follow with `voipctl watch`)", a.id);
    } else {
        println!("{}: unregistering", a.id);
    }
    Ok(())
}
