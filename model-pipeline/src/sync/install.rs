//! Puts the Functions to work in a store: the automatic app discount that runs `offers` and the
//! cart transform that runs `bundles`, each created with (or updated to) the configuration
//! metafields `compile-policy` and `compile-bundles` print.
//!
//! Both must be created with marginwise's own access token: `$app` in a metafield namespace
//! expands to the calling app's namespace, and the Functions read only their own app's, so a
//! policy set through another app (GraphiQL, a script with another token) lands where no Function
//! reads it.
//!
//! What it deliberately does not do: it never creates a second discount when it cannot tell
//! whether the first was created (an answer lost in transit is reported, not retried: two
//! discounts would both run the function), and it does not delete or replace a cart transform
//! another run created; a shop has one cart transform per function, so that one is updated in
//! place, with `compareDigest` guarding each of its metafields against a concurrent writer.

use std::fmt;

use marginwise_engine::format;
use marginwise_engine::policy::Policy;
use serde::Deserialize;
use serde_json::Value;

use crate::admin::ops::{
    self, cart_transform_create, cart_transforms, discount_automatic_app_create,
    discount_automatic_app_update, metafields_set,
};
use crate::admin::{AdminClient, AdminError, Retry};

/// The handle of the discount Function (extensions/offers/shopify.extension.toml).
pub const OFFERS_FUNCTION: &str = "offers";
/// The handle of the cart transform Function (extensions/bundles/shopify.extension.toml).
pub const BUNDLES_FUNCTION: &str = "bundles";
/// The discount's title when none is given.
pub const DEFAULT_DISCOUNT_TITLE: &str = "marginwise offers";
/// The namespace of every configuration metafield.
const APP_NAMESPACE: &str = "$app";

/// The class a reward needs is the engine's ([`marginwise_engine::policy::Reward::class`]), the
/// same rule its eligibility check applies to the node's classes.
pub use marginwise_engine::DiscountClass;

/// The classes a policy's offers need, each once, in the order PRODUCT, ORDER, SHIPPING. A class
/// no offer needs is left out: Shopify would run the function for it (the delivery target for
/// SHIPPING) only to return nothing.
pub fn discount_classes(policy: &Policy) -> Vec<DiscountClass> {
    let mut classes: Vec<DiscountClass> = policy
        .offers
        .iter()
        .map(|offer| offer.reward.class())
        .collect();
    classes.sort();
    classes.dedup();
    classes
}

/// Which other discount classes the discount combines with (`combinesWith`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CombinesWith {
    pub product: bool,
    pub order: bool,
    pub shipping: bool,
}

impl fmt::Display for CombinesWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.product, "product"),
            (self.order, "order"),
            (self.shipping, "shipping"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
        .collect();
        match names.as_slice() {
            [] => f.write_str("no other discounts"),
            [one] => write!(f, "{one} discounts"),
            [first, second] => write!(f, "{first} and {second} discounts"),
            [first, second, third, ..] => write!(f, "{first}, {second} and {third} discounts"),
        }
    }
}

/// One configuration metafield, as `compile-policy` and `compile-bundles` print it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMetafield {
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl ConfigMetafield {
    /// Reads the printed `metafields` argument (`crate::policy::policy_metafields`,
    /// `crate::cart_transform::cart_transform_metafields`).
    pub fn list(value: &Value) -> Result<Vec<ConfigMetafield>, InstallError> {
        Vec::<ConfigMetafield>::deserialize(value)
            .map_err(|e| InstallError::Metafields(e.to_string()))
    }

    /// `$app.policy (812 bytes)`.
    fn summary(&self) -> String {
        format!(
            "{}.{} ({} bytes)",
            self.namespace,
            self.key,
            self.value.len()
        )
    }
}

/// A list of metafields for a summary line.
pub fn metafields_summary(metafields: &[ConfigMetafield]) -> String {
    metafields
        .iter()
        .map(ConfigMetafield::summary)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to create a discount with, or change on one.
#[derive(Debug, Clone)]
pub struct DiscountSettings {
    /// `None`: the default title on create, unchanged on update.
    pub title: Option<String>,
    pub classes: Vec<DiscountClass>,
    /// `None`: combines with nothing on create, unchanged on update.
    pub combines_with: Option<CombinesWith>,
    pub metafields: Vec<ConfigMetafield>,
    /// `startsAt` on create (ISO 8601); not sent on update.
    pub starts_at: String,
}

/// A discount as the store answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    /// The discount node's GID (`gid://shopify/DiscountAutomaticNode/...`): what `--update` takes.
    pub id: String,
    pub title: String,
    pub classes: Vec<String>,
    pub combines_with: CombinesWith,
    pub starts_at: String,
}

/// Whether `install_cart_transform` made a new cart transform or updated the one there was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Created,
    Updated,
}

/// The cart transform as it now is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartTransform {
    pub id: String,
    pub block_on_failure: bool,
    pub installed: Installed,
}

/// One user error, as the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Vec<String>,
    pub message: String,
    pub code: Option<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str("(input)")?;
        } else {
            f.write_str(&self.field.join("."))?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        Ok(())
    }
}

/// The user errors of one answer, for [`InstallError::Refused`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("{operation}: the store refused it: {errors}")]
    Refused {
        operation: &'static str,
        errors: FieldErrors,
    },
    #[error("{operation}: the answer has neither {what} nor user errors")]
    Incomplete {
        operation: &'static str,
        what: &'static str,
    },
    #[error(
        "discountAutomaticAppCreate: the outcome is unknown ({cause}), so it was not sent again: a \
         discount titled \"{title}\" may have been created. Look for it in the admin's discounts \
         and run again with --update <its id>, or delete it and run again"
    )]
    CreateOutcomeUnknown { cause: String, title: String },
    #[error(
        "the store has no function with handle \"{handle}\" for this app (its functions: {found}); \
         deploy the app's extensions first"
    )]
    NoFunction { handle: String, found: String },
    #[error(
        "cartTransformCreate: {why}, but cartTransforms lists none for function \"{handle}\" \
         ({function_id}); run again"
    )]
    CartTransformNotFound {
        why: &'static str,
        handle: String,
        function_id: String,
    },
    #[error("the configuration metafields are not what compile-policy/compile-bundles print: {0}")]
    Metafields(String),
    #[error(
        "metafieldsSet: the answer was lost and the store does not hold the new values, so \
         nothing changed; run again"
    )]
    UpdateLost,
    #[error(
        "{id} is not {} of this store (pass the GID `discount` printed{})",
        if *codes { "a discount" } else { "an automatic discount" },
        if *codes { ", or a code discount's GID from the admin" } else { "" }
    )]
    NoDiscount { id: String, codes: bool },
}

/// A generated enum's GraphQL value (`FUNCTION_NOT_FOUND`, or an unknown one as the store sent
/// it).
fn enum_text<T: serde::Serialize + fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        _ => format!("{value:?}"),
    }
}

/// A payload's `userErrors` as [`FieldErrors`] (each operation has its own generated error type,
/// all with `field`, `message` and `code`).
macro_rules! field_errors {
    ($user_errors:expr) => {
        FieldErrors(
            $user_errors
                .into_iter()
                .map(|e| FieldError {
                    field: e.field.unwrap_or_default(),
                    message: e.message,
                    code: e.code.as_ref().map(enum_text),
                })
                .collect(),
        )
    };
}

/// The `DiscountAutomaticAppInput` of either discount operation (each has its own generated
/// types with the same fields).
macro_rules! discount_input {
    ($module:ident, $settings:expr, $function_handle:expr, $starts_at:expr, $with_metafields:expr) => {{
        let settings: &DiscountSettings = $settings;
        $module::DiscountAutomaticAppInput {
            function_handle: $function_handle,
            title: settings.title.clone(),
            starts_at: $starts_at,
            discount_classes: Some(
                settings
                    .classes
                    .iter()
                    .map(|class| match class {
                        DiscountClass::Product => $module::DiscountClass::PRODUCT,
                        DiscountClass::Order => $module::DiscountClass::ORDER,
                        DiscountClass::Shipping => $module::DiscountClass::SHIPPING,
                    })
                    .collect(),
            ),
            combines_with: settings.combines_with.map(|combines| {
                $module::DiscountCombinesWithInput {
                    product_discounts: Some(combines.product),
                    order_discounts: Some(combines.order),
                    shipping_discounts: Some(combines.shipping),
                }
            }),
            metafields: $with_metafields.then(|| {
                settings
                    .metafields
                    .iter()
                    .map(|m| $module::MetafieldInput {
                        id: None,
                        namespace: Some(m.namespace.clone()),
                        key: Some(m.key.clone()),
                        type_: Some(m.kind.clone()),
                        value: Some(m.value.clone()),
                    })
                    .collect()
            }),
        }
    }};
}

/// A discount from either operation's answer, or its user errors.
macro_rules! discount_answer {
    ($module:ident, $payload:expr, $operation:expr, $payload_type:ident, $discount_type:ident) => {{
        let payload: Option<$module::$payload_type> = $payload;
        let Some(payload) = payload else {
            return Err(InstallError::Incomplete {
                operation: $operation,
                what: "a payload",
            });
        };
        if !payload.user_errors.is_empty() {
            return Err(InstallError::Refused {
                operation: $operation,
                errors: field_errors!(payload.user_errors),
            });
        }
        let Some(discount): Option<$module::$discount_type> = payload.automatic_app_discount else {
            return Err(InstallError::Incomplete {
                operation: $operation,
                what: "automaticAppDiscount",
            });
        };
        Ok(Discount {
            id: discount.discount_id,
            title: discount.title,
            classes: discount.discount_classes.iter().map(enum_text).collect(),
            combines_with: CombinesWith {
                product: discount.combines_with.product_discounts,
                order: discount.combines_with.order_discounts,
                shipping: discount.combines_with.shipping_discounts,
            },
            starts_at: discount.starts_at,
        })
    }};
}

/// `discountAutomaticAppCreate` with the `offers` function. Sent once: an answer that never
/// arrived is [`InstallError::CreateOutcomeUnknown`], not a second discount.
pub fn create_discount(
    client: &mut AdminClient,
    settings: &DiscountSettings,
) -> Result<Discount, InstallError> {
    const OPERATION: &str = "discountAutomaticAppCreate";
    let title = settings
        .title
        .clone()
        .unwrap_or_else(|| DEFAULT_DISCOUNT_TITLE.to_string());
    let settings = DiscountSettings {
        title: Some(title.clone()),
        combines_with: Some(settings.combines_with.unwrap_or_default()),
        ..settings.clone()
    };
    let variables = discount_automatic_app_create::Variables {
        automatic_app_discount: discount_input!(
            discount_automatic_app_create,
            &settings,
            Some(OFFERS_FUNCTION.to_string()),
            Some(settings.starts_at.clone()),
            true
        ),
    };
    let data = match client.execute::<ops::DiscountAutomaticAppCreate>(
        OPERATION,
        variables,
        Retry::UnlessAmbiguous,
    ) {
        Ok(data) => data,
        Err(AdminError::Ambiguous { cause, .. }) => {
            return Err(InstallError::CreateOutcomeUnknown { cause, title });
        }
        Err(error) => return Err(error.into()),
    };
    discount_answer!(
        discount_automatic_app_create,
        data.discount_automatic_app_create,
        OPERATION,
        DiscountAutomaticAppCreateDiscountAutomaticAppCreate,
        DiscountAutomaticAppCreateDiscountAutomaticAppCreateAutomaticAppDiscount
    )
}

/// Updates discount `id`: its metafields with `metafieldsSet` (compare-and-set against what it
/// holds: Shopify documents `metafieldsSet` as create-or-update by owner, namespace and key,
/// while a `MetafieldInput` without an `id` in `discountAutomaticAppUpdate` may be taken for a
/// new metafield), then its classes, and the title and `combinesWith` when given, with
/// `discountAutomaticAppUpdate`, which changes nothing more when sent twice, so it is retried.
pub fn update_discount(
    client: &mut AdminClient,
    id: &str,
    settings: &DiscountSettings,
) -> Result<Discount, InstallError> {
    const OPERATION: &str = "discountAutomaticAppUpdate";
    let held = discount_metafields(client, id, false)?;
    set_config_metafields(client, id, &settings.metafields, &held, |client| {
        discount_metafields(client, id, false)
    })?;
    let variables = discount_automatic_app_update::Variables {
        id: id.to_string(),
        automatic_app_discount: discount_input!(
            discount_automatic_app_update,
            settings,
            None,
            None,
            false
        ),
    };
    let data =
        client.execute::<ops::DiscountAutomaticAppUpdate>(OPERATION, variables, Retry::Always)?;
    discount_answer!(
        discount_automatic_app_update,
        data.discount_automatic_app_update,
        OPERATION,
        DiscountAutomaticAppUpdateDiscountAutomaticAppUpdate,
        DiscountAutomaticAppUpdateDiscountAutomaticAppUpdateAutomaticAppDiscount
    )
}

/// The policy a discount holds now, as read for [`store_recompiled`]: its JSON text and what each
/// of the discount's `$app` metafields held then (their digests make the write compare-and-set).
#[derive(Debug, Clone)]
pub struct HeldPolicy {
    pub json: String,
    held: Vec<Held>,
}

impl HeldPolicy {
    /// Whether the discount's `$app.policy_compiled` was compiled from exactly this JSON (what the
    /// Function checks before it reads it).
    pub fn compiled_is_current(&self) -> bool {
        self.held
            .iter()
            .find(|h| h.key == format::COMPILED_POLICY_KEY)
            .is_some_and(|compiled| {
                marginwise_engine::policy::compiled::decode(&compiled.value, &self.json).is_ok()
            })
    }
}

/// The `$app.policy` discount `id` holds (written by `discount` or by the settings page in the
/// admin); `None` when it has none.
pub fn held_policy(client: &mut AdminClient, id: &str) -> Result<Option<HeldPolicy>, InstallError> {
    let held = discount_metafields(client, id, true)?;
    Ok(held
        .iter()
        .find(|h| h.key == format::POLICY_KEY)
        .map(|policy| HeldPolicy {
            json: policy.value.clone(),
            held: held.clone(),
        }))
}

/// Stores `metafields` (the policy and its compiled form, made from `policy.json`) on discount
/// `id`, each compare-and-set against what [`held_policy`] read: a policy changed in the admin
/// since then is refused (`STALE_OBJECT`), never overwritten with the older one.
pub fn store_recompiled(
    client: &mut AdminClient,
    id: &str,
    policy: &HeldPolicy,
    metafields: &[ConfigMetafield],
) -> Result<(), InstallError> {
    set_config_metafields(client, id, metafields, &policy.held, |client| {
        discount_metafields(client, id, true)
    })
}

/// `cartTransformCreate(functionHandle: "bundles", blockOnFailure: false, metafields)`; when the
/// shop already has the cart transform of `bundles` (`FUNCTION_ALREADY_REGISTERED`), or the
/// create's answer was lost, that cart transform's metafields are set instead, so running this
/// again is how the configuration is changed.
pub fn install_cart_transform(
    client: &mut AdminClient,
    metafields: &[ConfigMetafield],
) -> Result<CartTransform, InstallError> {
    use cart_transform_create::CartTransformCreateUserErrorCode as Code;
    const OPERATION: &str = "cartTransformCreate";
    let variables = cart_transform_create::Variables {
        function_handle: BUNDLES_FUNCTION.to_string(),
        block_on_failure: false,
        metafields: metafields
            .iter()
            .map(|m| cart_transform_create::MetafieldInput {
                id: None,
                namespace: Some(m.namespace.clone()),
                key: Some(m.key.clone()),
                type_: Some(m.kind.clone()),
                value: Some(m.value.clone()),
            })
            .collect(),
    };
    // A create whose answer is lost may have landed: the lookup below finds it either way.
    let why = match client.execute::<ops::CartTransformCreate>(
        OPERATION,
        variables,
        Retry::UnlessAmbiguous,
    ) {
        Err(AdminError::Ambiguous { .. }) => "the answer to the create was lost",
        Err(error) => return Err(error.into()),
        Ok(data) => {
            let Some(payload) = data.cart_transform_create else {
                return Err(InstallError::Incomplete {
                    operation: OPERATION,
                    what: "a payload",
                });
            };
            let registered = payload
                .user_errors
                .iter()
                .any(|e| matches!(e.code, Some(Code::FUNCTION_ALREADY_REGISTERED)));
            if registered {
                "the store says one exists"
            } else if !payload.user_errors.is_empty() {
                return Err(InstallError::Refused {
                    operation: OPERATION,
                    errors: field_errors!(payload.user_errors),
                });
            } else {
                let Some(created) = payload.cart_transform else {
                    return Err(InstallError::Incomplete {
                        operation: OPERATION,
                        what: "cartTransform",
                    });
                };
                return Ok(CartTransform {
                    id: created.id,
                    block_on_failure: created.block_on_failure,
                    installed: Installed::Created,
                });
            }
        }
    };
    update_cart_transform(client, metafields, why)
}

/// Finds the cart transform of `bundles` and sets `metafields` on it, each guarded by the digest
/// it had when read (or required to be absent).
fn update_cart_transform(
    client: &mut AdminClient,
    metafields: &[ConfigMetafield],
    why: &'static str,
) -> Result<CartTransform, InstallError> {
    let existing = find_cart_transform(client, why)?;
    let held = held_of(&existing.metafields.nodes);
    set_config_metafields(client, &existing.id, metafields, &held, |client| {
        Ok(held_of(&find_cart_transform(client, why)?.metafields.nodes))
    })?;
    Ok(CartTransform {
        id: existing.id,
        block_on_failure: existing.block_on_failure,
        installed: Installed::Updated,
    })
}

/// A configuration metafield as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    key: String,
    value: String,
    digest: String,
}

fn held_of(
    nodes: &[cart_transforms::CartTransformsCartTransformsNodesMetafieldsNodes],
) -> Vec<Held> {
    nodes
        .iter()
        .map(|m| Held {
            key: m.key.clone(),
            value: m.value.clone(),
            digest: m.compare_digest.clone(),
        })
        .collect()
}

/// The `$app` metafields discount `id` holds; an error when it is not an automatic discount, or a
/// code discount when `codes`.
fn discount_metafields(
    client: &mut AdminClient,
    id: &str,
    codes: bool,
) -> Result<Vec<Held>, InstallError> {
    use crate::admin::ops::discount_metafields::DiscountMetafieldsNodes as N;
    let data = client.execute::<ops::DiscountMetafields>(
        "nodes",
        crate::admin::ops::discount_metafields::Variables {
            ids: vec![id.to_string()],
            namespace: APP_NAMESPACE.to_string(),
        },
        Retry::Always,
    )?;
    // The two kinds answer the same fields as two generated types.
    macro_rules! held {
        ($node:expr) => {
            Ok($node
                .metafields
                .nodes
                .into_iter()
                .map(|m| Held {
                    key: m.key,
                    value: m.value,
                    digest: m.compare_digest,
                })
                .collect())
        };
    }
    match data.nodes.into_iter().flatten().next() {
        Some(N::DiscountAutomaticNode(node)) => held!(node),
        Some(N::DiscountCodeNode(node)) if codes => held!(node),
        _ => Err(InstallError::NoDiscount {
            id: id.to_string(),
            codes,
        }),
    }
}

/// Sets `metafields` on `owner_id`, each compare-and-set against `held` (what the owner held when
/// read), and never sends the write twice: a second copy of a write that landed would meet its
/// own digest (`STALE_OBJECT`) and look refused. After a lost answer or a refusal, what `read`
/// finds decides: the new values there mean the update is done.
fn set_config_metafields(
    client: &mut AdminClient,
    owner_id: &str,
    metafields: &[ConfigMetafield],
    held: &[Held],
    read: impl FnOnce(&mut AdminClient) -> Result<Vec<Held>, InstallError>,
) -> Result<(), InstallError> {
    let inputs = metafields
        .iter()
        .map(|m| metafields_set::MetafieldsSetInput {
            // INVARIANT: every write is compare-and-set; `None` means "must not exist yet".
            compare_digest: held
                .iter()
                .find(|h| h.key == m.key)
                .map(|h| h.digest.clone()),
            key: m.key.clone(),
            namespace: Some(m.namespace.clone()),
            owner_id: owner_id.to_string(),
            type_: Some(m.kind.clone()),
            value: m.value.clone(),
        })
        .collect();
    let answer = client.execute::<ops::MetafieldsSet>(
        "metafieldsSet",
        metafields_set::Variables { metafields: inputs },
        Retry::UnlessAmbiguous,
    );
    let refused = match answer {
        Ok(data) => {
            let Some(payload) = data.metafields_set else {
                return Err(InstallError::Incomplete {
                    operation: "metafieldsSet",
                    what: "a payload",
                });
            };
            if payload.user_errors.is_empty() {
                return Ok(());
            }
            Some(field_errors!(payload.user_errors))
        }
        Err(AdminError::Ambiguous { .. }) => None,
        Err(other) => return Err(other.into()),
    };
    let now = read(client)?;
    let landed = metafields
        .iter()
        .all(|m| now.iter().any(|h| h.key == m.key && h.value == m.value));
    match (landed, refused) {
        (true, _) => Ok(()),
        (false, Some(errors)) => Err(InstallError::Refused {
            operation: "metafieldsSet",
            errors,
        }),
        (false, None) => Err(InstallError::UpdateLost),
    }
}

/// The cart transform running the bundles Function, with its `$app` metafields.
fn find_cart_transform(
    client: &mut AdminClient,
    why: &'static str,
) -> Result<cart_transforms::CartTransformsCartTransformsNodes, InstallError> {
    let data = client.execute::<ops::CartTransforms>(
        "cartTransforms",
        cart_transforms::Variables {
            namespace: APP_NAMESPACE.to_string(),
        },
        Retry::Always,
    )?;
    let functions = data.shopify_functions.nodes;
    let Some(function) = functions.iter().find(|f| f.handle == BUNDLES_FUNCTION) else {
        let found: Vec<&str> = functions.iter().map(|f| f.handle.as_str()).collect();
        return Err(InstallError::NoFunction {
            handle: BUNDLES_FUNCTION.to_string(),
            found: if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            },
        });
    };
    data.cart_transforms
        .nodes
        .into_iter()
        .find(|c| c.function_id == function.id)
        .ok_or_else(|| InstallError::CartTransformNotFound {
            why,
            handle: BUNDLES_FUNCTION.to_string(),
            function_id: function.id.clone(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::demo::SAMPLE_POLICY;

    /// The update sets the policy through `metafieldsSet` only: `discountAutomaticAppUpdate`
    /// carries no `metafields`, whose inputs without an `id` Shopify may take for new metafields
    /// that clash with the ones there. The create carries them.
    #[test]
    fn only_the_create_carries_the_metafields() {
        let settings = DiscountSettings {
            title: None,
            classes: vec![DiscountClass::Product],
            combines_with: None,
            metafields: vec![ConfigMetafield {
                namespace: "$app".into(),
                key: "policy".into(),
                kind: "json".into(),
                value: "{}".into(),
            }],
            starts_at: "2026-11-21T00:00:00Z".into(),
        };
        let update = serde_json::to_value(discount_input!(
            discount_automatic_app_update,
            &settings,
            None,
            None,
            false
        ))
        .unwrap();
        assert!(update.get("metafields").is_none(), "{update}");
        let create = serde_json::to_value(discount_input!(
            discount_automatic_app_create,
            &settings,
            Some(OFFERS_FUNCTION.to_string()),
            Some(settings.starts_at.clone()),
            true
        ))
        .unwrap();
        assert_eq!(
            create.pointer("/metafields/0/key").and_then(Value::as_str),
            Some("policy"),
            "{create}"
        );
    }

    #[test]
    fn every_reward_kind_has_the_class_its_discounts_belong_to() {
        let policy = marginwise_engine::policy::parse(SAMPLE_POLICY)
            .policy
            .unwrap();
        assert_eq!(
            discount_classes(&policy),
            [
                DiscountClass::Product,
                DiscountClass::Order,
                DiscountClass::Shipping
            ]
        );
        let only = |kind: &str| {
            let text = format!(
                r#"{{"version": 1, "currency": "USD", "offers": [{{"id": "a", "reward": {kind}, "message": "m"}}]}}"#
            );
            let policy = marginwise_engine::policy::parse(&text).policy.unwrap();
            assert_eq!(policy.offers.len(), 1, "{kind}");
            discount_classes(&policy)
        };
        for (kind, class) in [
            (
                r#"{"kind": "lines_percent", "bps": 100}"#,
                DiscountClass::Product,
            ),
            (
                r#"{"kind": "lines_fixed", "amount": 100}"#,
                DiscountClass::Product,
            ),
            (
                r#"{"kind": "slot_percent", "bps": 100, "max_slots": 1}"#,
                DiscountClass::Product,
            ),
            (
                r#"{"kind": "order_percent", "bps": 100}"#,
                DiscountClass::Order,
            ),
            (
                r#"{"kind": "order_fixed", "amount": 100}"#,
                DiscountClass::Order,
            ),
            (
                r#"{"kind": "shipping_percent", "bps": 100}"#,
                DiscountClass::Shipping,
            ),
            (r#"{"kind": "free_shipping"}"#, DiscountClass::Shipping),
        ] {
            assert_eq!(only(kind), [class], "{kind}");
        }
    }

    #[test]
    fn combines_with_reads_as_a_phrase() {
        let text = |product, order, shipping| {
            CombinesWith {
                product,
                order,
                shipping,
            }
            .to_string()
        };
        assert_eq!(text(false, false, false), "no other discounts");
        assert_eq!(text(false, true, false), "order discounts");
        assert_eq!(text(true, false, true), "product and shipping discounts");
        assert_eq!(
            text(true, true, true),
            "product, order and shipping discounts"
        );
    }
}
