//! Shopify's webhook signature: `X-Shopify-Hmac-Sha256` is the base64 of HMAC-SHA256 over the raw
//! request body, keyed with the app's client secret.
//!
//! The MAC and its comparison are RustCrypto's (`hmac` + `sha2`): `verify_slice` compares in
//! constant time, so how long a refusal takes says nothing about how many bytes of a forged
//! signature were right. The body is checked exactly as received; parsing it first would check
//! what a parser made of it instead.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Environment variable the app secret is read from when no file is given.
pub const SECRET_ENV: &str = "SHOPIFY_API_SECRET";

/// The app's client secret (Partner Dashboard: "Client secret"). `Debug` never shows it.
#[derive(Clone)]
pub struct AppSecret(Vec<u8>);

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no app secret: set {SECRET_ENV} (or {}, the same client secret) or pass --secret-file <file>",
        crate::admin::CLIENT_SECRET_ENV
    )]
    Missing,
    #[error("the app secret is empty")]
    Empty,
    #[error("secret file {file}: {source}")]
    File {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl AppSecret {
    /// The secret as given, without surrounding whitespace (a file usually ends in a newline).
    pub fn new(secret: &str) -> Result<AppSecret, SecretError> {
        let trimmed = secret.trim();
        if trimmed.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(AppSecret(trimmed.as_bytes().to_vec()))
    }

    /// From `file` when given, else from [`SECRET_ENV`], else from the client secret the Admin
    /// client exchanges for a token (`SHOPIFY_CLIENT_SECRET`): webhooks are signed with the
    /// app's client secret, so one variable serves both.
    pub fn load(file: Option<&Path>) -> Result<AppSecret, SecretError> {
        Self::load_with(file, |name| std::env::var(name).ok())
    }

    fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AppSecret, SecretError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    file: path.display().to_string(),
                    source,
                })?;
                AppSecret::new(&text)
            }
            None => match env(SECRET_ENV).or_else(|| env(crate::admin::CLIENT_SECRET_ENV)) {
                Some(text) => AppSecret::new(&text),
                None => Err(SecretError::Missing),
            },
        }
    }

    fn mac(&self) -> Option<HmacSha256> {
        // HMAC takes keys of any length, so this never fails; a failure would refuse every
        // delivery rather than accept one.
        HmacSha256::new_from_slice(&self.0).ok()
    }

    /// The HMAC-SHA256 of `message` with the secret (empty in the case, which cannot happen,
    /// of a key HMAC refuses).
    pub(crate) fn tag(&self, message: &[u8]) -> Vec<u8> {
        match self.mac() {
            Some(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            None => Vec::new(),
        }
    }

    /// Whether `tag` is the secret's HMAC-SHA256 of `message`, compared in constant time.
    pub(crate) fn signs(&self, message: &[u8], tag: &[u8]) -> bool {
        self.mac().is_some_and(|mut mac| {
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        })
    }
}

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Shopify-Hmac-Sha256 header")]
    Missing,
    #[error("the X-Shopify-Hmac-Sha256 header is not base64")]
    NotBase64,
    #[error("the X-Shopify-Hmac-Sha256 header does not match the body")]
    Mismatch,
}

/// The header value Shopify sends with `body` (tests, and replaying a hand-written payload).
pub fn sign(secret: &AppSecret, body: &[u8]) -> String {
    STANDARD.encode(secret.tag(body))
}

/// Checks `header` (the `X-Shopify-Hmac-Sha256` value) against the raw `body`.
pub fn verify(secret: &AppSecret, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let tag = STANDARD
        .decode(header.trim())
        .map_err(|_| SignatureError::NotBase64)?;
    if secret.signs(body, &tag) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> AppSecret {
        AppSecret::new(text).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn the_secret_comes_from_the_api_secret_else_the_client_secret() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let body = b"{}";
        let signed_with = |secret: &str| {
            super::sign(
                &AppSecret::new(secret).unwrap_or_else(|e| unreachable!("{e}")),
                body,
            )
        };
        let both = AppSecret::load_with(
            None,
            env(&[
                ("SHOPIFY_API_SECRET", "api"),
                ("SHOPIFY_CLIENT_SECRET", "client"),
            ]),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(super::sign(&both, body), signed_with("api"));
        let client = AppSecret::load_with(None, env(&[("SHOPIFY_CLIENT_SECRET", "client")]))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(super::sign(&client, body), signed_with("client"));
        let missing = AppSecret::load_with(None, env(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(
            missing
                .as_deref()
                .is_some_and(|m| m.contains("SHOPIFY_CLIENT_SECRET")),
            "{missing:?}"
        );
    }

    #[test]
    fn the_signature_matches_an_independent_hmac_sha256() {
        // `printf '{"shop_id":954889}' | openssl dgst -sha256 -hmac hush -binary | base64`
        let body = br#"{"shop_id":954889}"#;
        let expected = "7SF2YVpdY+xl/FNjdypErkmetJUTCOD8zqMlWFHhH5g=";
        assert_eq!(sign(&secret("hush"), body), expected);
        assert_eq!(verify(&secret("hush"), body, Some(expected)), Ok(()));
    }

    #[test]
    fn a_missing_blank_or_unreadable_secret_is_refused() {
        assert!(matches!(AppSecret::new(" \n"), Err(SecretError::Empty)));
        assert!(format!("{:?}", secret("hush")).contains("redacted"));
        assert!(!format!("{:?}", secret("hush")).contains("hush"));
    }
}
