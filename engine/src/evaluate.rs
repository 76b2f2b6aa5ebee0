//! `evaluate`: one checkout's facts in, one decision with its reasons out.
//!
//! The steps follow the engine spec in order: policy, currencies, lines, holdout, profile, then
//! every offer (eligibility, proposed amounts, cap, guard), selection, and rendering for the target
//! that asked. Each step that can go wrong adds a reason and, where the whole decision depends on
//! it, returns early with no offer.

use std::cell::{Cell, OnceCell};

use crate::arith;
use crate::cap;
use crate::cart::{self, Cart, Conversion, Discountable};
use crate::decision::{
    Decision, LineDiscount, OrderDiscount, Reason, ReasonCode, ShippingDiscount,
};
use crate::detail::Detail;
use crate::eligibility::{self, Shopper};
use crate::gate;
use crate::guard::{self, Headroom};
use crate::margin;
use crate::money::{Currency, Money, Rate};
use crate::output::{self, MAX_OPERATION_BYTES, OutputBudget};
use crate::policy::{self, Offer, Policy, PolicySource, Strategy};
use crate::request::{Request, Target};
use crate::reward::{self, Amounts, LineAmount};
use crate::slots;

fn reason(code: ReasonCode, subject: &str, detail: Detail) -> Reason {
    Reason::new(code, subject, detail)
}

/// Decides which offer this checkout gets. Never fails and never panics: anything unusable is a
/// reason in the returned decision, and the worst outcome is no offer.
pub fn evaluate(request: &Request) -> Decision {
    let mut decision = Decision::default();
    let Some((policy, conversion)) = read_policy_and_currencies(request, &mut decision.reasons)
    else {
        return decision;
    };

    // 3. Lines.
    if request.lines.is_empty() {
        decision
            .reasons
            .push(reason(ReasonCode::EmptyCart, "", Detail::NoLines));
        return decision;
    }
    let cart = cart::read(
        &request.lines,
        &request.delivery_groups,
        conversion,
        &mut decision.reasons,
    );
    let context = Context {
        request,
        cart: &cart,
        conversion,
        discountable: cart.discountable(policy.guard.unknown_cost),
        slot_candidates: OnceCell::new(),
        order_excluded_ids: OnceCell::new(),
        line_id_bytes: OnceCell::new(),
    };

    // The cart index of every rendered line discount, in the decision's order: the margin summary
    // needs to know which lines they are on, and comparing line ids made it quadratic.
    let mut line_discount_indices = Vec::new();
    decide(&context, &policy, &mut decision, &mut line_discount_indices);

    // 12. The margin summary of what this run gives, also when it gives nothing: a report can
    // then compare the margin of held-out and treated carts.
    match margin::summarize(
        &cart,
        &context.discountable,
        &decision,
        &line_discount_indices,
    ) {
        Ok(summary) => decision.margin = summary,
        Err(arith::Overflow) => decision.reasons.push(reason(
            ReasonCode::Overflow,
            "margin",
            Detail::MarginSummaryOverflow,
        )),
    }
    decision
}

/// Steps 1 and 2: the policy, and the currencies its amounts are converted between. `None` when
/// there is no usable policy or currency; the reason is already recorded.
fn read_policy_and_currencies(
    request: &Request,
    reasons: &mut Vec<Reason>,
) -> Option<(Policy, Conversion)> {
    let policy = match &request.policy {
        PolicySource::Missing => {
            reasons.push(reason(
                ReasonCode::PolicyMissing,
                "",
                Detail::NoPolicyMetafield,
            ));
            return None;
        }
        PolicySource::Json(text) => parse_json(text, reasons)?,
        PolicySource::Compiled { json, compiled } => {
            match policy::compiled::decode(compiled, json) {
                Ok(policy) => policy,
                Err(problem) => {
                    reasons.push(reason(
                        ReasonCode::PolicyCompiledStale,
                        "policy_compiled",
                        Detail::CompiledPolicy(problem),
                    ));
                    parse_json(json, reasons)?
                }
            }
        }
    };
    let Some(presentment) = Currency::from_code(&request.currency_code) else {
        reasons.push(reason(
            ReasonCode::PolicyCurrencyUnknown,
            "cart",
            Detail::UnknownCartCurrency(request.currency_code.clone()),
        ));
        return None;
    };
    let Some(rate) = Rate::parse(&request.presentment_rate) else {
        reasons.push(reason(
            ReasonCode::RateInvalid,
            "cart",
            Detail::PresentmentRate(request.presentment_rate.clone()),
        ));
        return None;
    };
    let conversion = Conversion {
        shop: policy.currency,
        presentment,
        rate,
    };
    Some((policy, conversion))
}

/// The policy JSON, with the reasons for anything skipped or for no policy at all.
fn parse_json(text: &str, reasons: &mut Vec<Reason>) -> Option<Policy> {
    let parsed = policy::parse(text);
    reasons.extend(parsed.reasons);
    parsed.policy
}

/// Steps 4 to 11 on a readable cart: holdout, profile, every offer, selection and rendering.
fn decide(
    context: &Context<'_, '_>,
    policy: &Policy,
    decision: &mut Decision,
    line_discount_indices: &mut Vec<usize>,
) {
    let request = context.request;
    let reasons = &mut decision.reasons;

    // 4. Holdout.
    if gate::held_out(policy.holdout.as_ref(), &request.holdout_key, reasons) {
        return;
    }

    // 5. Profile.
    let Ok(profile) = gate::profile(&request.profile, reasons) else {
        return;
    };

    // 6-9. Every offer, in policy order.
    let shopper = Shopper {
        profile: profile.as_ref(),
        number_of_orders: request.customer.number_of_orders,
        subtotal: context.cart.subtotal.ok(),
    };
    let headroom = guard::headroom(context.cart, &context.discountable, &policy.guard);
    let mut survivors: Vec<Survivor> = Vec::new();
    for (position, offer) in policy.offers.iter().enumerate() {
        if let Some(survivor) = evaluate_offer(
            context,
            &shopper,
            headroom.as_ref(),
            position,
            offer,
            reasons,
        ) {
            survivors.push(survivor);
        }
    }

    // 10. Selection.
    let winner = match policy.strategy {
        Strategy::Priority => survivors.first(),
        // Ties go to the earlier offer: max_by_key would keep the last of equal values.
        Strategy::BestForShopper => {
            survivors
                .iter()
                .fold(None, |best: Option<&Survivor>, s| match best {
                    Some(b) if b.value >= s.value => Some(b),
                    _ => Some(s),
                })
        }
    };
    let Some(winner) = winner else {
        reasons.push(reason(
            ReasonCode::NoEligibleOffer,
            "",
            Detail::OffersConsidered(policy.offers.len()),
        ));
        return;
    };
    for survivor in &survivors {
        let offer_id = offer_id(policy, survivor.position);
        let code = if survivor.position == winner.position {
            ReasonCode::OfferSelected
        } else {
            ReasonCode::NotSelected
        };
        reasons.push(reason(code, offer_id, Detail::Value(survivor.value)));
    }

    // 11. Render for the target that asked. Both targets pick the same winner; each renders only
    // the operations it may return.
    let Some(offer) = policy.offers.get(winner.position) else {
        return;
    };
    decision.offer_id = Some(offer.id.clone());
    let renders_here = matches!(
        (&winner.amounts, request.target),
        (Amounts::Lines(_) | Amounts::Order(_), Target::CartLines)
            | (Amounts::Shipping { .. }, Target::DeliveryOptions)
    );
    if renders_here {
        render_amounts(
            decision,
            line_discount_indices,
            context,
            offer,
            &winner.amounts,
        );
    } else {
        decision.reasons.push(reason(
            ReasonCode::RenderedByOtherTarget,
            &offer.id,
            Detail::RenderedByOtherTarget {
                asked: request.target,
            },
        ));
    }
}

fn offer_id(policy: &Policy, position: usize) -> &str {
    policy.offers.get(position).map_or("", |o| o.id.as_str())
}

/// What every offer is evaluated against.
struct Context<'a, 'r> {
    request: &'r Request,
    cart: &'a Cart<'r>,
    conversion: Conversion,
    discountable: Vec<Discountable>,
    /// The slot offers' candidate lines, worked out from `cart` and `discountable` by the first
    /// slot offer evaluated (see [`crate::slots::find`]).
    slot_candidates: OnceCell<slots::Candidates>,
    /// The ids an order discount must exclude, worked out by the first order offer that gets as
    /// far as the output limit (see [`Context::order_excluded_ids`]).
    order_excluded_ids: OnceCell<Vec<String>>,
    /// Each cart line's id as a JSON string, in bytes ([`output::json_string_bytes`]), by cart
    /// index: 0 until an offer whose line discounts might not fit in the output needs it.
    line_id_bytes: OnceCell<Vec<Cell<usize>>>,
}

impl Context<'_, '_> {
    /// The ids of the lines an order discount must exclude, in cart order.
    fn order_excluded_ids(&self) -> &[String] {
        self.order_excluded_ids
            .get_or_init(|| self.cart.order_excluded_ids(&self.discountable))
    }

    /// The bytes of a cart line's id as a JSON string, measured once per run.
    fn line_id_bytes(&self, index: usize) -> usize {
        let known = self
            .line_id_bytes
            .get_or_init(|| vec![Cell::new(0); self.cart.lines.len()]);
        match (known.get(index), self.cart.line(index)) {
            // A JSON string takes at least its two quotes: 0 is "not measured yet".
            (Some(cell), _) if cell.get() > 0 => cell.get(),
            (Some(cell), Some(line)) => {
                let bytes = output::json_string_bytes(line.id);
                cell.set(bytes);
                bytes
            }
            _ => output::json_string_bytes(""),
        }
    }
}

/// An offer that passed every rule and still gives something after cap and guard.
struct Survivor {
    position: usize,
    amounts: Amounts,
    value: Money,
}

/// Runs one offer through eligibility, proposal, cap and guard. Every outcome adds reasons; only
/// an offer still worth something comes back.
fn evaluate_offer(
    context: &Context<'_, '_>,
    shopper: &Shopper<'_>,
    headroom: Result<&Headroom, &arith::Overflow>,
    position: usize,
    offer: &Offer,
    reasons: &mut Vec<Reason>,
) -> Option<Survivor> {
    let id = offer.id.as_str();
    let overflow = |reasons: &mut Vec<Reason>, step: &'static str| {
        reasons.push(reason(
            ReasonCode::Overflow,
            id,
            Detail::OverflowWhile(step),
        ));
    };
    if let Err(ineligible) = eligibility::check(
        &offer.eligibility,
        &offer.reward,
        shopper,
        context.request.classes,
        context.conversion,
    ) {
        reasons.push(reason(ineligible.code, id, ineligible.detail));
        return None;
    }
    let shipping = &context.cart.shipping;
    let cap = offer.cap.map(|cap| context.conversion.to_presentment(cap));
    let proposal = match reward::propose(
        &offer.reward,
        context.cart,
        &context.discountable,
        &context.slot_candidates,
        context.conversion,
        cap.and_then(Result::ok),
        reasons,
    ) {
        Ok(proposal) => proposal,
        Err(nothing) => {
            reasons.push(reason(nothing.code, id, nothing.detail));
            return None;
        }
    };
    let mut amounts = proposal.amounts;
    let mut proposed = proposal.value;
    // One candidate per delivery group: groups whose candidates would not fit in the output are
    // left out before cap and guard, which then work on the groups that will be rendered.
    if let Amounts::Shipping { groups, .. } = &mut amounts {
        let fit = fit_groups(shipping, &offer.message);
        if fit < *groups {
            reasons.push(reason(
                ReasonCode::OutputLimit,
                id,
                Detail::GroupsOverOutputLimit {
                    left_out: groups.saturating_sub(fit),
                    max_bytes: MAX_OPERATION_BYTES,
                },
            ));
            *groups = fit;
            proposed = reward::value(&amounts, shipping);
        }
    }
    let Ok(proposed) = proposed else {
        overflow(reasons, "valuing the proposed discount");
        return None;
    };
    if proposed == 0 {
        let code = match amounts {
            Amounts::Shipping { .. } => ReasonCode::NoShippingToDiscount,
            Amounts::Lines(_) | Amounts::Order(_) => ReasonCode::NoTargetLines,
        };
        reasons.push(reason(code, id, Detail::WorthNothing));
        return None;
    }

    let mut value = proposed;
    if let Some(cap) = cap {
        let capped = cap
            .and_then(|cap_presentment| {
                cap::apply(&mut amounts, cap_presentment, shipping)?;
                Ok(cap_presentment)
            })
            .and_then(|cap_presentment| Ok((cap_presentment, reward::value(&amounts, shipping)?)));
        let Ok((cap_presentment, after)) = capped else {
            overflow(reasons, "applying the cap");
            return None;
        };
        if after < value {
            reasons.push(reason(
                ReasonCode::CapReduced,
                id,
                Detail::CapReduced {
                    before: value,
                    after,
                    cap: cap_presentment,
                },
            ));
            if after == 0 {
                return None;
            }
            value = after;
        }
    }

    let Ok(headroom) = headroom else {
        overflow(reasons, "computing the margin guard");
        return None;
    };
    let guarded = guard::apply(&mut amounts, headroom, shipping)
        .and_then(|()| reward::value(&amounts, shipping));
    let Ok(after) = guarded else {
        overflow(reasons, "applying the margin guard");
        return None;
    };
    if after < value {
        let detail = Detail::GuardReduced {
            before: value,
            after,
            order_headroom: headroom.order,
        };
        if after == 0 {
            reasons.push(reason(ReasonCode::GuardDropped, id, detail));
            return None;
        }
        reasons.push(reason(ReasonCode::GuardReduced, id, detail));
        value = after;
    }

    // What does not fit in the output is left out: an output over Shopify's limit would lose the
    // whole run. Leaving amounts out only lowers the discount, so cap and guard still hold.
    let exponent = context.conversion.presentment.exponent;
    match &mut amounts {
        Amounts::Lines(lines) => {
            let left_out = fit_lines(lines, context, &offer.message, exponent);
            if left_out > 0 {
                let Ok(after) = arith::sum(lines.iter().map(|line| line.amount)) else {
                    overflow(reasons, "fitting the output");
                    return None;
                };
                reasons.push(reason(
                    ReasonCode::OutputLimit,
                    id,
                    Detail::LinesOverOutputLimit {
                        left_out,
                        after,
                        max_bytes: MAX_OPERATION_BYTES,
                    },
                ));
                if after == 0 {
                    return None;
                }
                value = after;
            }
        }
        Amounts::Order(amount) => {
            let excluded = context.order_excluded_ids();
            if !excluded.is_empty()
                && output::order_candidate_bytes(
                    output::json_string_bytes(&offer.message),
                    *amount,
                    exponent,
                    excluded,
                ) > MAX_OPERATION_BYTES
            {
                reasons.push(reason(
                    ReasonCode::OutputLimit,
                    id,
                    Detail::ExclusionsOverOutputLimit {
                        excluded: excluded.len(),
                        max_bytes: MAX_OPERATION_BYTES,
                    },
                ));
                return None;
            }
        }
        // Fitted when proposed, before cap and guard.
        Amounts::Shipping { .. } => {}
    }

    Some(Survivor {
        position,
        amounts,
        value,
    })
}

/// Keeps the line discounts, in cart order, while their candidates fit in the output, and sets
/// the others to 0; returns how many were left out.
fn fit_lines(
    lines: &mut [LineAmount],
    context: &Context<'_, '_>,
    message: &str,
    exponent: u8,
) -> usize {
    let cart = context.cart;
    // Nearly always everything fits even with every byte of the texts at its widest, which needs
    // only their lengths.
    let per_line = output::LINE_CANDIDATE_BYTES
        .saturating_add(output::json_string_bytes_at_most(message.len()))
        .saturating_add(output::MAX_AMOUNT_BYTES);
    let at_most = lines
        .iter()
        .filter(|line| line.amount > 0)
        .fold(0usize, |n, line| {
            let id = cart.line(line.index).map_or("", |line| line.id);
            n.saturating_add(per_line)
                .saturating_add(output::json_string_bytes_at_most(id.len()))
        });
    if at_most <= MAX_OPERATION_BYTES {
        return 0;
    }
    let message_bytes = output::json_string_bytes(message);
    let mut budget = OutputBudget::default();
    let mut left_out = 0;
    for line in lines.iter_mut().filter(|line| line.amount > 0) {
        if budget.is_full()
            || !budget.fits(output::line_candidate_bytes(
                message_bytes,
                context.line_id_bytes(line.index),
                line.amount,
                exponent,
            ))
        {
            line.amount = 0;
            left_out += 1;
        }
    }
    left_out
}

/// How many of the first delivery groups' candidates fit in the output.
fn fit_groups(shipping: &[cart::Shipping<'_>], message: &str) -> usize {
    // A cart has a few delivery groups: the widest case by the texts' lengths nearly always fits.
    let per_group = output::SHIPPING_CANDIDATE_BYTES
        .saturating_add(output::json_string_bytes_at_most(message.len()))
        .saturating_add(output::MAX_PERCENT_BYTES);
    let at_most = shipping.iter().fold(0usize, |n, group| {
        n.saturating_add(per_group)
            .saturating_add(output::json_string_bytes_at_most(group.group_id.len()))
    });
    if at_most <= MAX_OPERATION_BYTES {
        return shipping.len();
    }
    let message_bytes = output::json_string_bytes(message);
    let mut budget = OutputBudget::default();
    shipping
        .iter()
        .take_while(|group| {
            budget.fits(output::shipping_candidate_bytes(
                message_bytes,
                output::json_string_bytes(group.group_id),
            ))
        })
        .count()
}

/// Turns the winner's amounts into the operations this target returns. `line_discount_indices`
/// receives the cart index of every line discount rendered, in the same order.
fn render_amounts(
    decision: &mut Decision,
    line_discount_indices: &mut Vec<usize>,
    context: &Context<'_, '_>,
    offer: &Offer,
    amounts: &Amounts,
) {
    let message = &offer.message;
    match amounts {
        Amounts::Lines(lines) => {
            for amount in lines.iter().filter(|l| l.amount > 0) {
                let Some(line) = context.cart.line(amount.index) else {
                    continue;
                };
                decision.line_discounts.push(LineDiscount {
                    line_id: line.id.to_string(),
                    amount_minor: amount.amount,
                    message: message.clone(),
                });
                line_discount_indices.push(amount.index);
            }
        }
        Amounts::Order(amount) => {
            decision.order_discount = Some(OrderDiscount {
                amount_minor: *amount,
                excluded_line_ids: context.order_excluded_ids().to_vec(),
                message: message.clone(),
            });
        }
        Amounts::Shipping { bps, groups } => {
            decision.shipping_discounts = reward::covered(&context.cart.shipping, *groups)
                .iter()
                .map(|s| ShippingDiscount {
                    delivery_group_id: s.group_id.to_string(),
                    percent_bps: *bps,
                    message: message.clone(),
                })
                .collect();
        }
    }
}
