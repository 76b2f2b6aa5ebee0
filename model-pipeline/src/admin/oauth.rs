//! The authorization code grant's two checks on the merchant's side: the address that sends the
//! merchant to Shopify's approval page, and the callback Shopify sends back, which is taken only
//! when its `state` is the one this run made, its `shop` is the store asked for and its `hmac`
//! is the app's signature of the other parameters.
//!
//! The signature, as Shopify documents it: HMAC-SHA256 with the app's client secret over the
//! callback's parameters other than `hmac` (and the legacy `signature`), sorted by name, each
//! `name=value` form-encoded and joined with `&`; sent as lowercase hex.

use crate::privacy::AppSecret;

/// Where Shopify shows the merchant the approval page, on the shop's origin.
pub const AUTHORIZE_PATH: &str = "/admin/oauth/authorize";

/// The access scopes marginwise asks a store for: those of `shopify.app.toml` (a tidy test holds
/// them equal).
pub const APP_SCOPES: &str = "read_customers,write_customers,read_products,write_products,read_orders,read_all_orders,write_discounts,write_cart_transforms";

/// The scope Shopify grants only on request (orders older than 60 days): an app may leave it out
/// of `shopify.app.toml` until then.
pub const ON_REQUEST_SCOPE: &str = "read_all_orders";

/// The scopes `marginwise auth` asks for: [`APP_SCOPES`], without [`ON_REQUEST_SCOPE`] unless
/// `all_orders`.
pub fn scopes(all_orders: bool) -> Vec<&'static str> {
    APP_SCOPES
        .split(',')
        .filter(|scope| all_orders || *scope != ON_REQUEST_SCOPE)
        .collect()
}

/// The approval page's address: offline access (no `grant_options[]=per-user`).
pub fn authorize_url(
    origin: &str,
    client_id: &str,
    scopes: &str,
    redirect_uri: &str,
    state: &str,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("scope", scopes)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .finish();
    format!("{origin}{AUTHORIZE_PATH}?{query}")
}

/// A fresh `state`: 128 random bits in hex, from the thread's CSPRNG.
pub fn new_state() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Why a callback is not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("the address has no query string: paste the whole address, from https:// to the end")]
    NoQuery,
    #[error("the store did not approve the app: {0}")]
    Denied(String),
    #[error("the callback has no `{0}` parameter")]
    Missing(&'static str),
    #[error("the callback's `{0}` parameter is repeated")]
    Repeated(String),
    #[error(
        "the callback's state is not the one this run sent: it answers another `marginwise auth` \
         run (or was forged); start again and use the newest address"
    )]
    WrongState,
    #[error("the callback is for {got}, not {expected}")]
    WrongShop { got: String, expected: String },
    #[error(
        "the callback's hmac is not the app's signature of its parameters: it did not come from \
         Shopify for this app, or the client secret is not the app's"
    )]
    BadSignature,
}

/// The `code` of a callback, given as its whole address or its query string alone, once
/// `state`, `shop` and `hmac` are checked. `expected_shop` is the `<name>.myshopify.com` asked
/// for.
pub fn verify_callback(
    callback: &str,
    expected_state: &str,
    expected_shop: &str,
    client_secret: &str,
) -> Result<String, CallbackError> {
    let callback = callback.trim();
    let query = match callback.split_once('?') {
        Some((_, query)) => query,
        None if callback.contains('=') && !callback.contains('/') => callback,
        None => return Err(CallbackError::NoQuery),
    };
    let query = query.split('#').next().unwrap_or_default();
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    if let Some([(name, _), _]) = pairs.windows(2).find(|w| match w {
        [(a, _), (b, _)] => a == b,
        _ => false,
    }) {
        return Err(CallbackError::Repeated(name.clone()));
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    // An error answer is unsigned: it is taken only with this run's state (which a page that
    // merely knows the listener's address cannot know), so that nothing else can end the wait.
    if let Some(error) = get("error") {
        if get("state") != Some(expected_state) {
            return Err(CallbackError::WrongState);
        }
        let description = get("error_description").unwrap_or_default();
        let shown: String = format!("{error} {description}")
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        return Err(CallbackError::Denied(shown));
    }
    let hmac = get("hmac").ok_or(CallbackError::Missing("hmac"))?;
    let state = get("state").ok_or(CallbackError::Missing("state"))?;
    let shop = get("shop").ok_or(CallbackError::Missing("shop"))?;
    let code = get("code").ok_or(CallbackError::Missing("code"))?;
    // The signature first: a forged callback learns nothing from which check failed.
    let signed = signed_message(&pairs);
    // The app's client secret signs callbacks as it signs webhooks.
    let given = hex::decode(hmac).map_err(|_| CallbackError::BadSignature)?;
    let secret = AppSecret::new(client_secret).map_err(|_| CallbackError::BadSignature)?;
    if !secret.signs(signed.as_bytes(), &given) {
        return Err(CallbackError::BadSignature);
    }
    if state != expected_state {
        return Err(CallbackError::WrongState);
    }
    if !shop.eq_ignore_ascii_case(expected_shop) {
        return Err(CallbackError::WrongShop {
            got: shop.chars().take(100).collect(),
            expected: expected_shop.to_string(),
        });
    }
    Ok(code.to_string())
}

/// The message the callback's `hmac` signs: the other parameters, sorted, form-encoded.
fn signed_message(sorted: &[(String, String)]) -> String {
    let mut message = form_urlencoded::Serializer::new(String::new());
    for (key, value) in sorted {
        if key != "hmac" && key != "signature" {
            message.append_pair(key, value);
        }
    }
    message.finish()
}

/// The signature Shopify puts on a callback with these parameters (tests forge and tamper with
/// it; the local stand-in signs its redirects with code of its own); empty for a blank secret.
pub fn sign(parameters: &[(&str, &str)], client_secret: &str) -> String {
    let mut sorted: Vec<(String, String)> = parameters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sorted.sort();
    AppSecret::new(client_secret)
        .map(|secret| hex::encode(secret.tag(signed_message(&sorted).as_bytes())))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    const SECRET: &str = "hush";

    #[test]
    fn the_on_request_scope_is_left_out_only_when_asked() {
        assert_eq!(scopes(true).join(","), APP_SCOPES);
        let without = scopes(false);
        assert!(!without.contains(&ON_REQUEST_SCOPE));
        assert!(without.contains(&"read_orders"));
        assert_eq!(without.len() + 1, scopes(true).len());
    }

    fn callback(parameters: &[(&str, &str)]) -> String {
        let hmac = sign(parameters, SECRET);
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in parameters {
            query.append_pair(k, v);
        }
        query.append_pair("hmac", &hmac);
        format!("https://app.example/auth/callback?{}", query.finish())
    }

    const GOOD: [(&str, &str); 5] = [
        ("code", "c0de"),
        ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZXhhbXBsZQ=="),
        ("shop", "example.myshopify.com"),
        ("state", "s1"),
        ("timestamp", "1763769600"),
    ];

    /// The signature matches one computed independently (Python's `hmac` over the sorted,
    /// form-encoded parameters: `code=c0de&host=YWRt...ZQ%3D%3D&shop=...&state=s1&timestamp=...`).
    #[test]
    fn the_signature_is_shopifys() {
        assert_eq!(
            sign(&GOOD, SECRET),
            "cd05d8ac2abead583ffe7b5c6782dc17546b3f3468fd904e26dc445f5f5743c2"
        );
    }

    #[test]
    fn a_good_callback_gives_its_code() {
        let url = callback(&GOOD);
        assert_eq!(
            verify_callback(&url, "s1", "example.myshopify.com", SECRET),
            Ok("c0de".to_string())
        );
        // The query string alone, and with a fragment, are taken too.
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        assert_eq!(
            verify_callback(query, "s1", "example.myshopify.com", SECRET),
            Ok("c0de".to_string())
        );
        assert_eq!(
            verify_callback(&format!("{url}#x"), "s1", "example.myshopify.com", SECRET),
            Ok("c0de".to_string())
        );
    }

    #[test]
    fn every_check_refuses_what_it_guards() {
        let url = callback(&GOOD);
        let expect = |url: &str, state: &str, shop: &str, secret: &str, error: CallbackError| {
            assert_eq!(
                verify_callback(url, state, shop, secret),
                Err(error),
                "{url}"
            );
        };
        expect(
            &url,
            "s2",
            "example.myshopify.com",
            SECRET,
            CallbackError::WrongState,
        );
        expect(
            &url,
            "s1",
            "other.myshopify.com",
            SECRET,
            CallbackError::WrongShop {
                got: "example.myshopify.com".into(),
                expected: "other.myshopify.com".into(),
            },
        );
        expect(
            &url,
            "s1",
            "example.myshopify.com",
            "not-the-secret",
            CallbackError::BadSignature,
        );
        // Any parameter changed after signing breaks the signature.
        for (from, to) in [
            ("code=c0de", "code=c0df"),
            ("state=s1", "state=s2"),
            ("timestamp=1763769600", "timestamp=1763769601"),
        ] {
            expect(
                &url.replace(from, to),
                "s1",
                "example.myshopify.com",
                SECRET,
                CallbackError::BadSignature,
            );
        }
        expect(
            &format!("{url}&code=other"),
            "s1",
            "example.myshopify.com",
            SECRET,
            CallbackError::Repeated("code".into()),
        );
        expect(
            "https://app.example/auth/callback",
            "s1",
            "example.myshopify.com",
            SECRET,
            CallbackError::NoQuery,
        );
        let unsigned: Vec<(&str, &str)> =
            GOOD.iter().copied().filter(|(k, _)| *k != "code").collect();
        expect(
            &callback(&unsigned),
            "s1",
            "example.myshopify.com",
            SECRET,
            CallbackError::Missing("code"),
        );
        expect(
            "https://app.example/cb?error=access_denied&error_description=The+merchant+said+no&state=s1",
            "s1",
            "example.myshopify.com",
            SECRET,
            CallbackError::Denied("access_denied The merchant said no".into()),
        );
        // Without this run's state, an error answer is someone else's.
        for forged in [
            "https://app.example/cb?error=access_denied&error_description=run+this",
            "https://app.example/cb?error=access_denied&state=s2",
        ] {
            expect(
                forged,
                "s1",
                "example.myshopify.com",
                SECRET,
                CallbackError::WrongState,
            );
        }
    }

    #[test]
    fn the_approval_address_carries_what_shopify_needs() {
        let url = authorize_url(
            "https://example.myshopify.com",
            "client id",
            "read_products,write_products",
            "http://127.0.0.1:8089/auth/callback",
            "s1",
        );
        assert_eq!(
            url,
            "https://example.myshopify.com/admin/oauth/authorize?client_id=client+id\
             &scope=read_products%2Cwrite_products\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8089%2Fauth%2Fcallback&state=s1"
        );
        let state = new_state();
        assert_eq!(state.len(), 32);
        assert_ne!(state, new_state());
    }
}
