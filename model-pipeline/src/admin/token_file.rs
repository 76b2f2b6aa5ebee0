//! The credentials file as a token store: `marginwise auth` writes the tokens of the
//! authorization code grant into it, and every command that refreshes them writes the new ones
//! back, because Shopify replaces the refresh token on every refresh.
//!
//! ```json
//! {"shop": "example.myshopify.com", "client_id": "...", "client_secret": "...",
//!  "access_token": "shpat_...", "access_token_expires_at": "2026-11-22T01:00:00Z",
//!  "refresh_token": "shprt_...", "refresh_token_expires_at": "2027-02-19T00:00:00Z",
//!  "scope": "read_customers,..."}
//! ```
//!
//! Keys this module does not write (the client id and secret, anything a user added) are kept as
//! they were. Writes go to a new temporary file beside it (created exclusively under a random
//! name, readable by its owner only), renamed over it, so a crash leaves the old tokens or the
//! new ones, never half a file, and the file is always owner-only.
//! Processes sharing a file (`webhooks` and a scheduled `apply`, say) take `<file>.lock` around
//! a refresh and read the file again under it: a token another process got is taken as it is,
//! instead of spending the refresh token twice.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::{Map, Value};

/// The tokens of an authorization code grant, as the file holds them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTokens {
    pub access_token: String,
    /// `None`: a token that does not expire (asked for without `expiring=1`).
    pub access_token_expires_at: Option<Timestamp>,
    /// `None`: no refresh token (a non-expiring token).
    pub refresh_token: Option<String>,
    pub refresh_token_expires_at: Option<Timestamp>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("access_token", &format_args!("<redacted>"))
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

impl StoredTokens {
    /// From a grant's answer received at `now`: `expires_in` seconds become timestamps.
    pub fn from_answer(
        access_token: String,
        expires_in: Option<u64>,
        refresh_token: Option<String>,
        refresh_token_expires_in: Option<u64>,
        scope: Option<String>,
        now: Timestamp,
    ) -> StoredTokens {
        let after = |seconds: Option<u64>| {
            seconds.and_then(|s| {
                now.checked_add(jiff::SignedDuration::from_secs(
                    i64::try_from(s).unwrap_or(i64::MAX / 2),
                ))
                .ok()
            })
        };
        StoredTokens {
            access_token,
            access_token_expires_at: after(expires_in),
            refresh_token: refresh_token.filter(|t| !t.trim().is_empty()),
            refresh_token_expires_at: after(refresh_token_expires_in),
            scope,
        }
    }

    /// Whether the access token is past its expiry, or within `margin` of it, at `now`.
    pub fn access_token_expiring(&self, now: Timestamp, margin: jiff::SignedDuration) -> bool {
        self.access_token_expires_at
            .is_some_and(|at| now.checked_add(margin).map_or(true, |soon| soon >= at))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("credentials file {file}: {message}")]
pub struct TokenFileError {
    pub file: String,
    pub message: String,
}

fn error(path: &Path, message: impl Into<String>) -> TokenFileError {
    TokenFileError {
        file: path.display().to_string(),
        message: message.into(),
    }
}

/// The file as a JSON object; a missing file is an empty one (what `auth` starts from).
fn read_object(path: &Path, missing_ok: bool) -> Result<Map<String, Value>, TokenFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Map::new());
        }
        Err(e) => return Err(error(path, e.to_string())),
    };
    // A parse error may quote the file, which holds secrets: name the place only.
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(error(path, "not a JSON object")),
        Err(e) => Err(error(
            path,
            format!("not JSON (line {}, column {})", e.line(), e.column()),
        )),
    }
}

/// The tokens the file holds, if it holds an access token.
pub fn read_tokens(path: &Path) -> Result<Option<StoredTokens>, TokenFileError> {
    tokens_of(path, &read_object(path, false)?)
}

fn tokens_of(
    path: &Path,
    object: &Map<String, Value>,
) -> Result<Option<StoredTokens>, TokenFileError> {
    let text = |key: &str| -> Result<Option<String>, TokenFileError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(error(path, format!("\"{key}\" is not a string"))),
        }
    };
    let time = |key: &str| -> Result<Option<Timestamp>, TokenFileError> {
        text(key)?
            .map(|s| {
                s.parse::<Timestamp>().map_err(|e| {
                    error(
                        path,
                        format!(
                            "\"{key}\" is not an RFC 3339 time such as 2026-11-22T01:00:00Z: {e}"
                        ),
                    )
                })
            })
            .transpose()
    };
    let Some(access_token) = text("access_token")? else {
        return Ok(None);
    };
    Ok(Some(StoredTokens {
        access_token,
        access_token_expires_at: time("access_token_expires_at")?,
        refresh_token: text("refresh_token")?,
        refresh_token_expires_at: time("refresh_token_expires_at")?,
        scope: text("scope")?,
    }))
}

/// Sets `shop` (when given) and the tokens in the file, keeping its other keys, and writes it
/// readable by its owner only. A missing file is created.
pub fn write_tokens(
    path: &Path,
    shop: Option<&str>,
    tokens: &StoredTokens,
) -> Result<(), TokenFileError> {
    let mut object = read_object(path, true)?;
    if let Some(shop) = shop {
        object.insert("shop".into(), Value::String(shop.to_string()));
    }
    let mut set = |key: &str, value: Option<String>| match value {
        Some(value) => {
            object.insert(key.to_string(), Value::String(value));
        }
        None => {
            object.remove(key);
        }
    };
    set("access_token", Some(tokens.access_token.clone()));
    set(
        "access_token_expires_at",
        tokens.access_token_expires_at.map(|t| t.to_string()),
    );
    set("refresh_token", tokens.refresh_token.clone());
    set(
        "refresh_token_expires_at",
        tokens.refresh_token_expires_at.map(|t| t.to_string()),
    );
    set("scope", tokens.scope.clone());
    let mut text = serde_json::to_string_pretty(&Value::Object(object))
        .map_err(|e| error(path, e.to_string()))?;
    text.push('\n');
    replace(path, text.as_bytes())
}

/// Writes `bytes` to a new temporary file beside `path` (created exclusively, under a random
/// name, readable by its owner only), then renames it over `path` and syncs the folder. A
/// symbolic link at `path` is replaced by the file, not followed.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), TokenFileError> {
    let directory = folder_of(path);
    let written = (|| -> std::io::Result<()> {
        let mut file = tempfile::Builder::new()
            .prefix(".marginwise-credentials.")
            .suffix(".tmp")
            .tempfile_in(&directory)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        // The rename itself is durable once the folder is synced (not possible everywhere).
        if let Ok(folder) = File::open(&directory) {
            let _ = folder.sync_all();
        }
        Ok(())
    })();
    written.map_err(|e| error(path, format!("writing it: {e}")))
}

/// The folder a file is in (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether the file's folder takes a new file (`marginwise auth` asks before the merchant
/// approves, so that an approval is never spent on tokens that cannot be kept).
pub fn check_writable(path: &Path) -> Result<(), TokenFileError> {
    tempfile::Builder::new()
        .prefix(".marginwise-credentials.")
        .suffix(".tmp")
        .tempfile_in(folder_of(path))
        .map(drop)
        .map_err(|e| error(path, format!("its folder does not take a new file: {e}")))
}

/// An exclusive lock on `<file>.lock`, held until dropped (the lock file itself stays: removing
/// it could let two processes hold locks on two different files).
pub struct FileLock {
    _file: File,
}

pub fn lock(path: &Path) -> Result<FileLock, TokenFileError> {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| error(&lock_path, format!("opening the lock: {e}")))?;
    file.lock()
        .map_err(|e| error(&lock_path, format!("taking the lock: {e}")))?;
    Ok(FileLock { _file: file })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn tokens(access: &str, refresh: Option<&str>) -> StoredTokens {
        StoredTokens::from_answer(
            access.to_string(),
            Some(3600),
            refresh.map(str::to_string),
            Some(7_776_000),
            Some("read_products".to_string()),
            "2026-11-21T12:00:00Z"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[test]
    fn tokens_round_trip_and_other_keys_stay() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("credentials.json");
        std::fs::write(
            &path,
            r#"{"client_id": "id", "client_secret": "secret", "note": [1, 2]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let first = tokens("shpat_a", Some("shprt_a"));
        write_tokens(&path, Some("example.myshopify.com"), &first)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_tokens(&path).ok().flatten(), Some(first.clone()));
        let object = read_object(&path, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(object["client_secret"], "secret");
        assert_eq!(object["note"], serde_json::json!([1, 2]));
        assert_eq!(object["shop"], "example.myshopify.com");
        assert_eq!(object["access_token_expires_at"], "2026-11-21T13:00:00Z");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A token without a refresh token takes the old refresh token out.
        let second = StoredTokens {
            refresh_token: None,
            refresh_token_expires_at: None,
            ..tokens("shpat_b", None)
        };
        write_tokens(&path, None, &second).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_tokens(&path).ok().flatten(), Some(second));
        let object = read_object(&path, false).unwrap_or_else(|e| panic!("{e}"));
        assert!(!object.contains_key("refresh_token"), "{object:?}");
        assert_eq!(object["shop"], "example.myshopify.com");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, vec!["credentials.json".to_string()]);
    }

    #[test]
    fn bad_files_are_named_without_quoting_secrets() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.json");
        for (text, says) in [
            (r#"{"access_token": "shpat_secret", "#, "not JSON"),
            (r#"["shpat_secret"]"#, "not a JSON object"),
            (r#"{"access_token": 7}"#, "\"access_token\" is not a string"),
            (
                r#"{"access_token": "shpat_secret", "access_token_expires_at": "tomorrow"}"#,
                "\"access_token_expires_at\" is not an RFC 3339 time",
            ),
        ] {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            let message = read_tokens(&path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(message.contains(says), "{text}: {message}");
            assert!(message.contains("c.json"), "{message}");
            assert!(!message.contains("shpat_secret"), "{message}");
        }
    }

    #[test]
    fn expiry_counts_the_margin() {
        let held = tokens("shpat_a", Some("shprt_a"));
        let at = |s: &str| s.parse::<Timestamp>().unwrap_or_else(|e| panic!("{e}"));
        let minute = jiff::SignedDuration::from_secs(60);
        assert!(!held.access_token_expiring(at("2026-11-21T12:58:59Z"), minute));
        assert!(held.access_token_expiring(at("2026-11-21T12:59:00Z"), minute));
        assert!(held.access_token_expiring(at("2026-11-21T14:00:00Z"), minute));
        let lasting = StoredTokens {
            access_token_expires_at: None,
            ..held
        };
        assert!(!lasting.access_token_expiring(at("2099-01-01T00:00:00Z"), minute));
    }
}
