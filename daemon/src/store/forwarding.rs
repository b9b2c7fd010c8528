//! Call forwarding set through the API: per account and rule, a target or "off", kept
//! across restarts and winning over the configuration until cleared.

use rusqlite::params;

use super::{Store, StoreError};

/// One rule of one account as set live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveForward {
    pub account: String,
    /// The rule's name (`always`, `busy`, `no-answer`, `unavailable`).
    pub rule: String,
    /// None: forwarding by this rule is off, whatever the configuration says.
    pub target: Option<String>,
    pub after_secs: u32,
}

impl Store {
    /// Every live forwarding setting.
    pub async fn live_forwarding(&self) -> Result<Vec<LiveForward>, StoreError> {
        self.run(|db| {
            let mut stmt = db.prepare_cached(
                "SELECT account, rule, target, after_secs FROM forwarding ORDER BY account, rule",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(LiveForward {
                    account: r.get(0)?,
                    rule: r.get(1)?,
                    target: r.get(2)?,
                    after_secs: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Sets one rule live, replacing what was set before.
    pub async fn set_forward(&self, f: LiveForward) -> Result<(), StoreError> {
        self.run(move |db| {
            db.prepare_cached(
                "INSERT INTO forwarding (account, rule, target, after_secs) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, rule) DO UPDATE
                 SET target = excluded.target, after_secs = excluded.after_secs",
            )?
            .execute(params![f.account, f.rule, f.target, f.after_secs])
            .map(|_| ())
        })
        .await
    }

    /// Forgets an account's live settings (one rule's, or all): the configuration applies.
    pub async fn clear_forward(
        &self,
        account: String,
        rule: Option<String>,
    ) -> Result<(), StoreError> {
        self.run(move |db| {
            db.prepare_cached(
                "DELETE FROM forwarding WHERE account = ?1 AND (?2 IS NULL OR rule = ?2)",
            )?
            .execute(params![account, rule])
            .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn live_settings_are_kept_replaced_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let f = |rule: &str, target: Option<&str>| LiveForward {
            account: "alice".into(),
            rule: rule.into(),
            target: target.map(str::to_string),
            after_secs: 15,
        };
        {
            let (s, _) = Store::open(&path).unwrap();
            s.set_forward(f("busy", Some("bob"))).await.unwrap();
            s.set_forward(f("busy", Some("carol"))).await.unwrap();
            s.set_forward(f("always", None)).await.unwrap();
        }
        let (s, _) = Store::open(&path).unwrap();
        assert_eq!(
            s.live_forwarding().await.unwrap(),
            vec![f("always", None), f("busy", Some("carol"))]
        );
        s.clear_forward("alice".into(), Some("always".into()))
            .await
            .unwrap();
        assert_eq!(s.live_forwarding().await.unwrap().len(), 1);
        s.clear_forward("alice".into(), None).await.unwrap();
        assert!(s.live_forwarding().await.unwrap().is_empty());
    }
}
