//! Target `cart.delivery-options.discounts.generate.run`: renders the winning offer's shipping
//! discounts as one delivery-discount operation.

use marginwise_engine::{Decision, Request, Target};
use shopify_function::Result;
use shopify_function::shopify_function;

use crate::Input;
use crate::facts;
use crate::schema::{
    CartDeliveryOptionsDiscountsGenerateRunResult, DeliveryDiscountCandidate,
    DeliveryDiscountCandidateTarget, DeliveryDiscountCandidateValue,
    DeliveryDiscountSelectionStrategy, DeliveryDiscountsAddOperation, DeliveryGroupTarget,
    DeliveryOperation, Percentage,
};

// INVARIANT: this function never returns `Err` and never panics; the worst case is no operations.
#[shopify_function]
pub(crate) fn cart_delivery_options_discounts_generate_run(
    input: Input,
) -> Result<CartDeliveryOptionsDiscountsGenerateRunResult> {
    let request = request(input);
    let decision = marginwise_engine::evaluate(&request);
    facts::log(&decision);
    Ok(render(&decision, &request))
}

pub(crate) fn request(input: Input) -> Request {
    input.request(Target::DeliveryOptions)
}

/// Renders the decision's shipping discounts, one candidate per delivery group, when the discount
/// node allows the shipping class.
pub(crate) fn render(
    decision: &Decision,
    request: &Request,
) -> CartDeliveryOptionsDiscountsGenerateRunResult {
    let mut operations = Vec::new();
    if request.classes.shipping {
        let candidates: Vec<DeliveryDiscountCandidate> = decision
            .shipping_discounts
            .iter()
            // Shopify accepts percentages in (0, 100]; the engine never proposes anything else.
            .filter(|discount| {
                (1..=marginwise_engine::money::BPS_ONE).contains(&discount.percent_bps)
            })
            .map(|discount| DeliveryDiscountCandidate {
                message: (!discount.message.is_empty()).then(|| discount.message.clone()),
                targets: vec![DeliveryDiscountCandidateTarget::DeliveryGroup(
                    DeliveryGroupTarget {
                        id: discount.delivery_group_id.clone(),
                    },
                )],
                value: DeliveryDiscountCandidateValue::Percentage(Percentage {
                    value: facts::percent(discount.percent_bps),
                }),
            })
            .collect();
        if !candidates.is_empty() {
            operations.push(DeliveryOperation::DeliveryDiscountsAdd(
                DeliveryDiscountsAddOperation {
                    candidates,
                    selection_strategy: DeliveryDiscountSelectionStrategy::All,
                },
            ));
        }
    }
    CartDeliveryOptionsDiscountsGenerateRunResult { operations }
}
