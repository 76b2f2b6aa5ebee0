//! The details of the bundle reasons, as data (see [`crate::detail`]): a Function never formats
//! them, so the sentences below cost it no code; snapshots and the demo read them with `{}`.
//! The sentences are part of the snapshot contract.

use std::fmt;

use crate::format::FormatError;
use crate::money::{Bps, Money};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleDetail {
    /// A bundles metafield (or one bundle in it) that could not be read.
    Format(FormatError),
    /// A line attribute value set by an earlier run.
    Marker(String),
    /// A variant GID without a numeric id.
    VariantId(String),
    /// How a parent's unit price was split: `(quantity, unit price)` per part.
    Expanded {
        unit_price: Money,
        parts: Vec<(i64, Money)>,
    },
    /// A merged bundle.
    Merged {
        sets: i64,
        bps: Bps,
        price: Money,
        discount: Money,
    },
    /// A bundle's line went to another bundle's merge.
    LostLine { line_id: String, parent_id: String },
    /// Components not in the cart (variant ids).
    Missing(Vec<u64>),
    /// Per component: variant id, the quantities of its free lines, units per set.
    Uneven(Vec<(u64, Vec<i64>, i64)>),
    /// Lines without a unit cost.
    CostUnknown(Vec<String>),
    /// The guard lowered the decrease.
    Guard {
        before: Bps,
        after: Bps,
        price: Money,
        cost: Money,
        headroom: Money,
    },
    /// Complete sets left unmerged without a decrease.
    NotDiscounted { sets: i64 },
    /// Merging stopped at the work limit: how many merges were made, how many bundles were not
    /// looked at again (no reason of their own), and the limit in line visits.
    WorkLimit {
        merges: usize,
        unexplained: usize,
        max_visits: usize,
    },
    /// Operations left out for the output limit.
    OutputLimit {
        merges: usize,
        expands: usize,
        max_bytes: usize,
    },
}

fn join<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T], separator: &str) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for BundleDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleDetail::Format(error) => write!(f, "{error}"),
            BundleDetail::Marker(marker) => write!(f, "marker \"{marker}\""),
            BundleDetail::VariantId(gid) => write!(f, "variant id \"{gid}\""),
            BundleDetail::Expanded { unit_price, parts } => {
                write!(f, "{unit_price} = ")?;
                for (index, (quantity, price)) in parts.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" + ")?;
                    }
                    write!(f, "{quantity}x{price}")?;
                }
                Ok(())
            }
            BundleDetail::Merged {
                sets,
                bps,
                price,
                discount,
            } => write!(
                f,
                "{sets} set(s), {bps} bps, price {price}, discount {discount}"
            ),
            BundleDetail::LostLine { line_id, parent_id } => {
                write!(f, "{line_id} went to {parent_id}; not merged")
            }
            BundleDetail::Missing(variants) => {
                f.write_str("missing ")?;
                join(f, variants, ", ")
            }
            BundleDetail::Uneven(components) => {
                for (index, (variant, quantities, per_set)) in components.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{variant}: lines of ")?;
                    join(f, quantities, "+")?;
                    write!(f, " for {per_set} per set")?;
                }
                Ok(())
            }
            BundleDetail::CostUnknown(lines) => {
                f.write_str("no unit cost for ")?;
                join(f, lines, ", ")?;
                f.write_str("; no decrease")
            }
            BundleDetail::Guard {
                before,
                after,
                price,
                cost,
                headroom,
            } => write!(
                f,
                "{before} -> {after} bps (price {price}, cost {cost}, headroom {headroom})"
            ),
            BundleDetail::NotDiscounted { sets } => write!(
                f,
                "{sets} complete set(s) left unmerged (merge_without_discount is off)"
            ),
            BundleDetail::WorkLimit {
                merges,
                unexplained,
                max_visits,
            } => write!(
                f,
                "merging stopped after {merges} merge(s) at {max_visits} line visits; \
                 {unexplained} bundle(s) not looked at again"
            ),
            BundleDetail::OutputLimit {
                merges,
                expands,
                max_bytes,
            } => write!(
                f,
                "{merges} merge(s) and {expands} expansion(s) left out to stay under {max_bytes} \
                 bytes of operations"
            ),
        }
    }
}

impl From<BundleDetail> for crate::detail::Detail {
    fn from(detail: BundleDetail) -> Self {
        crate::detail::Detail::Bundle(detail)
    }
}
