//! Every Function input query must stay within Shopify's input-query limits: at most 3,000 bytes
//! and a calculated cost of at most 30. Shopify rejects the deploy otherwise.
//!
//! Cost rules (Shopify Functions input-query limits, as summarized in PLATFORM.md): a field that
//! returns a `Metafield` costs 3 and the fields read inside it are free; `hasAnyTag`, `hasTags`,
//! `inAnyCollection` and `inCollections` cost 3; `__typename` is free; every other leaf costs 1;
//! objects and lists cost nothing themselves. Because the published docs we could check are not
//! explicit about the metafield's own subfields and `__typename`, the test also computes an upper
//! bound that charges 1 for each of those, and requires both figures to stay within 30.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;

use graphql_parser::query::{Definition, OperationDefinition, Selection, SelectionSet};
use graphql_parser::schema::{self, TypeDefinition};

const MAX_COST: u32 = 30;
const MAX_QUERY_BYTES: usize = 3_000;
const EXPENSIVE_LEAVES: &[&str] = &["hasAnyTag", "hasTags", "inAnyCollection", "inCollections"];
const METAFIELD_COST: u32 = 3;

/// Field name -> the named type it returns, per object or interface type of one schema.
struct Types(HashMap<String, HashMap<String, String>>);

fn named_type(t: &schema::Type<'_, String>) -> String {
    match t {
        schema::Type::NamedType(name) => name.clone(),
        schema::Type::ListType(inner) | schema::Type::NonNullType(inner) => named_type(inner),
    }
}

impl Types {
    fn parse(text: &str) -> Types {
        let document = schema::parse_schema::<String>(text).unwrap();
        let mut types = HashMap::new();
        for definition in document.definitions {
            let (name, fields) = match definition {
                schema::Definition::TypeDefinition(TypeDefinition::Object(o)) => (o.name, o.fields),
                schema::Definition::TypeDefinition(TypeDefinition::Interface(i)) => {
                    (i.name, i.fields)
                }
                _ => continue,
            };
            let fields = fields
                .iter()
                .map(|f| (f.name.clone(), named_type(&f.field_type)))
                .collect();
            types.insert(name, fields);
        }
        Types(types)
    }
}

/// The cost under Shopify's rules and under the upper-bound reading (see the module docs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Cost {
    shopify: u32,
    upper_bound: u32,
}

fn selection_cost(
    types: &Types,
    parent: &str,
    selections: &SelectionSet<'_, String>,
    inside_metafield: bool,
    errors: &mut Vec<String>,
) -> Cost {
    let mut cost = Cost::default();
    for selection in &selections.items {
        match selection {
            Selection::Field(field) => {
                if field.name == "__typename" {
                    cost.upper_bound += 1;
                    continue;
                }
                let Some(field_type) = types.0.get(parent).and_then(|f| f.get(&field.name)) else {
                    errors.push(format!("{parent}.{}: not in the schema subset", field.name));
                    continue;
                };
                if field_type == "Metafield" {
                    cost.shopify += METAFIELD_COST;
                    cost.upper_bound += METAFIELD_COST;
                    let inner =
                        selection_cost(types, field_type, &field.selection_set, true, errors);
                    cost.upper_bound += inner.upper_bound;
                } else if field.selection_set.items.is_empty() {
                    let leaf = if EXPENSIVE_LEAVES.contains(&field.name.as_str()) {
                        3
                    } else {
                        1
                    };
                    if !inside_metafield {
                        cost.shopify += leaf;
                    }
                    cost.upper_bound += leaf;
                } else {
                    let inner = selection_cost(
                        types,
                        field_type,
                        &field.selection_set,
                        inside_metafield,
                        errors,
                    );
                    cost.shopify += inner.shopify;
                    cost.upper_bound += inner.upper_bound;
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = match &fragment.type_condition {
                    Some(graphql_parser::query::TypeCondition::On(name)) => name.as_str(),
                    None => parent,
                };
                let inner =
                    selection_cost(types, on, &fragment.selection_set, inside_metafield, errors);
                cost.shopify += inner.shopify;
                cost.upper_bound += inner.upper_bound;
            }
            Selection::FragmentSpread(spread) => {
                errors.push(format!(
                    "fragment spread `{}` is not supported",
                    spread.fragment_name
                ));
            }
        }
    }
    cost
}

fn query_cost(schema_text: &str, query_text: &str) -> Result<Cost, Vec<String>> {
    let types = Types::parse(schema_text);
    let document =
        graphql_parser::parse_query::<String>(query_text).map_err(|e| vec![e.to_string()])?;
    let mut errors = Vec::new();
    let mut cost = Cost::default();
    for definition in &document.definitions {
        let selection_set = match definition {
            Definition::Operation(OperationDefinition::Query(q)) => &q.selection_set,
            Definition::Operation(OperationDefinition::SelectionSet(s)) => s,
            _ => {
                errors.push("only query operations are allowed".to_string());
                continue;
            }
        };
        let inner = selection_cost(&types, "Input", selection_set, false, &mut errors);
        cost.shopify += inner.shopify;
        cost.upper_bound += inner.upper_bound;
    }
    if errors.is_empty() {
        Ok(cost)
    } else {
        Err(errors)
    }
}

#[test]
fn input_queries_fit_shopify_limits() {
    let functions = common::functions();
    assert!(!functions.is_empty(), "no Function extensions found");
    let mut problems = Vec::new();
    println!(
        "{:<70} {:>6} {:>5} {:>6}",
        "input query", "bytes", "cost", "bound"
    );
    for function in &functions {
        let schema_text = std::fs::read_to_string(function.dir.join("schema.graphql")).unwrap();
        for targeting in &function.targeting {
            let path = &targeting.input_query;
            let name = path
                .strip_prefix(common::workspace_root())
                .unwrap_or(path)
                .display()
                .to_string();
            let query_text =
                std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let bytes = query_text.len();
            match query_cost(&schema_text, &query_text) {
                Ok(cost) => {
                    println!(
                        "{name:<70} {bytes:>6} {:>5} {:>6}",
                        cost.shopify, cost.upper_bound
                    );
                    if cost.shopify > MAX_COST || cost.upper_bound > MAX_COST {
                        problems.push(format!("{name}: cost {cost:?} over {MAX_COST}"));
                    }
                }
                Err(errors) => problems.extend(errors.into_iter().map(|e| format!("{name}: {e}"))),
            }
            // Counted with comments included, which is stricter than Shopify's own count.
            if bytes > MAX_QUERY_BYTES {
                problems.push(format!("{name}: {bytes} bytes, over {MAX_QUERY_BYTES}"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The cost rules themselves, on a small schema: the check can fail.
#[test]
fn cost_rules_charge_metafields_and_leaves() {
    let schema_text = r#"
        type Input { cart: Cart! shop: Shop! }
        type Cart { lines: [Line!]! }
        type Line { id: ID! quantity: Int! merchandise: Merchandise! }
        union Merchandise = Variant | Custom
        type Custom { title: String! }
        type Variant { product: Product! metafield(key: String!): Metafield }
        type Product { hasAnyTag(tags: [String!]!): Boolean! metafield(key: String!): Metafield }
        type Shop { metafield(key: String!): Metafield }
        type Metafield { value: String! type: String! }
    "#;
    let query = r#"
        query Input {
          cart { lines { id quantity merchandise { __typename ... on Variant {
            metafield(key: "a") { value type }
            product { hasAnyTag(tags: ["x"]) metafield(key: "b") { value } }
          } } } }
          shop { metafield(key: "c") { value } }
        }
    "#;
    // id 1 + quantity 1 + three metafields 3 x 3 + hasAnyTag 3 = 14; the bound adds __typename
    // and the three metafields' four subfields: 19.
    assert_eq!(
        query_cost(schema_text, query),
        Ok(Cost {
            shopify: 14,
            upper_bound: 19
        })
    );

    let many_metafields: String = (0..11)
        .map(|i| format!("m{i}: metafield(key: \"k{i}\") {{ value }} "))
        .collect();
    let over = query_cost(
        schema_text,
        &format!("query Input {{ shop {{ {many_metafields} }} }}"),
    )
    .unwrap();
    assert_eq!(over.shopify, 33);
    assert!(over.shopify > MAX_COST);

    assert_eq!(
        query_cost(schema_text, "query Input { cart { nope } }"),
        Err(vec!["Cart.nope: not in the schema subset".to_string()])
    );
}
