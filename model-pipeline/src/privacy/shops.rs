//! `marginwise webhooks --shops FILE`: one process serving the privacy webhooks of several
//! shops. Shopify sends every shop's compliance deliveries to the app's one address, so an app
//! on more than one store (`marginwise auth` for each) needs one server that knows them all.
//!
//! ```json
//! {"shops": [
//!   {"credentials": "a/credentials.json", "refresh": "a", "bundles": "a/bundles.json"},
//!   {"credentials": "b/credentials.json", "plan": "b/plan", "export": ["b/export"]},
//!   {"credentials": "c/credentials.json", "plan": "c/plan", "state": "c/state.sqlite"}
//! ]}
//! ```
//!
//! Each entry is one shop: its credentials file (the one `marginwise auth` wrote, whose `shop`
//! names it; or `shop` beside it, which must then agree), its plan folder, and optionally its
//! state database, data-request folder and export folders, as the single-shop flags take them.
//! A shop kept by `marginwise refresh` names its refresh folder instead of a plan folder
//! (`"refresh": DIR` is `"plan": DIR/plan` with `DIR/export` among its export folders), and may
//! name the bundle definitions its scores flag (`"bundles"`); `marginwise refresh --shops FILE`
//! refreshes every shop that has one, so one file serves both the schedule and the webhooks.
//! Relative paths are read from the file's folder. The shop is never taken from the environment
//! (`SHOPIFY_SHOP` would name every entry without one). A shop listed twice, two shops sharing a
//! plan folder, state database, data-request folder or export folder (compared as absolute
//! paths with `.` and `..` resolved, and through symbolic links where they exist), and a
//! `SHOPIFY_ACCESS_TOKEN` in the environment (a token is one shop's) are refused.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::admin::{Credentials, TOKEN_ENV, file_shop, shop_domain};

/// The file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopsFile {
    shops: Vec<ShopEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopEntry {
    /// The shop's myshopify domain; else the credentials file's `shop`.
    shop: Option<String>,
    credentials: Option<PathBuf>,
    /// A local stand-in's GraphQL endpoint (tests), with `shop` naming the shop served.
    endpoint: Option<String>,
    plan: Option<PathBuf>,
    /// A `marginwise refresh` folder: its `plan/` is the plan folder, its `export/` an export
    /// folder.
    refresh: Option<PathBuf>,
    /// The bundle definitions `marginwise refresh` flags bundle parents from (`score --bundles`).
    bundles: Option<PathBuf>,
    state: Option<PathBuf>,
    data_requests: Option<PathBuf>,
    #[serde(default)]
    export: Vec<PathBuf>,
}

/// One shop to serve, with what its handler needs.
#[derive(Debug, Clone)]
pub struct ServedShop {
    pub credentials: Credentials,
    /// The shop's domain beside a local stand-in's endpoint.
    pub shop_domain: Option<String>,
    pub plan: PathBuf,
    pub state: Option<PathBuf>,
    pub data_requests: Option<PathBuf>,
    pub export_dirs: Vec<PathBuf>,
    /// The shop's `marginwise refresh` folder, when it names one.
    pub refresh: Option<PathBuf>,
    /// The bundle definitions for `marginwise refresh`.
    pub bundles: Option<PathBuf>,
}

/// Reads the shops file; every problem names the file and the entry.
pub fn load(path: &Path) -> anyhow::Result<Vec<ServedShop>> {
    anyhow::ensure!(
        std::env::var_os(TOKEN_ENV).is_none(),
        "{TOKEN_ENV} is set: a token is one shop's, so with --shops each shop's token comes from \
         its own credentials file; unset it"
    );
    let (file, base) = read(path)?;
    let resolve = |p: &Path| resolve(&base, p);
    let mut served = Vec::with_capacity(file.shops.len());
    let mut domains: Vec<String> = Vec::with_capacity(file.shops.len());
    for (index, entry) in file.shops.into_iter().enumerate() {
        let place = format!("{} shops[{index}]", path.display());
        let credentials_file = entry.credentials.as_deref().map(resolve);
        // The shop: the entry's and the file's, which must agree; never the environment's.
        let from_file = match &credentials_file {
            Some(file) => file_shop(file).with_context(|| place.clone())?,
            None => None,
        };
        let shop = match (&entry.shop, &from_file) {
            (Some(given), Some(held)) => {
                let (given_domain, held_domain) = (shop_domain(given)?, shop_domain(held)?);
                anyhow::ensure!(
                    given_domain == held_domain,
                    "{place}: \"shop\" is {given_domain}, but its credentials file is \
                     {held_domain}'s"
                );
                given_domain
            }
            (Some(given), None) => shop_domain(given).with_context(|| place.clone())?,
            (None, Some(held)) => shop_domain(held).with_context(|| place.clone())?,
            (None, None) => anyhow::bail!(
                "{place}: no shop: give \"shop\", or a credentials file that names it"
            ),
        };
        if let Some(other) = domains.iter().position(|d| *d == shop) {
            anyhow::bail!("{place}: {shop} is shops[{other}] too");
        }
        domains.push(shop.clone());
        let credentials = match &entry.endpoint {
            Some(endpoint) => {
                Credentials::resolve_local(endpoint, None, credentials_file.as_deref())
            }
            None => {
                anyhow::ensure!(
                    credentials_file.is_some(),
                    "{place}: no \"credentials\" (the file `marginwise auth` wrote for the shop)"
                );
                Credentials::resolve(Some(&shop), None, credentials_file.as_deref())
            }
        }
        .with_context(|| place.clone())?;
        let refresh = entry.refresh.as_deref().map(resolve);
        // `marginwise refresh` keeps its state in its plan/: a state database elsewhere would
        // split the suppression list between the webhooks and the refresh.
        anyhow::ensure!(
            refresh.is_none() || entry.state.is_none(),
            "{place}: a \"refresh\" folder keeps its state database in its plan/; drop \"state\""
        );
        let plan = match (&entry.plan, &refresh) {
            (Some(plan), None) => resolve(plan),
            (None, Some(refresh)) => refresh.join(crate::refresh::PLAN_DIR),
            (Some(_), Some(_)) => anyhow::bail!(
                "{place}: give \"plan\" or \"refresh\" (whose plan folder is its plan/), not both"
            ),
            (None, None) => anyhow::bail!(
                "{place}: no \"plan\" folder (or \"refresh\" folder) for the shop's write-back state"
            ),
        };
        let mut export_dirs: Vec<PathBuf> = entry.export.iter().map(|p| resolve(p)).collect();
        if let Some(refresh) = &refresh {
            export_dirs.push(refresh.join(crate::refresh::EXPORT_DIR));
        }
        served.push(ServedShop {
            credentials,
            shop_domain: entry.endpoint.as_ref().map(|_| shop.clone()),
            plan,
            state: entry.state.as_deref().map(resolve),
            data_requests: entry.data_requests.as_deref().map(resolve),
            export_dirs,
            refresh,
            bundles: entry.bundles.as_deref().map(resolve),
        });
    }
    refuse_shared_folders(path, &served)?;
    Ok(served)
}

/// The refresh folders the shops file names, in its order, for `marginwise refresh --status`:
/// a monitor reads no credentials file (it makes no request to any store).
pub fn refresh_folders(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (file, base) = read(path)?;
    Ok(file
        .shops
        .iter()
        .filter_map(|entry| entry.refresh.as_deref())
        .map(|refresh| resolve(&base, refresh))
        .collect())
}

/// The file parsed, and the folder its relative paths are read from.
fn read(path: &Path) -> anyhow::Result<(ShopsFile, PathBuf)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ShopsFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a {{\"shops\": [...]}} file as `marginwise webhooks --help` shows",
            path.display()
        )
    })?;
    anyhow::ensure!(!file.shops.is_empty(), "{}: no shops", path.display());
    let base = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base =
        std::path::absolute(&base).with_context(|| format!("the folder of {}", path.display()))?;
    Ok((file, base))
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `place` made comparable: `.` and `..` resolved, and through symbolic links as far as it
/// exists (`a/plan`, `./a/plan/`, `x/../a/plan` and a link to it are one folder).
fn comparable(place: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for part in place.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    // The longest existing ancestor through its links, the rest as written.
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => rest.push(name.to_os_string()),
            None => return lexical,
        }
        if !existing.pop() {
            return lexical;
        }
    }
    let mut resolved = std::fs::canonicalize(&existing).unwrap_or(existing);
    resolved.extend(rest.iter().rev());
    resolved
}

/// Two shops sharing a folder or database would redact each other's data. The defaults count:
/// a shop's plan folder holds its state database and data requests unless it names others.
fn refuse_shared_folders(path: &Path, served: &[ServedShop]) -> anyhow::Result<()> {
    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    for (index, shop) in served.iter().enumerate() {
        let mut places: Vec<PathBuf> = vec![shop.plan.clone()];
        places.push(
            shop.state
                .clone()
                .unwrap_or_else(|| shop.plan.join(crate::sync::state::STATE_FILE)),
        );
        places.push(
            shop.data_requests
                .clone()
                .unwrap_or_else(|| shop.plan.join(super::DATA_REQUESTS_DIR)),
        );
        places.extend(shop.export_dirs.iter().cloned());
        for place in places {
            let key = comparable(&place);
            if let Some((_, other)) = seen.iter().find(|(p, i)| *p == key && *i != index) {
                anyhow::bail!(
                    "{}: shops[{other}] and shops[{index}] both use {}; each shop needs its own",
                    path.display(),
                    place.display()
                );
            }
            seen.push((key, index));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn entries_resolve_against_the_files_folder_and_shared_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = |name: &str, shop: &str| {
            let file = dir.path().join(name);
            std::fs::write(
                &file,
                format!(r#"{{"shop": "{shop}", "access_token": "shpat_{name}"}}"#),
            )
            .unwrap();
        };
        credentials("a.json", "a.myshopify.com");
        credentials("b.json", "b.myshopify.com");
        let shops = dir.path().join("shops.json");
        std::fs::write(
            &shops,
            r#"{"shops": [
                {"credentials": "a.json", "plan": "a/plan", "export": ["a/export"]},
                {"credentials": "b.json", "plan": "b/plan"}
            ]}"#,
        )
        .unwrap();
        let served = load(&shops).unwrap();
        assert_eq!(served[0].credentials.shop, "a.myshopify.com");
        assert_eq!(served[1].credentials.shop, "b.myshopify.com");
        assert_eq!(served[0].plan, dir.path().join("a/plan"));
        assert_eq!(served[0].export_dirs, vec![dir.path().join("a/export")]);
        assert_eq!(
            (served[0].refresh.as_ref(), served[0].bundles.as_ref()),
            (None, None)
        );

        // A refresh folder stands for its plan/ and, among the export folders, its export/.
        std::fs::write(
            &shops,
            r#"{"shops": [
                {"credentials": "a.json", "refresh": "a", "bundles": "a/bundles.json", "export": ["old"]},
                {"credentials": "b.json", "plan": "b/plan"}
            ]}"#,
        )
        .unwrap();
        let served = load(&shops).unwrap();
        assert_eq!(served[0].plan, dir.path().join("a/plan"));
        assert_eq!(
            served[0].export_dirs,
            vec![dir.path().join("old"), dir.path().join("a/export")]
        );
        assert_eq!(served[0].refresh, Some(dir.path().join("a")));
        assert_eq!(served[0].bundles, Some(dir.path().join("a/bundles.json")));
        assert_eq!(served[1].refresh, None);

        for (text, says) in [
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "p"}, {"credentials": "b.json", "plan": "./p/"}]}"#,
                "shops[0] and shops[1] both use",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "a", "export": ["x"]}, {"credentials": "b.json", "plan": "b", "export": ["x"]}]}"#,
                "both use",
            ),
            (r#"{"shops": [{"plan": "p"}]}"#, "shops[0]: no shop"),
            (
                r#"{"shops": [{"shop": "c", "plan": "p"}]}"#,
                "shops[0]: no \"credentials\"",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "a"}, {"credentials": "b.json", "plan": "x/../a"}]}"#,
                "both use",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "a", "state": "s.sqlite"}, {"credentials": "b.json", "plan": "b", "state": "./s.sqlite"}]}"#,
                "both use",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "a"}, {"credentials": "b.json", "plan": "b", "state": "a/sync-state.sqlite"}]}"#,
                "both use",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "shop": "b", "plan": "a"}]}"#,
                "\"shop\" is b.myshopify.com, but its credentials file is a.myshopify.com's",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "a"}, {"credentials": "a.json", "plan": "b"}]}"#,
                "shops[1]: a.myshopify.com is shops[0] too",
            ),
            (
                r#"{"shops": [{"credentials": "missing.json", "plan": "p"}]}"#,
                "shops[0]",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "plan": "a/plan", "refresh": "a"}]}"#,
                "shops[0]: give \"plan\" or \"refresh\"",
            ),
            (
                r#"{"shops": [{"credentials": "a.json"}]}"#,
                "shops[0]: no \"plan\" folder (or \"refresh\" folder)",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "refresh": "r"}, {"credentials": "b.json", "refresh": "./r"}]}"#,
                "shops[0] and shops[1] both use",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "refresh": "r"}, {"credentials": "b.json", "plan": "b", "export": ["r/export"]}]}"#,
                "both use",
            ),
            (
                r#"{"shops": [{"credentials": "a.json", "refresh": "a", "state": "s.sqlite"}]}"#,
                "shops[0]: a \"refresh\" folder keeps its state database in its plan/",
            ),
            (r#"{"shops": []}"#, "no shops"),
            (r#"{"shop": []}"#, "not a {\"shops\": [...]} file"),
        ] {
            std::fs::write(&shops, text).unwrap();
            let error = format!("{:#}", load(&shops).unwrap_err());
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
