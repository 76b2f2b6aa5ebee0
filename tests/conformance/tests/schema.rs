//! Every declaration in our hand-written schema subsets must exist in Shopify's published schema
//! with exactly the same type.
//!
//! The subsets drive `shopify_function`'s code generation: a field that Shopify does not have, or
//! has with another type or nullability, would compile here and break only at checkout. The
//! published schemas are reference data kept outside the repository
//! (`<workspace root>/../shared/reference/shopify/`); without them the check is skipped, loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use graphql_parser::query::{self, OperationDefinition, Selection, SelectionSet};
use graphql_parser::schema::{
    Definition, Directive, Document, InputValue, Type, TypeDefinition, parse_schema,
};

/// Our subsets (relative to the workspace root) and the published schema (file name in the
/// reference directory) each must conform to. One line per subset.
const SUBSETS: &[(&str, &str)] = &[
    (
        "extensions/offers/schema.graphql",
        "discount.schema.graphql",
    ),
    (
        "extensions/bundles/schema.graphql",
        "cart-transform.schema.graphql",
    ),
    (
        "model-pipeline/graphql/admin.graphql",
        "admin.schema.graphql",
    ),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn reference_dir() -> PathBuf {
    workspace_root().join("../shared/reference/shopify")
}

type Doc<'a> = Document<'a, String>;

fn text(value: &impl Display) -> String {
    value.to_string()
}

fn directives_text(directives: &[Directive<'_, String>]) -> Vec<String> {
    directives
        .iter()
        .map(|d| {
            let args: Vec<String> = d
                .arguments
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            format!("@{}({})", d.name, args.join(", "))
        })
        .collect()
}

/// What was checked, for the printed summary.
#[derive(Default, Debug)]
struct Counts {
    types: usize,
    fields: usize,
    arguments: usize,
    enum_values: usize,
    union_members: usize,
    input_fields: usize,
    scalars: usize,
    directives: usize,
}

/// Compares input values (field arguments or input-object fields) by name, type and default.
/// Every value the reference requires (non-null without a default) must be declared too: a query
/// without a required argument, or an output without a required input field, is invalid.
fn check_input_values(
    owner: &str,
    ours: &[InputValue<'_, String>],
    reference: &[InputValue<'_, String>],
    errors: &mut Vec<String>,
) -> usize {
    for value in ours {
        let Some(theirs) = reference.iter().find(|r| r.name == value.name) else {
            errors.push(format!("{owner}({}): not in the reference", value.name));
            continue;
        };
        if text(&value.value_type) != text(&theirs.value_type) {
            errors.push(format!(
                "{owner}({}): type {} but the reference has {}",
                value.name, value.value_type, theirs.value_type
            ));
        }
        let ours_default = value.default_value.as_ref().map(text);
        let their_default = theirs.default_value.as_ref().map(text);
        if ours_default != their_default {
            errors.push(format!(
                "{owner}({}): default {ours_default:?} but the reference has {their_default:?}",
                value.name
            ));
        }
    }
    for theirs in reference {
        let required = text(&theirs.value_type).ends_with('!') && theirs.default_value.is_none();
        if required && !ours.iter().any(|v| v.name == theirs.name) {
            errors.push(format!(
                "{owner}({}): required by the reference but not declared",
                theirs.name
            ));
        }
    }
    ours.len()
}

fn check_directives_subset(
    owner: &str,
    ours: &[Directive<'_, String>],
    reference: &[Directive<'_, String>],
    errors: &mut Vec<String>,
) {
    let theirs = directives_text(reference);
    for directive in directives_text(ours) {
        if !theirs.contains(&directive) {
            errors.push(format!(
                "{owner}: directive {directive} not in the reference"
            ));
        }
    }
}

/// Returns every difference, each naming the declaration that is wrong.
fn check(ours: &Doc<'_>, reference: &Doc<'_>) -> (Counts, Vec<String>) {
    let mut counts = Counts::default();
    let mut errors = Vec::new();
    let mut reference_types: HashMap<&str, &TypeDefinition<'_, String>> = HashMap::new();
    let mut reference_directives = HashMap::new();
    let mut reference_schema = None;
    for definition in &reference.definitions {
        match definition {
            Definition::TypeDefinition(t) => {
                reference_types.insert(type_name(t), t);
            }
            Definition::DirectiveDefinition(d) => {
                reference_directives.insert(d.name.as_str(), d);
            }
            Definition::SchemaDefinition(s) => reference_schema = Some(s),
            Definition::TypeExtension(_) => {}
        }
    }

    for definition in &ours.definitions {
        match definition {
            Definition::SchemaDefinition(schema) => {
                let Some(theirs) = reference_schema else {
                    errors.push("schema: the reference has no schema definition".to_string());
                    continue;
                };
                if (&schema.query, &schema.mutation, &schema.subscription)
                    != (&theirs.query, &theirs.mutation, &theirs.subscription)
                {
                    errors.push("schema: root operation types differ".to_string());
                }
            }
            Definition::DirectiveDefinition(directive) => {
                counts.directives += 1;
                let owner = format!("@{}", directive.name);
                let Some(theirs) = reference_directives.get(directive.name.as_str()) else {
                    errors.push(format!("{owner}: not in the reference"));
                    continue;
                };
                if directive.locations != theirs.locations
                    || directive.repeatable != theirs.repeatable
                {
                    errors.push(format!("{owner}: locations or repeatability differ"));
                }
                counts.arguments += check_input_values(
                    &owner,
                    &directive.arguments,
                    &theirs.arguments,
                    &mut errors,
                );
            }
            Definition::TypeExtension(_) => {
                errors.push("type extensions are not used in our subsets".to_string());
            }
            Definition::TypeDefinition(ours_type) => {
                counts.types += 1;
                let name = type_name(ours_type);
                let Some(theirs) = reference_types.get(name) else {
                    errors.push(format!("{name}: not in the reference"));
                    continue;
                };
                check_type(ours_type, theirs, &mut counts, &mut errors);
            }
        }
    }
    (counts, errors)
}

fn type_name<'a>(t: &'a TypeDefinition<'_, String>) -> &'a str {
    match t {
        TypeDefinition::Scalar(t) => &t.name,
        TypeDefinition::Object(t) => &t.name,
        TypeDefinition::Interface(t) => &t.name,
        TypeDefinition::Union(t) => &t.name,
        TypeDefinition::Enum(t) => &t.name,
        TypeDefinition::InputObject(t) => &t.name,
    }
}

fn check_fields(
    owner: &str,
    ours: &[graphql_parser::schema::Field<'_, String>],
    theirs: &[graphql_parser::schema::Field<'_, String>],
    counts: &mut Counts,
    errors: &mut Vec<String>,
) {
    for field in ours {
        counts.fields += 1;
        let path = format!("{owner}.{}", field.name);
        let Some(their_field) = theirs.iter().find(|f| f.name == field.name) else {
            errors.push(format!("{path}: not in the reference"));
            continue;
        };
        if text(&field.field_type) != text(&their_field.field_type) {
            errors.push(format!(
                "{path}: type {} but the reference has {}",
                field.field_type, their_field.field_type
            ));
        }
        counts.arguments +=
            check_input_values(&path, &field.arguments, &their_field.arguments, errors);
        check_directives_subset(&path, &field.directives, &their_field.directives, errors);
    }
}

fn check_type(
    ours: &TypeDefinition<'_, String>,
    theirs: &TypeDefinition<'_, String>,
    counts: &mut Counts,
    errors: &mut Vec<String>,
) {
    let name = type_name(ours);
    match (ours, theirs) {
        (TypeDefinition::Scalar(_), TypeDefinition::Scalar(_)) => counts.scalars += 1,
        (TypeDefinition::Object(o), TypeDefinition::Object(t)) => {
            for interface in &o.implements_interfaces {
                if !t.implements_interfaces.contains(interface) {
                    errors.push(format!(
                        "{name}: does not implement {interface} in the reference"
                    ));
                }
            }
            check_fields(name, &o.fields, &t.fields, counts, errors);
        }
        (TypeDefinition::Interface(o), TypeDefinition::Interface(t)) => {
            check_fields(name, &o.fields, &t.fields, counts, errors);
        }
        (TypeDefinition::Union(o), TypeDefinition::Union(t)) => {
            for member in &o.types {
                counts.union_members += 1;
                if !t.types.contains(member) {
                    errors.push(format!("{name}: member {member} not in the reference"));
                }
            }
        }
        (TypeDefinition::Enum(o), TypeDefinition::Enum(t)) => {
            for value in &o.values {
                counts.enum_values += 1;
                if !t.values.iter().any(|v| v.name == value.name) {
                    errors.push(format!(
                        "{name}.{}: enum value not in the reference",
                        value.name
                    ));
                }
            }
        }
        (TypeDefinition::InputObject(o), TypeDefinition::InputObject(t)) => {
            // `@oneOf` turns the generated Rust type from a struct into an enum, so it must match
            // both ways, not just be a subset.
            let one_of = |d: &[Directive<'_, String>]| d.iter().any(|d| d.name == "oneOf");
            if one_of(&o.directives) != one_of(&t.directives) {
                errors.push(format!("{name}: @oneOf differs from the reference"));
            }
            counts.input_fields += check_input_values(name, &o.fields, &t.fields, errors);
        }
        _ => errors.push(format!("{name}: a different kind of type in the reference")),
    }
}

#[test]
fn subsets_conform_to_the_published_schemas() {
    let reference_dir = reference_dir();
    if !reference_dir.is_dir() {
        println!(
            "SKIPPED: reference schemas not found at {}",
            reference_dir.display()
        );
        return;
    }
    let mut all_errors = Vec::new();
    for (subset, reference) in SUBSETS {
        let ours_text = std::fs::read_to_string(workspace_root().join(subset))
            .unwrap_or_else(|e| panic!("{subset}: {e}"));
        let reference_path = reference_dir.join(reference);
        let Ok(reference_text) = std::fs::read_to_string(&reference_path) else {
            println!(
                "SKIPPED: reference schema {} not found",
                reference_path.display()
            );
            continue;
        };
        let ours = parse_schema::<String>(&ours_text)
            .unwrap_or_else(|e| panic!("{subset}: not a valid schema: {e}"));
        let theirs = parse_schema::<String>(&reference_text)
            .unwrap_or_else(|e| panic!("{reference}: not a valid schema: {e}"));
        let (counts, errors) = check(&ours, &theirs);
        println!(
            "{subset} vs {reference}: {counts:?}, {} problems",
            errors.len()
        );
        all_errors.extend(errors.into_iter().map(|e| format!("{subset}: {e}")));
    }
    assert!(all_errors.is_empty(), "\n{}", all_errors.join("\n"));
}

/// The checker itself: every kind of difference is caught and named.
#[test]
fn the_check_names_every_kind_of_difference() {
    let reference = parse_schema::<String>(
        r#"
        directive @oneOf on INPUT_OBJECT
        scalar Decimal
        type Query { a: Int! b(x: String, y: Int!): String }
        enum E { A B }
        union U = Query
        input I @oneOf { p: Int q: Decimal }
        input J { r: Int! s: Boolean = false }
        "#,
    )
    .unwrap();
    let good = parse_schema::<String>(
        r#"
        directive @oneOf on INPUT_OBJECT
        scalar Decimal
        type Query { a: Int! b(y: Int!): String }
        enum E { A }
        input I @oneOf { q: Decimal }
        input J { r: Int! }
        "#,
    )
    .unwrap();
    assert_eq!(check(&good, &reference).1, Vec::<String>::new());

    let bad = parse_schema::<String>(
        r#"
        scalar Money
        type Query { a: Int b(x: Int): String c: Int }
        enum E { A C }
        union U = Query | Other
        input I { p: Int }
        input J { s: Boolean = true }
        "#,
    )
    .unwrap();
    let (_, errors) = check(&bad, &reference);
    assert_eq!(
        errors,
        [
            "Money: not in the reference",
            "Query.a: type Int but the reference has Int!",
            "Query.b(x): type Int but the reference has String",
            "Query.b(y): required by the reference but not declared",
            "Query.c: not in the reference",
            "E.C: enum value not in the reference",
            "U: member Other not in the reference",
            "I: @oneOf differs from the reference",
            "J(s): default Some(\"true\") but the reference has Some(\"false\")",
            "J(r): required by the reference but not declared",
        ]
    );
}

/// The fields (and their arguments) a query selects that `schema` does not have, starting at the
/// query root type `root`.
fn unknown_in_query(schema: &Doc<'_>, root: &str, query_text: &str) -> Vec<String> {
    let types: HashMap<&str, &TypeDefinition<'_, String>> = schema
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::TypeDefinition(t) => Some((type_name(t), t)),
            _ => None,
        })
        .collect();
    let document = query::parse_query::<String>(query_text)
        .unwrap_or_else(|e| panic!("not a valid query: {e}\n{query_text}"));
    let mut errors = Vec::new();
    for definition in &document.definitions {
        let selection = match definition {
            query::Definition::Operation(OperationDefinition::Query(q)) => &q.selection_set,
            query::Definition::Operation(OperationDefinition::SelectionSet(s)) => s,
            _ => {
                errors.push("not a query".to_string());
                continue;
            }
        };
        walk_selection(&types, root, selection, &mut errors);
    }
    errors
}

fn walk_selection(
    types: &HashMap<&str, &TypeDefinition<'_, String>>,
    on: &str,
    selection: &SelectionSet<'_, String>,
    errors: &mut Vec<String>,
) {
    let fields = match types.get(on) {
        Some(TypeDefinition::Object(o)) => &o.fields,
        Some(TypeDefinition::Interface(i)) => &i.fields,
        _ => {
            errors.push(format!("{on}: no such object type"));
            return;
        }
    };
    for item in &selection.items {
        let Selection::Field(field) = item else {
            errors.push(format!("{on}: fragments are not checked"));
            continue;
        };
        let Some(declared) = fields.iter().find(|f| f.name == field.name) else {
            errors.push(format!("{on}.{}: no such field", field.name));
            continue;
        };
        for (argument, _) in &field.arguments {
            if !declared.arguments.iter().any(|a| &a.name == argument) {
                errors.push(format!(
                    "{on}.{}({argument}:): no such argument",
                    field.name
                ));
            }
        }
        if !field.selection_set.items.is_empty() {
            let mut inner = &declared.field_type;
            let named = loop {
                match inner {
                    Type::NamedType(name) => break name,
                    Type::ListType(t) | Type::NonNullType(t) => inner = t,
                }
            };
            walk_selection(types, named, &field.selection_set, errors);
        }
    }
}

/// The settings page asks the Admin API for fields our Admin subset declares (which the test above
/// holds to the published schema). Its query is a string in the page's source.
#[test]
fn the_settings_page_queries_only_what_the_admin_subset_declares() {
    let page =
        std::fs::read_to_string(workspace_root().join("extensions/offers-settings/src/index.jsx"))
            .unwrap();
    let start = page.find("const query =").expect("the page's query");
    let rest = &page[start..];
    let open = rest.find('\'').expect("a quoted query") + 1;
    let close = open + rest[open..].find('\'').expect("the query's end");
    let query_text = &rest[open..close];
    assert!(query_text.contains("currencyCode"), "{query_text}");
    let subset =
        std::fs::read_to_string(workspace_root().join("model-pipeline/graphql/admin.graphql"))
            .unwrap();
    let schema = parse_schema::<String>(&subset).unwrap();
    assert_eq!(
        unknown_in_query(&schema, "QueryRoot", query_text),
        Vec::<String>::new()
    );
}

#[test]
fn the_query_check_names_unknown_fields_and_arguments() {
    let schema = parse_schema::<String>(
        "type QueryRoot { shop: Shop! } type Shop { name(short: Boolean): String! owner: Person } \
         type Person { email: String }",
    )
    .unwrap();
    assert_eq!(
        unknown_in_query(
            &schema,
            "QueryRoot",
            "query { shop { name(short: true) owner { email } } }"
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        unknown_in_query(
            &schema,
            "QueryRoot",
            "query { shop { name(long: true) owner { phone } } orders { id } }"
        ),
        [
            "Shop.name(long:): no such argument",
            "Person.phone: no such field",
            "QueryRoot.orders: no such field",
        ]
    );
}
