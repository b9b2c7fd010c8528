use std::io::Read;
use std::path::PathBuf;

use tonic::transport::Channel;
use voipd_proto::v1::contacts_client::ContactsClient;
use voipd_proto::v1::{
    AddContactRequest, Contact, ContactRef, EditContactRequest, ExportContactsRequest,
    GetPresenceRequest, ImportContactsRequest, ListContactsRequest, SetPresenceRequest,
};

use crate::exit::Failure;
use crate::output::{Output, table};

/// A contact's fields as given on the command line.
#[derive(clap::Args)]
pub struct Fields {
    /// A SIP URI (alice@example.com) or number; repeat for several, the first is dialled
    #[arg(long = "address", short = 'a', value_name = "ADDRESS")]
    pub addresses: Vec<String>,
    /// Mark as a favourite (listed first)
    #[arg(long)]
    pub favourite: bool,
    #[arg(long)]
    pub notes: Option<String>,
}

#[derive(clap::Args)]
pub struct Changes {
    /// A new name
    #[arg(long)]
    pub name: Option<String>,
    /// Replace all addresses with these (repeat)
    #[arg(long = "address", value_name = "ADDRESS")]
    pub addresses: Vec<String>,
    /// Add an address (repeat)
    #[arg(long = "add", value_name = "ADDRESS")]
    pub add: Vec<String>,
    /// Remove an address (repeat)
    #[arg(long = "remove", value_name = "ADDRESS")]
    pub remove: Vec<String>,
    /// Mark (true) or unmark (false) as a favourite
    #[arg(long, value_name = "BOOL")]
    pub favourite: Option<bool>,
    #[arg(long)]
    pub notes: Option<String>,
}

fn presence(c: &Contact) -> String {
    match &c.presence {
        Some(p) if p.status == "unknown" && !p.reason.is_empty() => {
            format!("unknown ({})", p.reason)
        }
        Some(p) if !p.note.is_empty() => format!("{} ({})", p.status, p.note),
        Some(p) => p.status.clone(),
        None => "unknown".into(),
    }
}

fn show(out: Output, c: &Contact) {
    if out.json {
        return out.json_line(c);
    }
    println!(
        "{} (id {}){}",
        c.name,
        c.id,
        if c.favourite { " ★" } else { "" }
    );
    for a in &c.addresses {
        println!("  {a}");
    }
    println!("  presence: {}", presence(c));
    if !c.notes.is_empty() {
        println!("  notes: {}", c.notes.replace('\n', "\n         "));
    }
}

pub async fn list(
    conn: Channel,
    out: Output,
    query: Option<String>,
    favourites_only: bool,
) -> Result<(), Failure> {
    let r = ContactsClient::new(conn)
        .list(ListContactsRequest {
            query: query.unwrap_or_default(),
            favourites_only,
            limit: 0,
        })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
        return Ok(());
    }
    if r.contacts.is_empty() {
        println!("no contacts");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .contacts
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                format!("{}{}", c.name, if c.favourite { " ★" } else { "" }),
                presence(c),
                c.addresses.join(", "),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "NAME", "PRESENCE", "ADDRESSES"], &rows));
    Ok(())
}

pub async fn get(conn: Channel, out: Output, contact: String) -> Result<(), Failure> {
    let c = ContactsClient::new(conn)
        .get(ContactRef { contact })
        .await?
        .into_inner();
    show(out, &c);
    Ok(())
}

pub async fn add(conn: Channel, out: Output, name: String, f: Fields) -> Result<(), Failure> {
    let c = ContactsClient::new(conn)
        .add(AddContactRequest {
            name,
            addresses: f.addresses,
            favourite: f.favourite,
            notes: f.notes.unwrap_or_default(),
        })
        .await?
        .into_inner();
    show(out, &c);
    Ok(())
}

pub async fn edit(conn: Channel, out: Output, contact: String, e: Changes) -> Result<(), Failure> {
    let c = ContactsClient::new(conn)
        .edit(EditContactRequest {
            contact: Some(ContactRef { contact }),
            name: e.name,
            replace_addresses: !e.addresses.is_empty(),
            addresses: e.addresses,
            add_addresses: e.add,
            remove_addresses: e.remove,
            favourite: e.favourite,
            notes: e.notes,
        })
        .await?
        .into_inner();
    show(out, &c);
    Ok(())
}

pub async fn remove(conn: Channel, out: Output, contact: String) -> Result<(), Failure> {
    let r = ContactsClient::new(conn)
        .remove(ContactRef { contact })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
    } else {
        println!("contact {} removed", r.id);
    }
    Ok(())
}

/// Reads `file` here (voipctl's user may read what the daemon may not); `-` is stdin.
pub async fn import(conn: Channel, out: Output, file: PathBuf) -> Result<(), Failure> {
    let mut vcard = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut vcard).map(|_| ())
    } else {
        std::fs::read(&file).and_then(|b| {
            vcard = String::from_utf8(b).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
            })?;
            Ok(())
        })
    };
    read.map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
    let r = ContactsClient::new(conn)
        .import(ImportContactsRequest { vcard })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
    } else {
        println!("{} added, {} updated", r.added, r.updated);
        for s in &r.skipped {
            eprintln!("voipctl: left out: {s}");
        }
    }
    Ok(())
}

pub async fn export(conn: Channel, out: Output, file: Option<PathBuf>) -> Result<(), Failure> {
    let r = ContactsClient::new(conn)
        .export(ExportContactsRequest {})
        .await?
        .into_inner();
    match file {
        Some(f) => {
            std::fs::write(&f, &r.vcard)
                .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", f.display())))?;
            let n = r
                .vcard
                .lines()
                .filter(|l| l.eq_ignore_ascii_case("BEGIN:VCARD"))
                .count();
            if out.json {
                out.json_line(&serde_json::json!({ "file": f, "contacts": n }));
            } else {
                println!(
                    "wrote {n} contact{} to {} (vCard 4.0)",
                    if n == 1 { "" } else { "s" },
                    f.display()
                );
            }
            Ok(())
        }
        None => {
            print!("{}", r.vcard);
            Ok(())
        }
    }
}

pub async fn show_presence(conn: Channel, out: Output) -> Result<(), Failure> {
    let p = ContactsClient::new(conn)
        .get_presence(GetPresenceRequest {})
        .await?
        .into_inner();
    if out.json {
        out.json_line(&p);
    } else if p.note.is_empty() {
        println!("presence: {}", p.status);
    } else {
        println!("presence: {} ({})", p.status, p.note);
    }
    Ok(())
}

pub async fn set_presence(
    conn: Channel,
    out: Output,
    status: String,
    note: Option<String>,
) -> Result<(), Failure> {
    let p = ContactsClient::new(conn)
        .set_presence(SetPresenceRequest {
            status,
            note: note.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&p);
    } else {
        println!("presence: {}", p.status);
    }
    Ok(())
}
