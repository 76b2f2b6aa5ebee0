//! Small typed reads over Shopify's Wasm API values.

use marginwise_engine::{CustomerFacts, PolicySource, ProfileInput};
use shopify_function::wasm_api::Value;

/// A string value, copied out of the provider; `None` for null, a missing key or another type.
pub(crate) fn text(value: &Value) -> Option<String> {
    value.as_string()
}

/// An integer value. The Wasm API hands every number over as an `f64`; a value with a fraction, or
/// beyond the integers an `f64` holds exactly, reads as `None`.
/// The policy JSON in `node`'s `json_key` metafield, with the compiled form beside it (the
/// `compiled` alias) when there is one. A compiled form without the JSON is ignored: the JSON is
/// the policy, and the compiled form only a faster way to read it.
pub(crate) fn policy_source(node: &Value, json_key: &str) -> PolicySource {
    let value = |key: &str| text(&node.get_obj_prop(key).get_obj_prop("value"));
    match (value(json_key), value("compiled")) {
        (None, _) => PolicySource::Missing,
        (Some(json), None) => PolicySource::Json(json),
        (Some(json), Some(compiled)) => PolicySource::Compiled { json, compiled },
    }
}

pub(crate) fn integer(value: &Value) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let number = value.as_number()?;
    // `as` is exact here: the value is integral and within +-2^53.
    (number.fract() == 0.0 && number.abs() <= EXACT).then_some(number as i64)
}

/// What both Functions read of `cart.buyerIdentity.customer`.
pub(crate) struct Customer {
    /// The customer GID; `None` for an anonymous shopper (or an unreadable id).
    pub id: Option<String>,
    pub profile: ProfileInput,
    pub facts: CustomerFacts,
}

/// Reads `buyerIdentity { customer { id numberOfOrders metafield { value } } }` of `cart`.
pub(crate) fn customer(cart: &Value) -> Customer {
    let customer = cart.get_obj_prop("buyerIdentity").get_obj_prop("customer");
    if !customer.is_obj() {
        return Customer {
            id: None,
            profile: ProfileInput::Anonymous,
            facts: CustomerFacts::default(),
        };
    }
    Customer {
        id: text(&customer.get_obj_prop("id")),
        profile: text(&customer.get_obj_prop("metafield").get_obj_prop("value"))
            .map_or(ProfileInput::Missing, ProfileInput::Text),
        facts: CustomerFacts {
            number_of_orders: integer(&customer.get_obj_prop("numberOfOrders")),
        },
    }
}
