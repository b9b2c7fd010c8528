//! Settings made through the API rather than the configuration file (our presence), kept
//! across restarts.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, StoreError> {
        self.run(move |db| {
            db.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()
        })
        .await
    }

    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), StoreError> {
        self.run(move |db| {
            db.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])
            .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_setting_is_kept_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        {
            let (s, _) = Store::open(&path).unwrap();
            assert_eq!(s.setting("presence").await.unwrap(), None);
            s.set_setting("presence", "away".into()).await.unwrap();
            s.set_setting("presence", "busy\tin a call".into())
                .await
                .unwrap();
        }
        let (s, _) = Store::open(&path).unwrap();
        assert_eq!(
            s.setting("presence").await.unwrap().as_deref(),
            Some("busy\tin a call")
        );
    }
}
