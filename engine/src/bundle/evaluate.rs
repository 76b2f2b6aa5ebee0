//! `evaluate_bundles`: one cart transform run's facts in, merges and expansions with their
//! reasons out. The steps: definitions, currency, lines, expansions, then (only with a usable
//! policy, rate and profile, outside the holdout) merge candidates, the guard, and selection.

use std::cell::OnceCell;

use super::detail::BundleDetail;
use super::policy::{BundlePolicy, parse_bundle_policy};
use super::split::split_price;
use super::{
    BundleDecision, BundleLine, BundleRequest, Expand, ExpandItem, Merge, MergeLine,
    VARIANT_GID_PREFIX,
};
use crate::arith::{self, Checked};
use crate::cart::Conversion;
use crate::decision::{Reason, ReasonCode};
use crate::detail::Detail;
use crate::format::{
    BundleDefinition, Unchecked, VariantData, checked_bundles_mentioning, checked_mentions,
    decode_bundles,
};
use crate::gate;
use crate::guard;
use crate::min_table::MinTable;
use crate::money::{BPS_ONE, Bps, Currency, Money, Rate, parse_decimal_minor};
use crate::output::{MAX_OPERATION_BYTES, OutputBudget};
use crate::policy::{CustomerType, Guard, PolicySource, UnknownCost};
use crate::request::VariantInput;

fn reason(code: ReasonCode, subject: &str, detail: impl Into<Detail>) -> Reason {
    Reason {
        code,
        subject: subject.to_string(),
        detail: detail.into(),
    }
}

/// `gid://shopify/ProductVariant/<id>`, with `itoa` rather than `format!` (which costs a Function
/// about ten times more; a large cart renders hundreds of these).
fn variant_gid(id: u64) -> String {
    let mut gid = String::with_capacity(VARIANT_GID_PREFIX.len() + 20);
    gid.push_str(VARIANT_GID_PREFIX);
    gid.push_str(itoa::Buffer::new().format(id));
    gid
}

/// A line that may take part in an operation.
struct ReadLine<'r> {
    line: &'r BundleLine,
    unit_price: Money,
    /// What its variant is in the definitions (never [`Role::Neither`]: such lines are not read).
    role: Role,
    used: bool,
    /// The unit cost from `$app.offer` in shop minor units, decoded the first time a bundle is
    /// priced with this line: a line is priced in several merge rounds, and most lines never.
    shop_cost: OnceCell<Option<Money>>,
}

/// Decides the cart transform's operations. Never fails and never panics: anything unusable is a
/// reason, and the worst outcome is no operation.
pub fn evaluate_bundles(request: &BundleRequest) -> BundleDecision {
    let mut decision = BundleDecision::default();
    let reasons = &mut decision.reasons;

    // 1. Definitions: without them there is nothing to merge or expand.
    let Some(text) = &request.definitions else {
        reasons.push(reason(
            ReasonCode::BundleDefinitionsMissing,
            "",
            "no bundles metafield",
        ));
        return decision;
    };
    // A small cart reads only the bundles that mention its variants when the list is checked;
    // any other list is read whole, and reported on, as written.
    let searched = searched_definitions(text, &request.lines, reasons);
    let read_whole = searched.is_none();
    let Some(definitions) = searched.or_else(|| whole_definitions(text, reasons)) else {
        return decision;
    };

    // 2. Currency: every price is read in it (an empty cart has none to read it from).
    if request.lines.is_empty() {
        reasons.push(reason(ReasonCode::EmptyCart, "", Detail::NoLines));
        return decision;
    }
    let Some(presentment) = Currency::from_code(&request.currency_code) else {
        reasons.push(reason(
            ReasonCode::PolicyCurrencyUnknown,
            "cart",
            Detail::UnknownCartCurrency(request.currency_code.clone()),
        ));
        return decision;
    };

    // 3. Lines.
    // Which variants are bundle parents and which components: one id table (see `Roles`), one
    // lookup per line. An id table rather than a `BTreeMap`, whose building sorts and whose code
    // cost the cart transform 2 KB of its module budget. Only the bundles that share a variant
    // with the cart go into it (see `sharing_a_variant`).
    let definitions = if read_whole {
        sharing_a_variant(definitions, &request.lines)
    } else {
        definitions
    };
    let roles = Roles::new(&definitions);
    let mut lines = read_lines(&request.lines, presentment, &roles, reasons);

    // 4. Expansions: the parents sold as one line are found first, because such a line is never
    // a component of a merge. They are priced after the merges, and only as many as fit in the
    // output: a large cart expands hundreds of parent lines, most of which the output cannot
    // hold, and pricing one and writing its GIDs costs a few thousand instructions.
    let mut pending = Vec::new();
    for (index, line) in lines.iter_mut().enumerate() {
        if let Role::Parent(definition) = line.role {
            line.used = true;
            pending.push(PendingExpand {
                line: index,
                definition,
            });
        }
    }
    // The expansions' reasons go here, before the merges' (they are written last).
    let expansion_reasons_at = reasons.len();

    // 5. Merges, only for a usable policy outside the holdout. `merge_reasons` holds where each
    // merge's `bundle_merged` reason is in `reasons`.
    let mut merge_reasons: Vec<usize> = Vec::new();
    if let Some(setup) = merge_setup(request, presentment, reasons) {
        for (merge, reason_at) in merge(&definitions, &roles, &mut lines, &setup, reasons) {
            decision.merges.push(merge);
            merge_reasons.push(reason_at);
        }
    }

    // 6. The output: merges, then expansions, while they fit.
    fit_output(
        &mut decision,
        &pending,
        &lines,
        &definitions,
        &merge_reasons,
        expansion_reasons_at,
    );
    decision
}

/// The length of [`variant_gid`]`(id)`.
fn variant_gid_len(id: u64) -> usize {
    let digits = id.checked_ilog10().map_or(1, |log| log as usize + 1);
    VARIANT_GID_PREFIX.len() + digits
}

/// An upper estimate of one rendered operation's JSON size (measured on the Function's output:
/// a merge of two 24-byte line ids is 290 bytes, an expansion into two items 433).
fn merge_bytes(merge: &Merge) -> usize {
    merge
        .lines
        .iter()
        .fold(170 + merge.parent_variant_id.len(), |n, l| {
            n.saturating_add(45 + l.line_id.len())
        })
}

/// [`merge_bytes`] for an expansion, whose GIDs are not written yet: `items` are the variant ids
/// of its items.
fn expand_bytes(expand: &Expand, items: &[u64]) -> usize {
    items.iter().fold(70 + expand.line_id.len(), |n, &id| {
        n.saturating_add(190 + variant_gid_len(id))
    })
}

/// A bundle parent sold as one line, to be expanded if its expansion fits in the output.
struct PendingExpand {
    /// Index into the read lines.
    line: usize,
    /// Index into the definitions.
    definition: usize,
}

/// Keeps the merges that fit in the output, drops the others with their `bundle_merged` reasons
/// (at `merge_reasons` in the reasons), then prices and writes the pending expansions while they
/// fit, their reasons going at `expansion_reasons_at`; one reason counts what was left out.
///
/// Operations are kept in the order the Function renders them while they fit in an
/// [`OutputBudget`], so what is left out is the tail of each list. An output over Shopify's limit
/// would fail the run and lose every operation, so losing the last few is the better fallback.
/// (Only carts with dozens of bundles get here.)
fn fit_output(
    decision: &mut BundleDecision,
    pending: &[PendingExpand],
    lines: &[ReadLine<'_>],
    definitions: &[BundleDefinition],
    merge_reasons: &[usize],
    expansion_reasons_at: usize,
) {
    let reasons = &mut decision.reasons;
    let mut budget = OutputBudget::default();
    let kept_merges = decision
        .merges
        .iter()
        .take_while(|merge| budget.fits(merge_bytes(merge)))
        .count();
    let dropped_merges = decision.merges.len().saturating_sub(kept_merges);
    if dropped_merges > 0 {
        decision.merges.truncate(kept_merges);
        let mut dropped = vec![false; reasons.len()];
        for &at in merge_reasons.get(kept_merges..).unwrap_or_default() {
            if let Some(flag) = dropped.get_mut(at) {
                *flag = true;
            }
        }
        let mut position = 0;
        reasons.retain(|_| {
            position += 1;
            !dropped.get(position - 1).copied().unwrap_or(false)
        });
    }

    let mut expansion_reasons = Vec::new();
    let mut dropped_expands = 0;
    for (n, next) in pending.iter().enumerate() {
        let (Some(line), Some(definition)) =
            (lines.get(next.line), definitions.get(next.definition))
        else {
            continue;
        };
        let expanded = if budget.is_full() {
            None
        } else {
            Some(expand(line, definition))
        };
        match expanded {
            Some(Some((mut expansion, ids)))
                if budget.fits(expand_bytes(&expansion, &ids.items)) =>
            {
                expansion.parent_variant_id = variant_gid(ids.parent);
                for (item, &component) in expansion.items.iter_mut().zip(&ids.items) {
                    item.variant_id = variant_gid(component);
                }
                let parts = expansion
                    .items
                    .iter()
                    .map(|item| (item.quantity, item.unit_price_minor))
                    .collect();
                expansion_reasons.push(reason(
                    ReasonCode::BundleExpanded,
                    &line.line.id,
                    BundleDetail::Expanded {
                        unit_price: line.unit_price,
                        parts,
                    },
                ));
                decision.expands.push(expansion);
            }
            Some(None) => expansion_reasons.push(reason(
                ReasonCode::Overflow,
                &line.line.id,
                "splitting the parent price; not expanded",
            )),
            // Left out: this one did not fit, or an earlier operation did not. The parents
            // after it are counted, not priced (a parent whose split would have failed is
            // counted among them, instead of getting an overflow reason).
            Some(Some(_)) | None => {
                dropped_expands = pending.len() - n;
                break;
            }
        }
    }
    // The expansions' reasons go before the merges' (the dropped merges' reasons, all after
    // `expansion_reasons_at`, are gone already, so the insertion point still holds).
    let after = reasons.split_off(expansion_reasons_at.min(reasons.len()));
    reasons.extend(expansion_reasons);
    reasons.extend(after);
    if dropped_merges + dropped_expands > 0 {
        reasons.push(reason(
            ReasonCode::BundleOutputLimit,
            "",
            BundleDetail::OutputLimit {
                merges: dropped_merges,
                expands: dropped_expands,
                max_bytes: MAX_OPERATION_BYTES,
            },
        ));
    }
}

/// The bundles of a checked list that mention the variants of the cart's lines, when the cart
/// is small beside the list (see [`searches`]); `None` when the list must be read whole instead,
/// with `bundle_definitions_stale` recorded when its fingerprint or index no longer matches.
fn searched_definitions(
    text: &str,
    lines: &[BundleLine],
    reasons: &mut Vec<Reason>,
) -> Option<Vec<BundleDefinition>> {
    if !searches(lines.len(), checked_mentions(text)?) {
        return None;
    }
    // Lines without a readable variant GID have no bundle to find. A variant on two lines is
    // looked up twice, which finds the same bundles again: cheaper than checking every variant
    // against the ones before it.
    let variants: Vec<u64> = lines
        .iter()
        .filter_map(|line| crate::format::gid_number(line.variant_id.as_deref()?))
        .collect();
    match checked_bundles_mentioning(text, &variants) {
        Ok(definitions) => Some(definitions),
        Err(unchecked) => {
            if unchecked == Unchecked::Stale {
                reasons.push(reason(
                    ReasonCode::BundleDefinitionsStale,
                    "",
                    "the fingerprint or index does not match the list: read in full",
                ));
            }
            None
        }
    }
}

/// Whether a cart of `lines` lines looks its variants up in the index of a checked list with
/// `mentions` id mentions rather than reading the list whole. A lookup costs about the same
/// whatever the list; reading it whole costs in proportion to the list. Measured with `mw-run
/// wasm` on the budget carts' 40-bundle list (140 mentions), looked up / read whole: 16 lines
/// 344 K / 405 K, 30 lines 602 K / 637 K, 50 lines 974 K / 992 K, 75 lines 1,457 K / 1,417 K,
/// 100 lines 1.82 M / 1.73 M: even at about 60 lines, which is a line for every two mentions.
fn searches(lines: usize, mentions: usize) -> bool {
    lines.saturating_mul(2) <= mentions
}

/// Every bundle the whole list accepts, each skipped one reported by its position; `None` (with
/// the reason recorded) when the value is not a bundle list at all.
fn whole_definitions(text: &str, reasons: &mut Vec<Reason>) -> Option<Vec<BundleDefinition>> {
    let decoded = match decode_bundles(text) {
        Ok(decoded) => decoded,
        Err(error) => {
            reasons.push(reason(
                ReasonCode::BundleDefinitionMalformed,
                "",
                BundleDetail::Format(error),
            ));
            return None;
        }
    };
    for (index, error) in &decoded.skipped {
        reasons.push(reason(
            ReasonCode::BundleDefinitionMalformed,
            &format!("bundles[{index}]"),
            BundleDetail::Format(error.clone()),
        ));
    }
    Some(decoded.bundles)
}

/// The definitions whose parent or some component is the variant of a cart line, in list order,
/// when the cart has fewer lines than there are definitions; else all of them.
///
/// No other bundle can merge or expand in this cart, and none is explained either (see `merge`).
/// Leaving them out before the role table is built saves a small cart the role table and merge
/// bookkeeping of every bundle the store defines: 28 K instructions at one line on a 40-bundle
/// list (measured with `mw-run wasm`). On a cart with as many lines as bundles the table of the
/// cart's variants costs more than it saves (+29 K at 200 lines, +256 K at 2,000), hence the
/// condition. Every bundle is still decoded and checked first, so the skipped and clashing ones
/// are reported exactly as before, and which bundles were accepted does not change.
fn sharing_a_variant(
    definitions: Vec<BundleDefinition>,
    lines: &[BundleLine],
) -> Vec<BundleDefinition> {
    if lines.len() >= definitions.len() {
        return definitions;
    }
    let mut in_cart = MinTable::with_capacity(lines.len());
    // Marked lines and unreadable GIDs are left out by `read_lines`; a bundle kept for one of
    // them is only bookkeeping.
    for gid in lines.iter().filter_map(|line| line.variant_id.as_deref()) {
        if let Some(id) = crate::format::gid_number(gid) {
            in_cart.lower(id, 0);
        }
    }
    let shares = |id: u64| in_cart.get(id).is_some();
    definitions
        .into_iter()
        .filter(|d| {
            shares(d.parent_variant_id) || d.components.iter().any(|c| shares(c.variant_id))
        })
        .collect()
}

/// The lines that may take part in an operation: those whose variant is a bundle parent or
/// component. The others are not read further: whatever their price or quantity, no operation
/// can use them (and checking the price of every line cost a 2,000-line cart about 0.1 M
/// instructions for nothing).
fn read_lines<'r>(
    lines: &'r [BundleLine],
    presentment: Currency,
    roles: &Roles,
    reasons: &mut Vec<Reason>,
) -> Vec<ReadLine<'r>> {
    let mut read = Vec::with_capacity(lines.len());
    for line in lines {
        if let Some(marker) = line.marker.as_deref().filter(|m| !m.is_empty()) {
            reasons.push(reason(
                ReasonCode::BundleLineMarked,
                &line.id,
                BundleDetail::Marker(marker.to_string()),
            ));
            continue;
        }
        // Merchandise that is not a product variant can be neither a parent nor a component.
        let Some(gid) = &line.variant_id else {
            continue;
        };
        let Some(variant_id) = crate::format::gid_number(gid) else {
            reasons.push(reason(
                ReasonCode::LineVariantMalformed,
                &line.id,
                BundleDetail::VariantId(gid.clone()),
            ));
            continue;
        };
        let role = roles.of(variant_id);
        if matches!(role, Role::Neither) {
            continue;
        }
        let unit_price =
            parse_decimal_minor(&line.unit_price, presentment.exponent).filter(|p| *p >= 0);
        let Some(unit_price) = unit_price else {
            reasons.push(reason(
                ReasonCode::LineMalformed,
                &line.id,
                Detail::UnitPriceMalformed {
                    text: line.unit_price.clone(),
                    currency: presentment,
                },
            ));
            continue;
        };
        if line.quantity < 1 {
            reasons.push(reason(
                ReasonCode::LineMalformed,
                &line.id,
                Detail::QuantityBelowOne(line.quantity),
            ));
            continue;
        }
        if arith::mul(unit_price, line.quantity).is_err() {
            reasons.push(reason(
                ReasonCode::Overflow,
                &line.id,
                Detail::LinePriceOverflow {
                    unit_price,
                    quantity: line.quantity,
                },
            ));
            continue;
        }
        read.push(ReadLine {
            line,
            unit_price,
            role,
            used: false,
            shop_cost: OnceCell::new(),
        });
    }
    read
}

/// The variant ids of one expansion (its parent's, and its items' in item order), which its
/// GIDs are written from once it is known to fit in the output.
struct ExpandIds {
    parent: u64,
    items: Vec<u64>,
}

/// The expansion of `line` with its GIDs left empty, and the variant ids they are written from.
fn expand(line: &ReadLine<'_>, definition: &BundleDefinition) -> Option<(Expand, ExpandIds)> {
    let parts = split_price(line.unit_price, &definition.components)?;
    let mut items = Vec::with_capacity(parts.len());
    let mut item_ids = Vec::with_capacity(parts.len());
    for part in &parts {
        let component = definition.components.get(part.component)?;
        items.push(ExpandItem {
            variant_id: String::new(),
            quantity: part.quantity,
            unit_price_minor: part.unit_price,
        });
        item_ids.push(component.variant_id);
    }
    let expansion = Expand {
        line_id: line.line.id.clone(),
        parent_variant_id: String::new(),
        parent_unit_price_minor: line.unit_price,
        items,
    };
    let ids = ExpandIds {
        parent: definition.parent_variant_id,
        items: item_ids,
    };
    Some((expansion, ids))
}

/// What each variant is in the definitions, in one id table: the parent of a definition, or a
/// component, numbered by distinct component variant ("group"). A variant is never both
/// (`decode_bundles` skips nested bundles).
struct Roles {
    /// Parent: its definition's position; component: the number of definitions plus its group.
    table: MinTable,
    n_definitions: u32,
    n_groups: usize,
    /// The group of every component of every definition, definition after definition, so that
    /// looking a definition's component up costs no hashing.
    component_groups: Vec<usize>,
    /// Where each definition's components start in `component_groups`, plus the end.
    definition_starts: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Parent(usize),
    Component(usize),
    Neither,
}

/// A table value or count as an index (lossless: `usize` is at least 32 bits on every target).
fn index(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl Roles {
    fn new(definitions: &[BundleDefinition]) -> Roles {
        let n_components: usize = definitions.iter().map(|d| d.components.len()).sum();
        let mut table = MinTable::with_capacity(definitions.len() + n_components);
        let n_definitions = u32::try_from(definitions.len()).unwrap_or(u32::MAX);
        for (position, definition) in (0u32..).zip(definitions) {
            table.lower(definition.parent_variant_id, position);
        }
        let mut next_group = n_definitions;
        let mut component_groups = Vec::with_capacity(n_components);
        let mut definition_starts = Vec::with_capacity(definitions.len() + 1);
        for definition in definitions {
            definition_starts.push(component_groups.len());
            for component in &definition.components {
                let value = table.get_or_insert(component.variant_id, next_group);
                if value == next_group {
                    next_group = next_group.saturating_add(1);
                }
                // A parent's value here would mean a nested bundle, which cannot happen.
                let group = value.checked_sub(n_definitions).map_or(usize::MAX, index);
                component_groups.push(group);
            }
        }
        definition_starts.push(component_groups.len());
        Roles {
            table,
            n_definitions,
            n_groups: index(next_group - n_definitions),
            component_groups,
            definition_starts,
        }
    }

    fn of(&self, variant: u64) -> Role {
        match self.table.get(variant) {
            None => Role::Neither,
            Some(value) => match value.checked_sub(self.n_definitions) {
                Some(group) => Role::Component(index(group)),
                None => Role::Parent(index(value)),
            },
        }
    }

    /// The group of component `component` of definition `definition`.
    fn group(&self, definition: usize, component: usize) -> Option<usize> {
        let start = self.definition_starts.get(definition)?;
        self.component_groups.get(start + component).copied()
    }
}

/// Values grouped by a small group number, by counting rather than sorting (two passes): group
/// `g`'s values, in the order given, are `values[starts[g]..starts[g + 1]]`. (Sorting `(variant,
/// line)` pairs cost about 1.3 M instructions at 2,000 lines, and a sort's code several KB of the
/// module.)
struct Groups {
    starts: Vec<usize>,
    values: Vec<usize>,
}

impl Groups {
    /// `items` are `(group, value)` pairs; groups at or above `n_groups` are left out.
    fn new(n_groups: usize, items: &[(usize, usize)]) -> Groups {
        // `starts[g + 1]` counts group g's values, then becomes where group g ends.
        let mut starts = vec![0usize; n_groups + 1];
        for (group, _) in items {
            if let Some(count) = group.checked_add(1).and_then(|g| starts.get_mut(g)) {
                *count += 1;
            }
        }
        let mut total = 0;
        for start in &mut starts {
            total += *start;
            *start = total;
        }
        // `next[g]` is where group g's next value goes; it starts at `starts[g]`.
        let mut next = starts.clone();
        let mut values = vec![0usize; total];
        for &(group, value) in items {
            if let Some(at) = next.get_mut(group)
                && group < n_groups
                && let Some(slot) = values.get_mut(*at)
            {
                *slot = value;
                *at += 1;
            }
        }
        Groups { starts, values }
    }

    fn get(&self, group: usize) -> &[usize] {
        let end = group.checked_add(1).and_then(|g| self.starts.get(g));
        match (self.starts.get(group), end) {
            (Some(&start), Some(&end)) => self.values.get(start..end).unwrap_or_default(),
            _ => &[],
        }
    }
}

/// The lines free when merging starts whose variant is a component of some bundle, grouped by
/// variant (see [`Roles`]), each group in cart order. Only component variants are ever looked up,
/// so the other lines are left out, and so are bundle parents' lines (expanded, never merged).
struct VariantIndex<'r> {
    roles: &'r Roles,
    lines: Groups,
}

impl<'r> VariantIndex<'r> {
    fn new(lines: &[ReadLine<'_>], roles: &'r Roles) -> Self {
        let mut free_components = Vec::with_capacity(lines.len());
        free_components.extend(lines.iter().enumerate().filter_map(
            |(index, line)| match line.role {
                Role::Component(group) if !line.used => Some((group, index)),
                _ => None,
            },
        ));
        VariantIndex {
            roles,
            lines: Groups::new(roles.n_groups, &free_components),
        }
    }

    fn of(&self, definition: usize) -> DefinitionLines<'_> {
        DefinitionLines {
            index: self,
            definition,
        }
    }

    /// The lines of component `component` of definition `definition` (positions in their
    /// lists), in cart order; empty when the cart has none.
    fn lines(&self, definition: usize, component: usize) -> &[usize] {
        match self.roles.group(definition, component) {
            Some(group) => self.lines.get(group),
            None => &[],
        }
    }
}

/// The lines of one definition's components (see [`VariantIndex::lines`]).
#[derive(Clone, Copy)]
struct DefinitionLines<'i> {
    index: &'i VariantIndex<'i>,
    definition: usize,
}

impl DefinitionLines<'_> {
    fn lines(&self, component: usize) -> &[usize] {
        self.index.lines(self.definition, component)
    }
}

/// What every merge candidate is decided with.
struct MergeSetup {
    policy: BundlePolicy,
    conversion: Conversion,
    /// The decrease this shopper gets before the guard.
    bps: Bps,
}

/// Policy, rate, holdout, profile and customer type; `None` (with the reason recorded) when no
/// merge may happen in this run.
fn merge_setup(
    request: &BundleRequest,
    presentment: Currency,
    reasons: &mut Vec<Reason>,
) -> Option<MergeSetup> {
    let policy = match &request.policy {
        PolicySource::Missing => {
            reasons.push(reason(
                ReasonCode::PolicyMissing,
                "",
                "no bundle policy metafield; no merges",
            ));
            return None;
        }
        PolicySource::Json(text) => parse_json(text, reasons)?,
        PolicySource::Compiled { json, compiled } => {
            match super::compiled::decode(compiled, json) {
                Ok(policy) => policy,
                Err(problem) => {
                    reasons.push(reason(
                        ReasonCode::PolicyCompiledStale,
                        "policy_compiled",
                        Detail::CompiledBundlePolicy(problem),
                    ));
                    parse_json(json, reasons)?
                }
            }
        }
    };
    if policy.line_update {
        reasons.push(reason(
            ReasonCode::BundleLineUpdateIgnored,
            "line_update",
            "this build prices bundles with linesMerge only",
        ));
    }
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

    // The same holdout and profile gates as the discount: merchants compare held-out and treated
    // shoppers once, across offers and bundles.
    if gate::held_out(policy.holdout.as_ref(), &request.holdout_key, reasons) {
        return None;
    }
    let Ok(profile) = gate::profile(&request.profile, reasons) else {
        return None;
    };

    let orders = request.customer.number_of_orders;
    let is_new = matches!(orders, None | Some(0));
    let eligible = match policy.discount.customer {
        CustomerType::Any => true,
        CustomerType::New => is_new,
        CustomerType::Returning => !is_new,
    };
    let bps = if eligible {
        policy.discount.for_profile(profile.as_ref())
    } else {
        reasons.push(reason(
            ReasonCode::CustomerTypeNotEligible,
            "discount.customer",
            "no bundle discount for this shopper",
        ));
        0
    };
    Some(MergeSetup {
        policy,
        conversion,
        bps,
    })
}

/// The bundle policy JSON, with the reason when it is unusable.
fn parse_json(text: &str, reasons: &mut Vec<Reason>) -> Option<BundlePolicy> {
    let parsed = parse_bundle_policy(text);
    reasons.extend(parsed.reasons);
    parsed.policy
}

/// A complete bundle that could be merged, with its guarded decrease.
struct Candidate {
    parent_variant_id: u64,
    sets: i64,
    /// Indices into the read lines; every one is taken whole.
    lines: Vec<usize>,
    price: Money,
    bps: Bps,
    value: Money,
}

/// One pricing of a bundle on the free lines as they were: its candidate, if complete, and the
/// reasons it wrote (why it is incomplete, cost unknown, guard), kept until a merge changes the
/// lines it was priced on.
struct Priced {
    candidate: Option<Candidate>,
    reasons: Vec<Reason>,
    /// Pricing overflowed.
    overflow: bool,
}

/// Merges complete bundles until none is left among the free lines: each round merges the most
/// valuable complete bundle (ties to the earlier definition) and prices again only the bundles
/// that share a component variant with it (the others' free lines did not change).
///
/// Rounds, rather than one pass that drops the losers of a shared line, are what make the
/// transform idempotent: a bundle that lost a line may still be complete from other lines, and a
/// re-run on the transformed cart (where the winner's lines are gone) would merge it then. After
/// the last round, no bundle is complete on the free lines, so a re-run, which sees exactly those
/// lines unmarked, merges nothing either. Merges take whole lines for the same reason: a line
/// left with spare units would be free again on the re-run.
///
/// Every pricing keeps the reasons it wrote, and they are used for the winners and, after the last
/// round, for the bundles left unmerged: a bundle is priced again only when a merge took a line of
/// one of its component variants, so its last pricing is on the final free lines, and pricing it
/// once more just to write its reasons (as an earlier version did) is not needed.
fn merge(
    definitions: &[BundleDefinition],
    roles: &Roles,
    lines: &mut [ReadLine<'_>],
    setup: &MergeSetup,
    reasons: &mut Vec<Reason>,
) -> Vec<(Merge, usize)> {
    // Per definition: its merge, and where its `bundle_merged` reason is in `reasons`.
    let mut merges: Vec<Option<(Merge, usize)>> = definitions.iter().map(|_| None).collect();
    // The lines each bundle was complete with in the first round, to name the winner that took
    // one of them when it ends unmerged.
    let mut first_round: Vec<Option<Vec<usize>>> = definitions.iter().map(|_| None).collect();
    // Which merged parent took each line.
    let mut owner: Vec<Option<u64>> = vec![None; lines.len()];
    // Lines by variant, in cart order, built once; candidates skip the lines already used.
    let by_variant = VariantIndex::new(lines, roles);
    // The bundles using each component variant: a merge can only change their candidates.
    // Only bundles that can be priced are listed: the others are never priced again anyway.
    let mut users: Vec<(usize, usize)> = Vec::new();
    // A bundle none of whose components is on a free line can never be complete and is never
    // explained (see `candidate`): most of a store's bundles, for most carts. Such bundles are
    // not priced at all, and their parent GIDs are not rendered.
    let relevant: Vec<bool> = definitions
        .iter()
        .enumerate()
        .map(|(position, d)| {
            (0..d.components.len()).any(|k| !by_variant.lines(position, k).is_empty())
        })
        .collect();
    for (position, definition) in definitions.iter().enumerate() {
        if relevant.get(position).copied().unwrap_or(false) {
            users.extend(
                (0..definition.components.len())
                    .filter_map(|k| Some((roles.group(position, k)?, position))),
            );
        }
    }
    let users = Groups::new(roles.n_groups, &users);
    let parent_gids: Vec<String> = definitions
        .iter()
        .zip(&relevant)
        .map(|(d, relevant)| {
            if *relevant {
                variant_gid(d.parent_variant_id)
            } else {
                String::new()
            }
        })
        .collect();
    // Per bundle: `None` when it must be priced (again), else its last pricing.
    let mut cache: Vec<Option<Priced>> = definitions.iter().map(|_| None).collect();
    let mut first = true;
    let mut work = Work {
        left: max_merge_visits(lines.len()),
    };
    loop {
        for (position, definition) in definitions.iter().enumerate() {
            let stale = cache.get(position).is_some_and(Option::is_none);
            if !stale || merges.get(position).is_some_and(Option::is_some) {
                continue;
            }
            let priced = if relevant.get(position).copied().unwrap_or(true) {
                let subject = parent_gids.get(position).map_or("", String::as_str);
                let priced = price(
                    definition,
                    lines,
                    by_variant.of(position),
                    setup,
                    subject,
                    &mut work,
                );
                if work.exhausted() {
                    // A round not priced to its end cannot say which bundle is best.
                    break;
                }
                priced
            } else {
                Priced {
                    candidate: None,
                    reasons: Vec::new(),
                    overflow: false,
                }
            };
            if let Some(slot) = cache.get_mut(position) {
                *slot = Some(priced);
            }
        }
        if work.exhausted() {
            break;
        }
        if first {
            first = false;
            for (slot, cached) in first_round.iter_mut().zip(&cache) {
                if let Some(Priced {
                    candidate: Some(candidate),
                    ..
                }) = cached
                {
                    *slot = Some(candidate.lines.clone());
                }
            }
        }
        let mut best: Option<(usize, Money)> = None;
        for (position, cached) in cache.iter().enumerate() {
            if let Some(Priced {
                candidate: Some(candidate),
                ..
            }) = cached
                && best.is_none_or(|(_, value)| candidate.value > value)
            {
                best = Some((position, candidate.value));
            }
        }
        let Some((position, _)) = best else {
            break;
        };
        let Some(Priced {
            candidate: Some(winner),
            reasons: its_reasons,
            ..
        }) = cache.get_mut(position).and_then(Option::take)
        else {
            break;
        };
        let subject = parent_gids.get(position).map_or("", String::as_str);
        // The winner's own reasons: cost unknown, guard reduced.
        reasons.extend(its_reasons);
        let mut merge_lines = Vec::with_capacity(winner.lines.len());
        for index in &winner.lines {
            if let Some(slot) = owner.get_mut(*index) {
                *slot = Some(winner.parent_variant_id);
            }
            if let Some(line) = lines.get_mut(*index) {
                line.used = true;
                merge_lines.push(MergeLine {
                    line_id: line.line.id.clone(),
                    quantity: line.line.quantity,
                });
            }
        }
        let reason_at = reasons.len();
        reasons.push(reason(
            ReasonCode::BundleMerged,
            subject,
            BundleDetail::Merged {
                sets: winner.sets,
                bps: winner.bps,
                price: winner.price,
                discount: winner.value,
            },
        ));
        if let Some(slot) = merges.get_mut(position) {
            let merge = Merge {
                parent_variant_id: subject.to_string(),
                sets: winner.sets,
                lines: merge_lines,
                percent_decrease_bps: winner.bps,
                price_before_minor: winner.price,
                discount_minor: winner.value,
            };
            *slot = Some((merge, reason_at));
        }
        let n_components = definitions.get(position).map_or(0, |d| d.components.len());
        for group in (0..n_components).filter_map(|k| roles.group(position, k)) {
            for user in users.get(group) {
                if let Some(slot) = cache.get_mut(*user) {
                    *slot = None;
                }
            }
        }
    }

    // Why every other bundle stayed unmerged, on the final free lines; a bundle that was complete
    // in the first round lost a line to a merge. Past the work limit only the bundles priced
    // since the last merge are explained; the others are counted.
    let mut unexplained = 0;
    for (position, definition) in definitions.iter().enumerate() {
        if merges.get(position).is_some_and(Option::is_some)
            || !relevant.get(position).copied().unwrap_or(true)
        {
            continue;
        }
        let subject = parent_gids.get(position).map_or("", String::as_str);
        // INVARIANT: every bundle left unmerged was priced after the last merge that changed its
        // lines (see above), unless the work ran out; pricing it here is only the fallback.
        let last = match cache.get_mut(position).and_then(Option::take) {
            Some(last) => last,
            None => {
                let last = price(
                    definition,
                    lines,
                    by_variant.of(position),
                    setup,
                    subject,
                    &mut work,
                );
                if work.exhausted() {
                    unexplained += 1;
                    continue;
                }
                last
            }
        };
        let mut explained = last.reasons;
        if last.overflow {
            explained.push(reason(
                ReasonCode::Overflow,
                subject,
                "while pricing the bundle; not merged",
            ));
        }
        let lost = first_round
            .get(position)
            .and_then(Option::as_ref)
            .and_then(|taken| {
                taken
                    .iter()
                    .find_map(|i| owner.get(*i).copied().flatten().map(|parent| (*i, parent)))
            });
        for explanation in explained {
            match lost {
                Some((index, parent))
                    if matches!(
                        explanation.code,
                        ReasonCode::BundleIncomplete | ReasonCode::BundleUnevenQuantities
                    ) =>
                {
                    let line_id = lines.get(index).map_or("", |l| l.line.id.as_str());
                    reasons.push(reason(
                        ReasonCode::BundleComponentShared,
                        subject,
                        BundleDetail::LostLine {
                            line_id: line_id.to_string(),
                            parent_id: variant_gid(parent),
                        },
                    ));
                }
                _ => reasons.push(explanation),
            }
        }
    }
    let merges: Vec<(Merge, usize)> = merges.into_iter().flatten().collect();
    if work.exhausted() {
        reasons.push(reason(
            ReasonCode::BundleWorkLimit,
            "bundles",
            BundleDetail::WorkLimit {
                merges: merges.len(),
                unexplained,
                max_visits: max_merge_visits(lines.len()),
            },
        ));
    }
    merges
}

/// The most cart lines the merge rounds may look at in one run, all pricings together, on a cart
/// of up to 200 lines. A bundle is priced again after every merge that takes a line of a variant
/// it shares, and each pricing walks the lines of its components: many lines of a variant that
/// many bundles share make that quadratic or worse. Fifty bundles sharing one variant, on a cart
/// with 50 lines of it, took 13.5 M instructions, over Shopify's limit of 11 M, and the run (its
/// expansions too) would have been lost. A visit costs at most about 40 instructions (measured
/// with `mw-run` on such carts, pricing overhead included), so the rounds stay under about 5 M.
/// Past the limit a run on the transformed cart may merge more (it has fewer lines to look at):
/// re-running changes nothing only for carts within it, which is every cart but such ones.
const MAX_MERGE_VISITS: usize = 120_000;

/// [`MAX_MERGE_VISITS`] scaled as Shopify scales the instruction limit with the cart's lines
/// (one more share per 200 lines, at most ten).
fn max_merge_visits(n_lines: usize) -> usize {
    MAX_MERGE_VISITS.saturating_mul((n_lines / 200).clamp(1, 10))
}

/// What is left of [`max_merge_visits`].
struct Work {
    left: usize,
}

impl Work {
    /// Takes `visits`; `false`, and nothing left, when there are not that many.
    fn spend(&mut self, visits: usize) -> bool {
        match self.left.checked_sub(visits) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }

    fn exhausted(&self) -> bool {
        self.left == 0
    }
}

/// Prices a bundle on the free lines, keeping its reasons. Past the work limit the pricing is
/// cut short and means nothing (the caller checks [`Work::exhausted`]).
#[inline(never)]
fn price(
    definition: &BundleDefinition,
    lines: &[ReadLine<'_>],
    by_variant: DefinitionLines<'_>,
    setup: &MergeSetup,
    subject: &str,
    work: &mut Work,
) -> Priced {
    let mut reasons = Vec::new();
    let (candidate, overflow) = match candidate(
        definition,
        lines,
        by_variant,
        setup,
        subject,
        &mut reasons,
        work,
    ) {
        Ok(candidate) => (candidate, false),
        Err(_) => (None, true),
    };
    Priced {
        candidate,
        reasons,
        overflow,
    }
}

fn candidate(
    definition: &BundleDefinition,
    lines: &[ReadLine<'_>],
    by_variant: DefinitionLines<'_>,
    setup: &MergeSetup,
    subject: &str,
    reasons: &mut Vec<Reason>,
    work: &mut Work,
) -> Checked<Option<Candidate>> {
    // Complete sets from whole lines: a group of `k` sets is one free line per component holding
    // exactly `k x quantity` units (the largest such `k` first, the first such line in cart
    // order). The bundle takes groups until none is left, so everything it can take goes into its
    // one merge. Whole lines only, and a rule under which removing lines never creates a group:
    // together with the rounds in `merge`, that is what makes a re-run on the transformed cart
    // find nothing new.
    //
    // Groups of different sizes never compete for a line (a line of a component holds `k x
    // quantity` units for one `k` only), so they are taken size by size, largest first, in as
    // many groups as the scarcest component allows: the groups, and their order, that taking the
    // largest remaining group one at a time gives, without searching again after each.
    // A line's units while it is free; 0 once a merge took it (a group never wants 0 units).
    let free_units = |index: usize| match lines.get(index) {
        Some(line) if !line.used => line.line.quantity,
        _ => 0,
    };
    // Each walk over the components' lines is paid for: once to search the sizes' end, once
    // more if nothing is found; three times per group size. Past the work limit the search
    // stops, and the caller drops what it found.
    let all_lines = (0..definition.components.len())
        .fold(0usize, |n, k| n.saturating_add(by_variant.lines(k).len()));
    let mut taken = Vec::new();
    let mut sets: i64 = 0;
    if let Some(first) = definition.components.first()
        && work.spend(all_lines.saturating_mul(2))
    {
        // The group sizes the first component's lines allow, largest first: each the largest
        // below the one before (a few sizes at most; a sort would cost the module several KB).
        let first_lines = by_variant.lines(0);
        let sizes_below = |below: i64| {
            first_lines
                .iter()
                .map(|&index| free_units(index))
                .filter(|units| *units > 0 && units % first.quantity == 0)
                .map(|units| units / first.quantity)
                .filter(|k| *k < below)
                .max()
        };
        // Per component: its units in a group of the current size, and how far its lines
        // have been searched.
        let n_components = definition.components.len();
        let mut wanted = vec![0i64; n_components];
        let mut cursors = vec![0usize; n_components];
        let mut below = i64::MAX;
        while let Some(k) = sizes_below(below)
            && work.spend(all_lines.saturating_mul(3))
        {
            below = k;
            let mut groups = usize::MAX;
            for (c, (component, units)) in definition.components.iter().zip(&mut wanted).enumerate()
            {
                *units = arith::checked_mul(k, component.quantity).unwrap_or(-1);
                let holding = by_variant
                    .lines(c)
                    .iter()
                    .filter(|&&i| free_units(i) == *units)
                    .count();
                groups = groups.min(holding);
            }
            if groups == 0 {
                continue;
            }
            cursors.fill(0);
            for _ in 0..groups {
                for (c, (units, cursor)) in wanted.iter().zip(&mut cursors).enumerate() {
                    // INVARIANT: each component has at least `groups` free lines holding `units`.
                    let indices = by_variant.lines(c);
                    while let Some(&index) = indices.get(*cursor) {
                        *cursor += 1;
                        if free_units(index) == *units {
                            taken.push(index);
                            break;
                        }
                    }
                }
            }
            let groups = i64::try_from(groups).map_err(|_| arith::Overflow)?;
            sets = arith::add(sets, arith::mul(k, groups)?)?;
        }
    }
    if sets == 0 {
        let mut missing = Vec::new();
        let mut counts = Vec::new();
        for (c, component) in definition.components.iter().enumerate() {
            let units: Vec<i64> = by_variant
                .lines(c)
                .iter()
                .map(|&i| free_units(i))
                .filter(|units| *units > 0)
                .collect();
            if units.is_empty() {
                missing.push(component.variant_id);
            } else {
                counts.push((component.variant_id, units, component.quantity));
            }
        }
        // A bundle none of whose components is in the cart is not worth a reason on every run.
        if missing.len() == definition.components.len() {
            return Ok(None);
        }
        let (code, detail) = if missing.is_empty() {
            (
                ReasonCode::BundleUnevenQuantities,
                BundleDetail::Uneven(counts),
            )
        } else {
            (ReasonCode::BundleIncomplete, BundleDetail::Missing(missing))
        };
        reasons.push(reason(code, subject, detail));
        return Ok(None);
    }

    // Price the chosen lines, whole.
    let guard = &setup.policy.guard;
    let (mut price, mut cost) = (0, 0);
    let mut unknown_cost_lines = Vec::new();
    for &index in &taken {
        let Some(line) = lines.get(index) else {
            continue;
        };
        let units = line.line.quantity;
        price = arith::add(price, arith::mul(line.unit_price, units)?)?;
        match unit_cost(line, setup)? {
            Some(unit_cost) => cost = arith::add(cost, arith::mul(unit_cost, units)?)?,
            None => unknown_cost_lines.push(line.line.id.as_str()),
        }
    }

    // The decrease: the shopper's value, then the guard.
    let mut bps = setup.bps;
    if !unknown_cost_lines.is_empty() && guard.unknown_cost == UnknownCost::Exclude && bps > 0 {
        reasons.push(reason(
            ReasonCode::BundleCostUnknown,
            subject,
            BundleDetail::CostUnknown(unknown_cost_lines.iter().map(|id| id.to_string()).collect()),
        ));
        bps = 0;
    }
    if bps > 0 {
        // The merged bundle is one line and the transform discounts nothing else, so it must
        // keep both the line and the order margin.
        let bundle_guard = Guard {
            min_line_margin_bps: guard.min_line_margin_bps.max(guard.min_order_margin_bps),
            ..*guard
        };
        let headroom = guard::room(price, cost, &bundle_guard)?;
        // One minor unit per set for Shopify's rounding of the percentage.
        let most_discount = arith::sub(headroom, sets)?.max(0);
        let most_bps = if price > 0 {
            arith::mul_div_floor(most_discount, BPS_ONE, price)?.min(BPS_ONE)
        } else {
            0
        };
        if most_bps < bps {
            let detail = BundleDetail::Guard {
                before: bps,
                after: most_bps,
                price,
                cost,
                headroom,
            };
            let code = if most_bps == 0 {
                ReasonCode::GuardDropped
            } else {
                ReasonCode::GuardReduced
            };
            reasons.push(reason(code, subject, detail));
            bps = most_bps;
        }
    }
    if bps == 0 && !setup.policy.merge_without_discount {
        reasons.push(reason(
            ReasonCode::BundleNotDiscounted,
            subject,
            BundleDetail::NotDiscounted { sets },
        ));
        return Ok(None);
    }
    let value = arith::bps_floor(price, bps)?;
    Ok(Some(Candidate {
        parent_variant_id: definition.parent_variant_id,
        sets,
        lines: taken,
        price,
        bps,
        value,
    }))
}

/// The unit cost of a line in presentment minor units; `None` when unknown (or unreadable, which
/// is as good as unknown for the guard). Under `unknown_cost: allow` unknown counts as 0.
fn unit_cost(line: &ReadLine<'_>, setup: &MergeSetup) -> Checked<Option<Money>> {
    let shop_cost = *line.shop_cost.get_or_init(|| match &line.line.variant {
        VariantInput::Missing => None,
        VariantInput::Text(text) => VariantData::decode(text, setup.conversion.shop.exponent)
            .ok()
            .and_then(|data| data.unit_cost_minor),
    });
    match (shop_cost, setup.policy.guard.unknown_cost) {
        (Some(cost), _) => Ok(Some(setup.conversion.to_presentment(cost)?)),
        (None, UnknownCost::Allow) => Ok(Some(0)),
        (None, UnknownCost::Exclude) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GID writer must agree with the `format!` it replaced, and the output cap's length
    /// with the GID it stands for.
    #[test]
    fn gid_writer_agrees_with_format() {
        for id in [0, 7, 9, 10, 99, 100, 44_100_000_000_123, u64::MAX] {
            assert_eq!(variant_gid(id), format!("{VARIANT_GID_PREFIX}{id}"));
            assert_eq!(variant_gid_len(id), variant_gid(id).len(), "{id}");
        }
    }
}
