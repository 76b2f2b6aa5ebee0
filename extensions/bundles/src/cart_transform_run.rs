//! Target `cart.transform.run`: translate the input into one engine request, render the engine's
//! merges and expansions as `linesMerge` and `lineExpand` operations.

use marginwise_engine::Currency;
use marginwise_engine::bundle::{BundleDecision, BundleRequest, Expand, Merge};
use marginwise_engine::format::{BUNDLE_MARKER_EXPANDED, BUNDLE_MARKER_KEY, BUNDLE_MARKER_MERGED};
use marginwise_engine::money::format_decimal_minor;
use shopify_function::Result;
use shopify_function::prelude::*;

use crate::Input;
use crate::schema::{
    AttributeOutput, CartLineInput, CartTransformRunResult, ExpandedItem,
    ExpandedItemFixedPricePerUnitAdjustment, ExpandedItemPriceAdjustment,
    ExpandedItemPriceAdjustmentValue, LineExpandOperation, LinesMergeOperation, Operation,
    PriceAdjustment, PriceAdjustmentValue,
};

// INVARIANT: this function never returns `Err` and never panics; the worst case is no operations.
#[shopify_function]
pub(crate) fn cart_transform_run(input: Input) -> Result<CartTransformRunResult> {
    let request = request(input);
    let decision = marginwise_engine::evaluate_bundles(&request);
    log!("{}", decision.log_line());
    Ok(render(&decision, &request))
}

pub(crate) fn request(input: Input) -> BundleRequest {
    input.request()
}

fn marker(value: &str) -> Option<Vec<AttributeOutput>> {
    Some(vec![AttributeOutput {
        key: BUNDLE_MARKER_KEY.to_string(),
        value: value.to_string(),
    }])
}

/// Renders every merge and expansion. Quantities beyond `i32` (impossible for a real cart, whose
/// lines hold at most a few thousand units) drop the operation instead of truncating it.
pub(crate) fn render(decision: &BundleDecision, request: &BundleRequest) -> CartTransformRunResult {
    let exponent = Currency::from_code(&request.currency_code).map(|c| c.exponent);
    let mut operations = Vec::new();
    for merge in &decision.merges {
        if let Some(operation) = render_merge(merge) {
            operations.push(Operation::LinesMerge(operation));
        }
    }
    if let Some(exponent) = exponent {
        for expand in &decision.expands {
            if let Some(operation) = render_expand(expand, exponent) {
                operations.push(Operation::LineExpand(operation));
            }
        }
    }
    CartTransformRunResult { operations }
}

fn render_merge(merge: &Merge) -> Option<LinesMergeOperation> {
    let cart_lines = merge
        .lines
        .iter()
        .map(|line| {
            Some(CartLineInput {
                cart_line_id: line.line_id.clone(),
                quantity: i32::try_from(line.quantity).ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    // A percentage with two decimals: 1250 bps -> "12.50".
    let price = (merge.percent_decrease_bps > 0).then(|| PriceAdjustment {
        percentage_decrease: Some(PriceAdjustmentValue {
            value: format_decimal_minor(merge.percent_decrease_bps, 2),
        }),
    });
    Some(LinesMergeOperation {
        attributes: marker(BUNDLE_MARKER_MERGED),
        cart_lines,
        parent_variant_id: merge.parent_variant_id.clone(),
        price,
        title: None,
    })
}

fn render_expand(expand: &Expand, exponent: u8) -> Option<LineExpandOperation> {
    let expanded_cart_items = expand
        .items
        .iter()
        .map(|item| {
            Some(ExpandedItem {
                attributes: marker(BUNDLE_MARKER_EXPANDED),
                merchandise_id: item.variant_id.clone(),
                price: Some(ExpandedItemPriceAdjustment {
                    adjustment: ExpandedItemPriceAdjustmentValue::FixedPricePerUnit(
                        ExpandedItemFixedPricePerUnitAdjustment {
                            amount: format_decimal_minor(item.unit_price_minor, exponent),
                        },
                    ),
                }),
                quantity: i32::try_from(item.quantity).ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(LineExpandOperation {
        cart_line_id: expand.line_id.clone(),
        expanded_cart_items,
        title: None,
    })
}
