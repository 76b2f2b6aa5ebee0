//! The cart as the engine computes with it: every price, cost and metafield parsed once into
//! presentment minor units, with a reason for every line that could not be read.

use crate::arith::{self, Checked};
use crate::decision::{Reason, ReasonCode};
use crate::detail::Detail;
use crate::format::VariantData;
use crate::money::{Currency, Money, Rate, parse_decimal_minor};
use crate::policy::UnknownCost;
use crate::request::{DeliveryGroup, Line, VariantInput};

/// A cart line whose price and quantity could be read.
#[derive(Debug, Clone)]
pub(crate) struct CartLine<'r> {
    /// Position in the request's line list (unreadable lines included).
    pub position: usize,
    pub id: &'r str,
    pub quantity: i64,
    /// Unit price, presentment minor units.
    pub unit_price: Money,
    /// `unit_price * quantity`.
    pub price: Money,
    /// Unit cost converted to presentment minor units; `None` when unknown.
    pub unit_cost: Option<Money>,
    /// Product id, complements and bundle flag; `None` when the variant data is missing or
    /// malformed.
    pub data: Option<VariantData>,
}

/// A line the offers may discount, with the cost the guard uses for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Discountable {
    /// Index into [`Cart::lines`].
    pub index: usize,
    /// Unit cost for the guard: the known cost, or 0 under `unknown_cost: allow`.
    pub unit_cost: Money,
    /// `unit_cost * quantity`.
    pub cost: Money,
}

/// One delivery group whose shipping cost is known.
#[derive(Debug, Clone)]
pub(crate) struct Shipping<'r> {
    pub group_id: &'r str,
    pub cost: Money,
}

#[derive(Debug, Clone)]
pub(crate) struct Cart<'r> {
    /// Readable lines, in cart order.
    pub lines: Vec<CartLine<'r>>,
    /// Position and id of every line whose price or quantity could not be read: excluded from
    /// everything.
    pub unreadable_lines: Vec<(usize, &'r str)>,
    /// Sum of the readable lines' prices; `Err` when it overflows.
    pub subtotal: Checked<Money>,
    pub shipping: Vec<Shipping<'r>>,
}

/// Currencies and rate the cart is read with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conversion {
    pub shop: Currency,
    pub presentment: Currency,
    pub rate: Rate,
}

impl Conversion {
    /// Converts a shop-currency amount into the presentment currency.
    pub fn to_presentment(self, amount: Money) -> Checked<Money> {
        self.rate
            .convert(amount, self.shop, self.presentment)
            .ok_or(arith::Overflow)
    }
}

fn reason(code: ReasonCode, subject: &str, detail: Detail) -> Reason {
    Reason::new(code, subject, detail)
}

/// Reads every line and delivery group; unreadable ones become reasons.
pub(crate) fn read<'r>(
    lines: &'r [Line],
    groups: &'r [DeliveryGroup],
    conversion: Conversion,
    reasons: &mut Vec<Reason>,
) -> Cart<'r> {
    let mut cart = Cart {
        lines: Vec::with_capacity(lines.len()),
        unreadable_lines: Vec::new(),
        subtotal: Ok(0),
        shipping: Vec::new(),
    };
    for (position, line) in lines.iter().enumerate() {
        match read_line(position, line, conversion, reasons) {
            Some(read) => {
                cart.subtotal = cart.subtotal.and_then(|s| arith::add(s, read.price));
                cart.lines.push(read);
            }
            None => cart.unreadable_lines.push((position, &line.id)),
        }
    }
    let exponent = conversion.presentment.exponent;
    for group in groups {
        // INVARIANT: the shipping a discount is priced against is the selected option's, else the
        // most expensive option offered, so the guard never assumes cheaper shipping than the buyer
        // may pick. Unreadable offered costs cannot be the maximum and are passed over.
        let text = match &group.shipping_cost {
            Some(selected) => selected,
            None => {
                let most_expensive = group
                    .option_costs
                    .iter()
                    .filter_map(|text| parse_decimal_minor(text, exponent).map(|cost| (cost, text)))
                    .max_by_key(|(cost, _)| *cost);
                match (most_expensive, group.option_costs.first()) {
                    (Some((_, text)), _) => text,
                    // No option offered: nothing to discount. Options whose costs are all
                    // unreadable get a reason below, for one of them.
                    (None, None) => continue,
                    (None, Some(first)) => first,
                }
            }
        };
        match parse_decimal_minor(text, exponent).filter(|c| *c >= 0) {
            Some(cost) => cart.shipping.push(Shipping {
                group_id: &group.id,
                cost,
            }),
            None => reasons.push(reason(
                ReasonCode::ShippingCostMalformed,
                &group.id,
                Detail::ShippingCostMalformed {
                    text: text.clone(),
                    currency: conversion.presentment,
                },
            )),
        }
    }
    cart
}

fn read_line<'r>(
    position: usize,
    line: &'r Line,
    conversion: Conversion,
    reasons: &mut Vec<Reason>,
) -> Option<CartLine<'r>> {
    let presentment = conversion.presentment;
    let Some(unit_price) =
        parse_decimal_minor(&line.unit_price, presentment.exponent).filter(|p| *p >= 0)
    else {
        reasons.push(reason(
            ReasonCode::LineMalformed,
            &line.id,
            Detail::UnitPriceMalformed {
                text: line.unit_price.clone(),
                currency: presentment,
            },
        ));
        return None;
    };
    if line.quantity < 1 {
        reasons.push(reason(
            ReasonCode::LineMalformed,
            &line.id,
            Detail::QuantityBelowOne(line.quantity),
        ));
        return None;
    }
    let Ok(price) = arith::mul(unit_price, line.quantity) else {
        reasons.push(reason(
            ReasonCode::Overflow,
            &line.id,
            Detail::LinePriceOverflow {
                unit_price,
                quantity: line.quantity,
            },
        ));
        return None;
    };
    let data = match &line.variant {
        VariantInput::Missing => {
            reasons.push(reason(
                ReasonCode::LineCostUnknown,
                &line.id,
                Detail::NoVariantData,
            ));
            None
        }
        VariantInput::Text(text) => match VariantData::decode(text, conversion.shop.exponent) {
            Ok(data) => Some(data),
            Err(error) => {
                reasons.push(reason(
                    ReasonCode::LineVariantMalformed,
                    &line.id,
                    Detail::VariantData(error),
                ));
                None
            }
        },
    };
    let mut unit_cost = None;
    if let Some(data) = &data {
        match data.unit_cost_minor {
            None => reasons.push(reason(
                ReasonCode::LineCostUnknown,
                &line.id,
                Detail::NoCost,
            )),
            Some(shop_cost) => match conversion.to_presentment(shop_cost) {
                // The line cost is needed by the guard; a cost whose total overflows is as good
                // as unknown, and unknown costs are never discounted under the default policy.
                Ok(cost) if arith::mul(cost, line.quantity).is_ok() => unit_cost = Some(cost),
                _ => reasons.push(reason(
                    ReasonCode::Overflow,
                    &line.id,
                    Detail::LineCostOverflow {
                        unit_cost: shop_cost,
                        quantity: line.quantity,
                    },
                )),
            },
        }
    }
    Some(CartLine {
        position,
        id: &line.id,
        quantity: line.quantity,
        unit_price,
        price,
        unit_cost,
        data,
    })
}

impl<'r> Cart<'r> {
    /// The lines offers may discount, in cart order.
    pub fn discountable(&self, unknown_cost: UnknownCost) -> Vec<Discountable> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(index, line)| {
                let unit_cost = match (line.unit_cost, unknown_cost) {
                    (Some(cost), _) => cost,
                    (None, UnknownCost::Allow) => 0,
                    (None, UnknownCost::Exclude) => return None,
                };
                // INVARIANT: read_line only keeps a unit cost whose line total fits in an i64.
                let cost = arith::mul(unit_cost, line.quantity).ok()?;
                Some(Discountable {
                    index,
                    unit_cost,
                    cost,
                })
            })
            .collect()
    }

    /// Ids of every line an order discount must not be allocated to, in cart order: unreadable
    /// lines and lines that are not discountable.
    pub fn order_excluded_ids(&self, discountable: &[Discountable]) -> Vec<String> {
        // Every line discountable (each is listed once in `discountable`) and none unreadable:
        // nothing to exclude, without a search per line.
        if discountable.len() == self.lines.len() && self.unreadable_lines.is_empty() {
            return Vec::new();
        }
        let not_discountable = self
            .lines
            .iter()
            .enumerate()
            // INVARIANT: `discountable` is in increasing index (see `discountable`), so a binary
            // search replaces a scan that made this quadratic in the number of lines.
            .filter(|(index, _)| {
                discountable
                    .binary_search_by_key(index, |d| d.index)
                    .is_err()
            })
            .map(|(_, line)| (line.position, line.id));
        // INVARIANT: both lists are in increasing cart position, so merging them keeps cart order
        // without a sort (which would cost the Function several KB of code).
        let mut unreadable = self.unreadable_lines.iter().copied().peekable();
        let mut ids = Vec::new();
        for (position, id) in not_discountable {
            while let Some((_, skipped)) = unreadable.next_if(|(p, _)| *p < position) {
                ids.push(skipped.to_string());
            }
            ids.push(id.to_string());
        }
        ids.extend(unreadable.map(|(_, id)| id.to_string()));
        ids
    }

    pub fn line(&self, index: usize) -> Option<&CartLine<'r>> {
        self.lines.get(index)
    }
}
