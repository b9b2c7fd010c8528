//! `voipctl forward`: call forwarding per account, set live (kept across restarts and
//! winning over the configuration until cleared).

use tonic::transport::Channel;
use voipd_proto::v1::accounts_client::AccountsClient;
use voipd_proto::v1::{Account, ClearForwardRequest, ListAccountsRequest, SetForwardRequest};

use crate::exit::Failure;
use crate::output::Output;

/// Every account's rules, or one account's.
pub async fn show(conn: Channel, out: Output, account: Option<String>) -> Result<(), Failure> {
    let all = AccountsClient::new(conn)
        .list(ListAccountsRequest {})
        .await?
        .into_inner()
        .accounts;
    let accounts: Vec<Account> = match &account {
        Some(id) => {
            let one: Vec<Account> = all.into_iter().filter(|a| &a.id == id).collect();
            if one.is_empty() {
                return Err(Failure::Failed(format!("no account {id:?}")));
            }
            one
        }
        None => all,
    };
    if out.json {
        out.json_line(&accounts);
        return Ok(());
    }
    if accounts.is_empty() {
        println!("no accounts configured: forwarding is per account");
        return Ok(());
    }
    print!("{}", table(&accounts));
    Ok(())
}

fn table(accounts: &[Account]) -> String {
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .flat_map(|a| {
            a.forwarding.iter().map(|f| {
                let to = match (f.to.as_str(), f.rule.as_str()) {
                    ("", _) => "off".to_string(),
                    (to, "no-answer") => format!("{to} after {} s", f.after_secs),
                    (to, _) => to.to_string(),
                };
                let from = if f.live { "set live" } else { "configuration" };
                vec![a.id.clone(), f.rule.clone(), to, from.into()]
            })
        })
        .collect();
    crate::output::table(&["ACCOUNT", "RULE", "FORWARD TO", "FROM"], &rows)
}

/// Sets a rule (`to` None: off).
pub async fn set(
    conn: Channel,
    out: Output,
    account: Option<String>,
    rule: String,
    to: Option<String>,
    after_secs: Option<u32>,
) -> Result<(), Failure> {
    let a = AccountsClient::new(conn)
        .set_forward(SetForwardRequest {
            account: account.unwrap_or_default(),
            rule,
            to: to.unwrap_or_default(),
            after_secs: after_secs.unwrap_or(0),
        })
        .await?
        .into_inner();
    print_account(out, &a);
    Ok(())
}

/// Turns every rule off.
pub async fn off_all(
    conn: Channel,
    out: Output,
    account: Option<String>,
    rules: &[&str],
) -> Result<(), Failure> {
    let mut client = AccountsClient::new(conn);
    let mut last = None;
    for rule in rules {
        let req = SetForwardRequest {
            account: account.clone().unwrap_or_default(),
            rule: (*rule).to_string(),
            to: String::new(),
            after_secs: 0,
        };
        last = Some(client.set_forward(req).await?.into_inner());
    }
    if let Some(a) = last {
        print_account(out, &a);
    }
    Ok(())
}

/// Clears what was set live for a rule, or all.
pub async fn clear(
    conn: Channel,
    out: Output,
    account: Option<String>,
    rule: Option<String>,
) -> Result<(), Failure> {
    let a = AccountsClient::new(conn)
        .clear_forward(ClearForwardRequest {
            account: account.unwrap_or_default(),
            rule: rule.unwrap_or_default(),
        })
        .await?
        .into_inner();
    print_account(out, &a);
    Ok(())
}

fn print_account(out: Output, a: &Account) {
    if out.json {
        out.json_line(a);
    } else {
        print!("{}", table(std::slice::from_ref(a)));
    }
}
