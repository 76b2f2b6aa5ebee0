//! The app's Shopify Functions and the objects that run them: automatic app discounts
//! (`discountAutomaticAppCreate`, `discountAutomaticAppUpdate`) and cart transforms
//! (`cartTransformCreate`, the `cartTransforms` query), with `shopifyFunctions` listing the
//! functions a handle names.
//!
//! Sources (Admin GraphQL 2026-04 schema): the mutations' arguments, `DiscountAutomaticAppInput`
//! (every field optional; `metafields` default `[]`), `DiscountCombinesWithInput` (each boolean
//! defaults to false, so an update that names one class turns the others off),
//! `CartTransformCreateUserErrorCode` (`FUNCTION_NOT_FOUND`, `FUNCTION_ALREADY_REGISTERED`: "a
//! cart transform function already exists for the provided function", `FUNCTION_DOES_NOT_IMPLEMENT`,
//! `MISSING_FUNCTION_IDENTIFIER`, `MULTIPLE_FUNCTION_IDENTIFIERS`, `INVALID_METAFIELDS`),
//! `DiscountErrorCode`, and `CartTransform` (which names its function by id only). The
//! `metafields` a mutation carries are validated and stored exactly as `metafieldsSet` stores
//! them, owned by the discount node or the cart transform, so they read back through `node` and
//! `nodes` and a later `metafieldsSet` on the owner's id changes them.
//!
//! What it leaves out: code discounts, `context`, `tags`, usage limits, deleting or deactivating,
//! and the 25-active-discounts limit. Messages are worded here (Shopify documents the codes, not
//! the texts).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::data::Kind;
use crate::metafields::{CompareDigest, MetafieldRecord, SetInput, UserError};
use crate::state::{Shared, lock};

/// Which Function API a function implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionApi {
    /// The Discount Function API (run by automatic and code app discounts).
    Discount,
    /// The Cart Transform Function API (run by a cart transform).
    CartTransform,
}

impl FunctionApi {
    /// `ShopifyFunction.apiType` as this stand-in reports it.
    pub fn api_type(self) -> &'static str {
        match self {
            FunctionApi::Discount => "discount",
            FunctionApi::CartTransform => "cart_transform",
        }
    }

    pub fn parse(text: &str) -> Option<FunctionApi> {
        match text {
            "discount" => Some(FunctionApi::Discount),
            "cart_transform" => Some(FunctionApi::CartTransform),
            _ => None,
        }
    }
}

/// One function of the app the stand-in plays (an extension of `type = "function"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFunction {
    pub handle: String,
    pub api: FunctionApi,
    /// `ShopifyFunction.id`: a UUID in Shopify, derived from the position here.
    pub id: String,
}

impl AppFunction {
    /// A function whose id is derived from `number`.
    pub fn new(handle: &str, api: FunctionApi, number: u64) -> AppFunction {
        AppFunction {
            handle: handle.to_string(),
            api,
            id: format!("01970000-0000-7000-8000-{number:012}"),
        }
    }

    /// marginwise's functions: `offers` (discount) and `bundles` (cart transform), the handles
    /// of extensions/offers and extensions/bundles.
    pub fn marginwise() -> Vec<AppFunction> {
        vec![
            AppFunction::new("offers", FunctionApi::Discount, 1),
            AppFunction::new("bundles", FunctionApi::CartTransform, 2),
        ]
    }
}

/// `combinesWith` of a discount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CombinesWith {
    pub product_discounts: bool,
    pub order_discounts: bool,
    pub shipping_discounts: bool,
}

/// An automatic app discount, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscountRecord {
    /// `gid://shopify/DiscountAutomaticNode/<n>`: the `discountId`, and the metafields' owner.
    pub id: String,
    pub function_id: String,
    pub function_handle: String,
    pub title: String,
    pub discount_classes: Vec<String>,
    pub combines_with: CombinesWith,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub applies_on_one_time_purchase: bool,
    pub applies_on_subscription: bool,
    pub recurring_cycle_limit: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A cart transform, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CartTransformRecord {
    /// `gid://shopify/CartTransform/<n>`.
    pub id: String,
    pub function_id: String,
    pub function_handle: String,
    pub block_on_failure: bool,
}

/// A code discount running one of the app's discount Functions, as a merchant makes one in the
/// admin (with the app's settings page): the stand-in keeps only what marginwise reads of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeDiscountRecord {
    /// `gid://shopify/DiscountCodeNode/<n>`: the metafields' owner.
    pub id: String,
    pub function_handle: String,
    pub title: String,
    pub code: String,
}

/// The discounts and cart transforms created so far.
#[derive(Debug)]
pub struct FunctionOwners {
    pub discounts: Vec<DiscountRecord>,
    pub code_discounts: Vec<CodeDiscountRecord>,
    pub cart_transforms: Vec<CartTransformRecord>,
    next_id: u64,
}

impl Default for FunctionOwners {
    fn default() -> FunctionOwners {
        FunctionOwners {
            discounts: Vec::new(),
            code_discounts: Vec::new(),
            cart_transforms: Vec::new(),
            next_id: 1_300_000_000,
        }
    }
}

impl FunctionOwners {
    /// The GIDs that may own metafields here.
    pub fn owner_ids(&self) -> HashSet<String> {
        self.discounts
            .iter()
            .map(|d| d.id.clone())
            .chain(self.code_discounts.iter().map(|c| c.id.clone()))
            .chain(self.cart_transforms.iter().map(|c| c.id.clone()))
            .collect()
    }

    /// The next GID of `type_name`; the counter moves on only when the object is kept.
    fn peek_gid(&self, type_name: &str) -> String {
        format!("gid://shopify/{type_name}/{}", self.next_id + 1)
    }
}

/// A top-level GraphQL error about the arguments (nothing ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    pub message: String,
    pub code: &'static str,
}

impl ArgumentError {
    fn invalid(argument: &str, field: &str, problem: impl std::fmt::Display) -> ArgumentError {
        ArgumentError {
            message: format!(
                "Argument '{argument}' on Field '{field}' has an invalid value: {problem}"
            ),
            code: "argumentLiteralsIncompatible",
        }
    }

    fn missing(field: &str, arguments: &str) -> ArgumentError {
        ArgumentError {
            message: format!("Field '{field}' is missing required arguments: {arguments}"),
            code: "missingRequiredArguments",
        }
    }

    fn not_served(what: &str) -> ArgumentError {
        ArgumentError {
            message: format!("{what} is not served by this local stand-in (it is not Shopify)"),
            code: "argumentInvalid",
        }
    }
}

/// A user error of a discount or cart transform mutation.
fn user_error(type_name: &str, field: &[&str], message: &str, code: &str) -> Value {
    json!({
        "__typename": type_name,
        "field": field,
        "message": message,
        "code": code,
    })
}

const DISCOUNT_USER_ERROR: &str = "DiscountUserError";
const CART_TRANSFORM_USER_ERROR: &str = "CartTransformCreateUserError";

fn discount_payload(type_name: &str, discount: Option<Value>, errors: Vec<Value>) -> Value {
    json!({
        "__typename": type_name,
        "automaticAppDiscount": discount,
        "userErrors": errors,
    })
}

fn cart_transform_payload(cart_transform: Option<Value>, errors: Vec<Value>) -> Value {
    json!({
        "__typename": "CartTransformCreatePayload",
        "cartTransform": cart_transform,
        "userErrors": errors,
    })
}

/// Parses a `DateTime` input as Shopify accepts it (ISO 8601 with an offset) and renders it in
/// UTC as Shopify answers it.
fn date_time(text: &str) -> Option<String> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.to_string())
}

/// `ACTIVE`, `SCHEDULED` or `EXPIRED` at `now`.
fn status(record: &DiscountRecord, now: &str) -> &'static str {
    let at = |text: &str| text.parse::<jiff::Timestamp>().ok();
    let now = at(now);
    if record
        .ends_at
        .as_deref()
        .and_then(at)
        .is_some_and(|ends| now.is_some_and(|now| ends <= now))
    {
        "EXPIRED"
    } else if at(&record.starts_at).is_some_and(|starts| now.is_some_and(|now| starts > now)) {
        "SCHEDULED"
    } else {
        "ACTIVE"
    }
}

/// A discount as `DiscountAutomaticApp` answers it.
pub fn discount_json(record: &DiscountRecord, now: &str) -> Value {
    json!({
        "__typename": "DiscountAutomaticApp",
        "discountId": record.id,
        "title": record.title,
        "discountClasses": record.discount_classes,
        "combinesWith": {
            "__typename": "DiscountCombinesWith",
            "productDiscounts": record.combines_with.product_discounts,
            "orderDiscounts": record.combines_with.order_discounts,
            "shippingDiscounts": record.combines_with.shipping_discounts,
            "productDiscountsWithTagsOnSameCartLine": null,
        },
        "startsAt": record.starts_at,
        "endsAt": record.ends_at,
        "status": status(record, now),
        "appliesOnOneTimePurchase": record.applies_on_one_time_purchase,
        "appliesOnSubscription": record.applies_on_subscription,
        "recurringCycleLimit": record.recurring_cycle_limit,
        "asyncUsageCount": 0,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "appDiscountType": {
            "__typename": "AppDiscountType",
            "functionId": record.function_id,
        },
    })
}

/// A discount node as `node(id:)` answers it (`metafield`/`metafields` are resolved by the
/// caller from the metafield store).
fn discount_node_json(record: &DiscountRecord, now: &str) -> Value {
    json!({
        "__typename": "DiscountAutomaticNode",
        "id": record.id,
        "automaticDiscount": discount_json(record, now),
    })
}

/// A cart transform as `CartTransform` answers it (`metafield`/`metafields` resolved by the
/// caller).
pub fn cart_transform_json(record: &CartTransformRecord) -> Value {
    json!({
        "__typename": "CartTransform",
        "id": record.id,
        "functionId": record.function_id,
        "blockOnFailure": record.block_on_failure,
    })
}

fn function_json(function: &AppFunction) -> Value {
    json!({
        "__typename": "ShopifyFunction",
        "id": function.id,
        "handle": function.handle,
        "title": function.handle,
        "apiType": function.api.api_type(),
        "apiVersion": "2026-04",
        "description": null,
        "inputQuery": null,
        "useCreationUi": true,
    })
}

/// The shape of each mutation's payload (one element in every list), for checking a selection
/// before anything runs.
pub fn payload_template(name: &str) -> Option<Value> {
    let discount = DiscountRecord {
        id: String::new(),
        function_id: String::new(),
        function_handle: String::new(),
        title: String::new(),
        discount_classes: vec![String::new()],
        combines_with: CombinesWith::default(),
        starts_at: String::new(),
        ends_at: None,
        applies_on_one_time_purchase: true,
        applies_on_subscription: true,
        recurring_cycle_limit: 1,
        created_at: String::new(),
        updated_at: String::new(),
    };
    let discount_error = json!({"__typename": DISCOUNT_USER_ERROR, "field": [], "message": "", "code": null, "extraInfo": null});
    Some(match name {
        "discountAutomaticAppCreate" => discount_payload(
            "DiscountAutomaticAppCreatePayload",
            Some(discount_json(&discount, "")),
            vec![discount_error],
        ),
        "discountAutomaticAppUpdate" => discount_payload(
            "DiscountAutomaticAppUpdatePayload",
            Some(discount_json(&discount, "")),
            vec![discount_error],
        ),
        "cartTransformCreate" => cart_transform_payload(
            Some(cart_transform_json(&CartTransformRecord {
                id: String::new(),
                function_id: String::new(),
                function_handle: String::new(),
                block_on_failure: false,
            })),
            vec![user_error(CART_TRANSFORM_USER_ERROR, &[], "", "")],
        ),
        _ => return None,
    })
}

/// The discount node or cart transform `gid` names, as `node(id:)` answers it.
pub fn owner_json(shared: &Shared, gid: &str, now: &str) -> Option<Value> {
    let owners = lock(&shared.function_owners);
    if let Some(discount) = owners.discounts.iter().find(|d| d.id == gid) {
        return Some(discount_node_json(discount, now));
    }
    if let Some(discount) = owners.code_discounts.iter().find(|d| d.id == gid) {
        return Some(json!({
            "__typename": "DiscountCodeNode",
            "id": discount.id,
            "codeDiscount": {
                "__typename": "DiscountCodeApp",
                "title": discount.title,
            },
        }));
    }
    owners
        .cart_transforms
        .iter()
        .find(|c| c.id == gid)
        .map(cart_transform_json)
}

/// Whether `type_name` is one of the metafield owners kept here.
pub fn is_owner_type(type_name: &str) -> bool {
    matches!(
        type_name,
        "DiscountAutomaticNode" | "DiscountCodeNode" | "CartTransform"
    )
}

/// `cartTransforms`: the app's cart transforms, oldest first.
pub fn cart_transforms(shared: &Shared) -> Vec<Value> {
    lock(&shared.function_owners)
        .cart_transforms
        .iter()
        .map(cart_transform_json)
        .collect()
}

/// `shopifyFunctions(apiType:)`: the app's functions, filtered by API type when given.
pub fn shopify_functions(shared: &Shared, api_type: Option<&str>) -> Vec<Value> {
    shared
        .functions
        .iter()
        .filter(|f| api_type.is_none_or(|wanted| f.api.api_type() == wanted))
        .map(function_json)
        .collect()
}

/// Which function an input names, or the user error (`field` is the path of `functionHandle`;
/// `functionId` is the deprecated identifier the API still accepts).
enum FunctionLookup<'s> {
    Found(&'s AppFunction),
    Missing,
    Both,
    NotFound(String),
}

fn find_function<'s>(
    shared: &'s Shared,
    handle: Option<&str>,
    id: Option<&str>,
) -> FunctionLookup<'s> {
    match (handle, id) {
        (None, None) => FunctionLookup::Missing,
        (Some(_), Some(_)) => FunctionLookup::Both,
        (Some(handle), None) => match shared.functions.iter().find(|f| f.handle == handle) {
            Some(function) => FunctionLookup::Found(function),
            None => {
                FunctionLookup::NotFound(format!("Function with handle \"{handle}\" not found."))
            }
        },
        (None, Some(id)) => match shared.functions.iter().find(|f| f.id == id) {
            Some(function) => FunctionLookup::Found(function),
            None => FunctionLookup::NotFound(format!("Function {id} not found.")),
        },
    }
}

/// An optional `String` input field: absent and `null` are `None`.
fn optional_string(
    map: &Map<String, Value>,
    name: &str,
    argument: &str,
    field: &str,
) -> Result<Option<String>, ArgumentError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ArgumentError::invalid(
            argument,
            field,
            format!("{name} Could not coerce value {other} to String"),
        )),
    }
}

fn optional_bool(
    map: &Map<String, Value>,
    name: &str,
    argument: &str,
    field: &str,
) -> Result<Option<bool>, ArgumentError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(ArgumentError::invalid(
            argument,
            field,
            format!("{name} Could not coerce value {other} to Boolean"),
        )),
    }
}

/// Coerces `MetafieldInput`s for `owner_id`. A missing key or value is a user error (returned
/// separately, with the index), not an argument error: every field of the type is optional.
fn metafield_inputs(
    value: Option<Value>,
    owner_id: &str,
    argument: &str,
    field: &str,
) -> Result<(Vec<SetInput>, Vec<UserError>), ArgumentError> {
    let items = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(one @ Value::Object(_)) => vec![one],
        Some(other) => {
            return Err(ArgumentError::invalid(
                argument,
                field,
                format!("metafields Could not coerce value {other} to MetafieldInput"),
            ));
        }
    };
    if items.len() > crate::exec::INPUT_ARRAY_LIMIT {
        return Err(ArgumentError {
            message: format!(
                "The input array size of {} is greater than the maximum allowed of {}.",
                items.len(),
                crate::exec::INPUT_ARRAY_LIMIT
            ),
            code: "MAX_INPUT_SIZE_EXCEEDED",
        });
    }
    let mut inputs = Vec::with_capacity(items.len());
    let mut blank = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(ArgumentError::invalid(
                argument,
                field,
                format!("metafields.{index} Expected an input object"),
            ));
        };
        for key in map.keys() {
            match key.as_str() {
                "key" | "namespace" | "type" | "value" => {}
                "id" => {
                    return Err(ArgumentError::not_served(
                        "A metafield `id` in MetafieldInput (name it by namespace and key)",
                    ));
                }
                other => {
                    return Err(ArgumentError::invalid(
                        argument,
                        field,
                        format!(
                            "metafields.{index}.{other} Field is not defined on MetafieldInput"
                        ),
                    ));
                }
            }
        }
        let text = |name: &str| optional_string(map, name, argument, field);
        let (key, value) = (text("key")?, text("value")?);
        for (name, message, present) in [
            ("key", "Key can't be blank.", key.is_some()),
            ("value", "Value can't be blank.", value.is_some()),
        ] {
            if !present {
                blank.push(UserError {
                    field: vec![
                        "metafields".to_string(),
                        index.to_string(),
                        name.to_string(),
                    ],
                    message: message.to_string(),
                    code: Some("BLANK"),
                    element_index: Some(index),
                });
            }
        }
        inputs.push(SetInput {
            owner_id: owner_id.to_string(),
            namespace: text("namespace")?,
            key: key.unwrap_or_default(),
            kind: text("type")?,
            value: value.unwrap_or_default(),
            compare_digest: CompareDigest::Absent,
        });
    }
    Ok((inputs, blank))
}

/// Writes `inputs` for a new or existing owner `owner_id` of `kind`: all or nothing, as
/// `metafieldsSet` does. `Err` holds the user errors (paths start at `metafields`).
fn write_metafields(
    shared: &Shared,
    owner_kind: Kind,
    owner_id: &str,
    inputs: &[SetInput],
    now: &str,
) -> Result<Vec<MetafieldRecord>, Vec<UserError>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let exists = |kind: Kind, gid: &str| kind == owner_kind && gid == owner_id;
    let written = lock(&shared.metafields).set(&exists, shared.app_id, inputs, now)?;
    let mut stats = lock(&shared.stats);
    stats.writes_applied += written.len() as u64;
    stats.duplicate_writes += written.iter().filter(|(_, a)| a.duplicate).count() as u64;
    Ok(written.into_iter().map(|(record, _)| record).collect())
}

/// Metafield user errors of a discount mutation: paths under `automaticAppDiscount`, codes from
/// `DiscountErrorCode` (which has no type or value codes: those become `INVALID`).
fn discount_metafield_errors(errors: Vec<UserError>) -> Vec<Value> {
    errors
        .into_iter()
        .map(|error| {
            let mut field = vec!["automaticAppDiscount".to_string()];
            field.extend(error.field);
            let code = error
                .code
                .filter(|code| {
                    matches!(
                        *code,
                        "BLANK" | "TOO_LONG" | "TOO_SHORT" | "PRESENT" | "TAKEN"
                    )
                })
                .unwrap_or("INVALID");
            json!({
                "__typename": DISCOUNT_USER_ERROR,
                "field": field,
                "message": error.message,
                "code": code,
            })
        })
        .collect()
}

/// Fields of `DiscountAutomaticAppInput` the stand-in reads.
const DISCOUNT_INPUT_FIELDS: [&str; 11] = [
    "appliesOnOneTimePurchase",
    "appliesOnSubscription",
    "combinesWith",
    "discountClasses",
    "endsAt",
    "functionHandle",
    "functionId",
    "metafields",
    "recurringCycleLimit",
    "startsAt",
    "title",
];

/// A coerced `DiscountAutomaticAppInput`: `None` where the input leaves a field out.
struct DiscountInput {
    function_handle: Option<String>,
    function_id: Option<String>,
    title: Option<String>,
    discount_classes: Option<Vec<String>>,
    combines_with: Option<CombinesWith>,
    starts_at: Option<String>,
    ends_at: Option<Option<String>>,
    applies_on_one_time_purchase: Option<bool>,
    applies_on_subscription: Option<bool>,
    recurring_cycle_limit: Option<i64>,
    metafields: Option<Value>,
}

fn discount_input(value: Option<Value>, field: &str) -> Result<DiscountInput, ArgumentError> {
    const ARGUMENT: &str = "automaticAppDiscount";
    let map = match value {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => return Err(ArgumentError::missing(field, ARGUMENT)),
        Some(other) => {
            return Err(ArgumentError::invalid(
                ARGUMENT,
                field,
                format!("Could not coerce value {other} to DiscountAutomaticAppInput"),
            ));
        }
    };
    for key in map.keys() {
        if matches!(key.as_str(), "context" | "tags") {
            return Err(ArgumentError::not_served(&format!(
                "DiscountAutomaticAppInput.{key}"
            )));
        }
        if !DISCOUNT_INPUT_FIELDS.contains(&key.as_str()) {
            return Err(ArgumentError::invalid(
                ARGUMENT,
                field,
                format!("{key} Field is not defined on DiscountAutomaticAppInput"),
            ));
        }
    }
    let text = |name: &str| optional_string(&map, name, ARGUMENT, field);
    let flag = |name: &str| optional_bool(&map, name, ARGUMENT, field);
    let date = |name: &str| -> Result<Option<String>, ArgumentError> {
        match text(name)? {
            None => Ok(None),
            Some(given) => date_time(&given).map(Some).ok_or_else(|| {
                ArgumentError::invalid(
                    ARGUMENT,
                    field,
                    format!("{name} Could not coerce value \"{given}\" to DateTime"),
                )
            }),
        }
    };
    let discount_classes = match map.get("discountClasses") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut classes = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(class @ ("PRODUCT" | "ORDER" | "SHIPPING")) => {
                        if !classes.iter().any(|c| c == class) {
                            classes.push(class.to_string());
                        }
                    }
                    _ => {
                        return Err(ArgumentError::invalid(
                            ARGUMENT,
                            field,
                            format!(
                                "discountClasses Expected \"{item}\" to be one of: PRODUCT, ORDER, SHIPPING"
                            ),
                        ));
                    }
                }
            }
            Some(classes)
        }
        Some(other) => {
            return Err(ArgumentError::invalid(
                ARGUMENT,
                field,
                format!("discountClasses Could not coerce value {other} to [DiscountClass!]"),
            ));
        }
    };
    let combines_with = match map.get("combinesWith") {
        None | Some(Value::Null) => None,
        Some(Value::Object(inner)) => {
            for key in inner.keys() {
                match key.as_str() {
                    "productDiscounts" | "orderDiscounts" | "shippingDiscounts" => {}
                    "productDiscountsWithTagsOnSameCartLine" => {
                        return Err(ArgumentError::not_served(
                            "DiscountCombinesWithInput.productDiscountsWithTagsOnSameCartLine",
                        ));
                    }
                    other => {
                        return Err(ArgumentError::invalid(
                            ARGUMENT,
                            field,
                            format!(
                                "combinesWith.{other} Field is not defined on DiscountCombinesWithInput"
                            ),
                        ));
                    }
                }
            }
            let flag = |name: &str| {
                optional_bool(inner, name, ARGUMENT, field).map(|f| f.unwrap_or(false))
            };
            Some(CombinesWith {
                product_discounts: flag("productDiscounts")?,
                order_discounts: flag("orderDiscounts")?,
                shipping_discounts: flag("shippingDiscounts")?,
            })
        }
        Some(other) => {
            return Err(ArgumentError::invalid(
                ARGUMENT,
                field,
                format!("combinesWith Could not coerce value {other} to DiscountCombinesWithInput"),
            ));
        }
    };
    let recurring_cycle_limit = match map.get("recurringCycleLimit") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_i64().ok_or_else(|| {
            ArgumentError::invalid(
                ARGUMENT,
                field,
                format!("recurringCycleLimit Could not coerce value {value} to Int"),
            )
        })?),
    };
    Ok(DiscountInput {
        function_handle: text("functionHandle")?,
        function_id: text("functionId")?,
        title: text("title")?,
        discount_classes,
        combines_with,
        starts_at: date("startsAt")?,
        ends_at: if map.contains_key("endsAt") {
            Some(date("endsAt")?)
        } else {
            None
        },
        applies_on_one_time_purchase: flag("appliesOnOneTimePurchase")?,
        applies_on_subscription: flag("appliesOnSubscription")?,
        recurring_cycle_limit,
        metafields: map.get("metafields").cloned(),
    })
}

/// A function-identifier user error of a discount mutation, if any.
fn discount_function_error(lookup: &FunctionLookup<'_>) -> Option<Value> {
    let field = ["automaticAppDiscount", "functionHandle"];
    match lookup {
        FunctionLookup::Found(function) if function.api != FunctionApi::Discount => {
            Some(user_error(
                DISCOUNT_USER_ERROR,
                &field,
                &format!(
                    "Function \"{}\" does not implement a discount function API.",
                    function.handle
                ),
                "INVALID",
            ))
        }
        FunctionLookup::Found(_) => None,
        FunctionLookup::Missing => Some(user_error(
            DISCOUNT_USER_ERROR,
            &field,
            "Either function ID or function handle must be provided.",
            "MISSING_FUNCTION_IDENTIFIER",
        )),
        FunctionLookup::Both => Some(user_error(
            DISCOUNT_USER_ERROR,
            &field,
            "Only one of function ID or function handle is allowed.",
            "MULTIPLE_FUNCTION_IDENTIFIERS",
        )),
        FunctionLookup::NotFound(message) => {
            Some(user_error(DISCOUNT_USER_ERROR, &field, message, "INVALID"))
        }
    }
}

/// A code discount of the app's Function `function_handle`, made as a merchant makes one in the
/// admin, with `metafields` set on it (namespace `$app` when none is given). Its GID.
pub fn add_code_discount(
    shared: &Shared,
    function_handle: &str,
    title: &str,
    code: &str,
    metafields: &[SetInput],
) -> Result<String, Vec<UserError>> {
    let mut owners = lock(&shared.function_owners);
    let id = owners.peek_gid("DiscountCodeNode");
    let metafields: Vec<SetInput> = metafields
        .iter()
        .map(|m| SetInput {
            owner_id: id.clone(),
            ..m.clone()
        })
        .collect();
    let now = crate::state::now_rfc3339();
    write_metafields(shared, Kind::DiscountCodeNode, &id, &metafields, &now)?;
    owners.next_id += 1;
    owners.code_discounts.push(CodeDiscountRecord {
        id: id.clone(),
        function_handle: function_handle.to_string(),
        title: title.to_string(),
        code: code.to_string(),
    });
    Ok(id)
}

/// `discountAutomaticAppCreate(automaticAppDiscount:)`.
pub fn discount_create(
    shared: &Shared,
    argument: Option<Value>,
    now: &str,
) -> Result<Value, ArgumentError> {
    const FIELD: &str = "discountAutomaticAppCreate";
    const PAYLOAD: &str = "DiscountAutomaticAppCreatePayload";
    let input = discount_input(argument, FIELD)?;
    let mut owners = lock(&shared.function_owners);
    let id = owners.peek_gid("DiscountAutomaticNode");
    let (metafields, blank) =
        metafield_inputs(input.metafields.clone(), &id, "automaticAppDiscount", FIELD)?;
    let lookup = find_function(
        shared,
        input.function_handle.as_deref(),
        input.function_id.as_deref(),
    );
    let mut errors: Vec<Value> = discount_function_error(&lookup).into_iter().collect();
    let title = input.title.clone().unwrap_or_default();
    if title.trim().is_empty() {
        errors.push(user_error(
            DISCOUNT_USER_ERROR,
            &["automaticAppDiscount", "title"],
            "Title can't be blank",
            "BLANK",
        ));
    }
    errors.extend(discount_metafield_errors(blank));
    let FunctionLookup::Found(function) = lookup else {
        return Ok(discount_payload(PAYLOAD, None, errors));
    };
    if !errors.is_empty() {
        return Ok(discount_payload(PAYLOAD, None, errors));
    }
    let starts_at = input.starts_at.clone().unwrap_or_else(|| now.to_string());
    let record = DiscountRecord {
        id: id.clone(),
        function_id: function.id.clone(),
        function_handle: function.handle.clone(),
        title,
        discount_classes: input.discount_classes.clone().unwrap_or_default(),
        combines_with: input.combines_with.unwrap_or_default(),
        ends_at: input.ends_at.clone().flatten(),
        starts_at,
        applies_on_one_time_purchase: input.applies_on_one_time_purchase.unwrap_or(true),
        applies_on_subscription: input.applies_on_subscription.unwrap_or(true),
        recurring_cycle_limit: input.recurring_cycle_limit.unwrap_or(1),
        created_at: now.to_string(),
        updated_at: now.to_string(),
    };
    if let Err(errors) =
        write_metafields(shared, Kind::DiscountAutomaticNode, &id, &metafields, now)
    {
        return Ok(discount_payload(
            PAYLOAD,
            None,
            discount_metafield_errors(errors),
        ));
    }
    owners.next_id += 1;
    let answer = discount_json(&record, now);
    owners.discounts.push(record);
    Ok(discount_payload(PAYLOAD, Some(answer), Vec::new()))
}

/// `discountAutomaticAppUpdate(id:, automaticAppDiscount:)`: changes only what the input names
/// (`combinesWith` as a whole, its booleans defaulting to false); metafields are set by namespace
/// and key, others stay.
pub fn discount_update(
    shared: &Shared,
    id: Option<Value>,
    argument: Option<Value>,
    now: &str,
) -> Result<Value, ArgumentError> {
    const FIELD: &str = "discountAutomaticAppUpdate";
    const PAYLOAD: &str = "DiscountAutomaticAppUpdatePayload";
    let id = match id {
        Some(Value::String(id)) => id,
        _ => return Err(ArgumentError::missing(FIELD, "id")),
    };
    let input = discount_input(argument, FIELD)?;
    let mut owners = lock(&shared.function_owners);
    let Some(index) = owners.discounts.iter().position(|d| d.id == id) else {
        return Ok(discount_payload(
            PAYLOAD,
            None,
            vec![user_error(
                DISCOUNT_USER_ERROR,
                &["id"],
                "Discount does not exist",
                "INVALID",
            )],
        ));
    };
    let (metafields, blank) =
        metafield_inputs(input.metafields.clone(), &id, "automaticAppDiscount", FIELD)?;
    let mut errors = discount_metafield_errors(blank);
    let Some(record) = owners.discounts.get(index) else {
        return Ok(discount_payload(PAYLOAD, None, errors));
    };
    if input.function_handle.is_some() || input.function_id.is_some() {
        let lookup = find_function(
            shared,
            input.function_handle.as_deref(),
            input.function_id.as_deref(),
        );
        match lookup {
            FunctionLookup::Found(function) if function.id != record.function_id => {
                errors.push(user_error(
                    DISCOUNT_USER_ERROR,
                    &["automaticAppDiscount", "functionHandle"],
                    "The function of a discount cannot be changed.",
                    "INVALID",
                ));
            }
            other => errors.extend(discount_function_error(&other)),
        }
    }
    if input.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        errors.push(user_error(
            DISCOUNT_USER_ERROR,
            &["automaticAppDiscount", "title"],
            "Title can't be blank",
            "BLANK",
        ));
    }
    if !errors.is_empty() {
        return Ok(discount_payload(PAYLOAD, None, errors));
    }
    if let Err(errors) =
        write_metafields(shared, Kind::DiscountAutomaticNode, &id, &metafields, now)
    {
        return Ok(discount_payload(
            PAYLOAD,
            None,
            discount_metafield_errors(errors),
        ));
    }
    let Some(record) = owners.discounts.get_mut(index) else {
        return Ok(discount_payload(PAYLOAD, None, Vec::new()));
    };
    if let Some(title) = input.title {
        record.title = title;
    }
    if let Some(classes) = input.discount_classes {
        record.discount_classes = classes;
    }
    if let Some(combines_with) = input.combines_with {
        record.combines_with = combines_with;
    }
    if let Some(starts_at) = input.starts_at {
        record.starts_at = starts_at;
    }
    if let Some(ends_at) = input.ends_at {
        record.ends_at = ends_at;
    }
    if let Some(flag) = input.applies_on_one_time_purchase {
        record.applies_on_one_time_purchase = flag;
    }
    if let Some(flag) = input.applies_on_subscription {
        record.applies_on_subscription = flag;
    }
    if let Some(limit) = input.recurring_cycle_limit {
        record.recurring_cycle_limit = limit;
    }
    record.updated_at = now.to_string();
    Ok(discount_payload(
        PAYLOAD,
        Some(discount_json(record, now)),
        Vec::new(),
    ))
}

/// The arguments of `cartTransformCreate`, as given.
pub struct CartTransformArguments {
    pub function_handle: Option<Value>,
    pub function_id: Option<Value>,
    pub block_on_failure: Option<Value>,
    pub metafields: Option<Value>,
}

/// `cartTransformCreate(functionHandle:, blockOnFailure:, metafields:)`: one cart transform per
/// function; a second one is `FUNCTION_ALREADY_REGISTERED`.
pub fn cart_transform_create(
    shared: &Shared,
    arguments: CartTransformArguments,
    now: &str,
) -> Result<Value, ArgumentError> {
    const FIELD: &str = "cartTransformCreate";
    let text = |value: Option<Value>, name: &str| match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(ArgumentError::invalid(
            name,
            FIELD,
            format!("Could not coerce value {other} to String"),
        )),
    };
    let function_handle = text(arguments.function_handle, "functionHandle")?;
    let function_id = text(arguments.function_id, "functionId")?;
    let block_on_failure = match arguments.block_on_failure {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(other) => {
            return Err(ArgumentError::invalid(
                "blockOnFailure",
                FIELD,
                format!("Could not coerce value {other} to Boolean"),
            ));
        }
    };
    let mut owners = lock(&shared.function_owners);
    let id = owners.peek_gid("CartTransform");
    let (metafields, blank) = metafield_inputs(arguments.metafields, &id, "metafields", FIELD)?;
    let error = |field: &str, message: &str, code: &str| {
        Ok(cart_transform_payload(
            None,
            vec![user_error(
                CART_TRANSFORM_USER_ERROR,
                &[field],
                message,
                code,
            )],
        ))
    };
    let function = match find_function(shared, function_handle.as_deref(), function_id.as_deref()) {
        FunctionLookup::Found(function) => function,
        FunctionLookup::Missing => {
            return error(
                "functionHandle",
                "Either function_id or function_handle must be provided.",
                "MISSING_FUNCTION_IDENTIFIER",
            );
        }
        FunctionLookup::Both => {
            return error(
                "functionHandle",
                "Only one of function_id or function_handle can be provided, not both.",
                "MULTIPLE_FUNCTION_IDENTIFIERS",
            );
        }
        FunctionLookup::NotFound(message) => {
            return error("functionHandle", &message, "FUNCTION_NOT_FOUND");
        }
    };
    if function.api != FunctionApi::CartTransform {
        return error(
            "functionHandle",
            &format!(
                "Function \"{}\" does not implement the cart transform function API.",
                function.handle
            ),
            "FUNCTION_DOES_NOT_IMPLEMENT",
        );
    }
    if owners
        .cart_transforms
        .iter()
        .any(|c| c.function_id == function.id)
    {
        return error(
            "functionHandle",
            "A cart transform already exists for this function.",
            "FUNCTION_ALREADY_REGISTERED",
        );
    }
    let metafield_errors = |errors: Vec<UserError>| {
        errors
            .into_iter()
            .map(|error| {
                json!({
                    "__typename": CART_TRANSFORM_USER_ERROR,
                    "field": error.field,
                    "message": error.message,
                    "code": "INVALID_METAFIELDS",
                })
            })
            .collect::<Vec<_>>()
    };
    if !blank.is_empty() {
        return Ok(cart_transform_payload(None, metafield_errors(blank)));
    }
    if let Err(errors) = write_metafields(shared, Kind::CartTransform, &id, &metafields, now) {
        return Ok(cart_transform_payload(None, metafield_errors(errors)));
    }
    owners.next_id += 1;
    let record = CartTransformRecord {
        id,
        function_id: function.id.clone(),
        function_handle: function.handle.clone(),
        block_on_failure,
    };
    let answer = cart_transform_json(&record);
    owners.cart_transforms.push(record);
    Ok(cart_transform_payload(Some(answer), Vec::new()))
}
