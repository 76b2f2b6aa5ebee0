//! Target `cart.lines.discounts.generate.run`: renders the winning offer's line discounts as one
//! product-discount operation and its order discount as one order-discount operation.

use marginwise_engine::{Decision, Request, Target};
use shopify_function::Result;
use shopify_function::shopify_function;

use crate::Input;
use crate::facts;
use crate::schema::{
    CartLineTarget, CartLinesDiscountsGenerateRunResult, CartOperation, FixedAmount,
    OrderDiscountCandidate, OrderDiscountCandidateTarget, OrderDiscountCandidateValue,
    OrderDiscountSelectionStrategy, OrderDiscountsAddOperation, OrderSubtotalTarget,
    ProductDiscountCandidate, ProductDiscountCandidateFixedAmount, ProductDiscountCandidateTarget,
    ProductDiscountCandidateValue, ProductDiscountSelectionStrategy, ProductDiscountsAddOperation,
};

// INVARIANT: this function never returns `Err` and never panics; the worst case is no operations.
#[shopify_function]
pub(crate) fn cart_lines_discounts_generate_run(
    input: Input,
) -> Result<CartLinesDiscountsGenerateRunResult> {
    let request = request(input);
    let decision = marginwise_engine::evaluate(&request);
    facts::log(&decision);
    Ok(render(&decision, &request))
}

pub(crate) fn request(input: Input) -> Request {
    input.request(Target::CartLines)
}

/// Renders the decision's line and order discounts, only in the classes the discount node allows
/// (Shopify rejects operations of other classes; the engine already respects them).
pub(crate) fn render(
    decision: &Decision,
    request: &Request,
) -> CartLinesDiscountsGenerateRunResult {
    let mut operations = Vec::new();

    if request.classes.product {
        // Selection ALL with one candidate per line: every line gets its own amount.
        let candidates: Vec<ProductDiscountCandidate> = decision
            .line_discounts
            .iter()
            .filter(|discount| discount.amount_minor > 0)
            .filter_map(|discount| {
                Some(ProductDiscountCandidate {
                    message: message(&discount.message),
                    targets: vec![ProductDiscountCandidateTarget::CartLine(CartLineTarget {
                        id: discount.line_id.clone(),
                        quantity: None,
                    })],
                    value: ProductDiscountCandidateValue::FixedAmount(
                        ProductDiscountCandidateFixedAmount {
                            amount: facts::amount(discount.amount_minor, &request.currency_code)?,
                            // The engine's amount is for the whole line, not per unit: Shopify's
                            // default (`false`), so the field is left out (about 250 instructions
                            // and 27 output bytes per candidate).
                            applies_to_each_item: None,
                        },
                    ),
                })
            })
            .collect();
        if !candidates.is_empty() {
            operations.push(CartOperation::ProductDiscountsAdd(
                ProductDiscountsAddOperation {
                    candidates,
                    selection_strategy: ProductDiscountSelectionStrategy::All,
                },
            ));
        }
    }

    if request.classes.order {
        let order = decision
            .order_discount
            .as_ref()
            .filter(|discount| discount.amount_minor > 0)
            .and_then(|discount| {
                Some(OrderDiscountCandidate {
                    message: message(&discount.message),
                    targets: vec![OrderDiscountCandidateTarget::OrderSubtotal(
                        OrderSubtotalTarget {
                            excluded_cart_line_ids: discount.excluded_line_ids.clone(),
                        },
                    )],
                    value: OrderDiscountCandidateValue::FixedAmount(FixedAmount {
                        amount: facts::amount(discount.amount_minor, &request.currency_code)?,
                    }),
                })
            });
        if let Some(candidate) = order {
            operations.push(CartOperation::OrderDiscountsAdd(
                OrderDiscountsAddOperation {
                    candidates: vec![candidate],
                    selection_strategy: OrderDiscountSelectionStrategy::First,
                },
            ));
        }
    }

    CartLinesDiscountsGenerateRunResult { operations }
}

fn message(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}
