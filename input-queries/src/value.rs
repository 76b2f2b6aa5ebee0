//! Small typed reads over Shopify's Wasm API values.

use marginwise_engine::{CustomerFacts, ProfileInput};
use shopify_function::wasm_api::Value;

/// A string value, copied out of the provider; `None` for null, a missing key or another type.
pub(crate) fn text(value: &Value) -> Option<String> {
    value.as_string()
}

/// An integer value. The Wasm API hands every number over as an `f64`; a value with a fraction, or
/// beyond the integers an `f64` holds exactly, reads as `None`.
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
