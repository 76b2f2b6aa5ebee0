//! Parses an Admin GraphQL request with `graphql-parser` and executes the root fields the
//! stand-in serves. Everything else is refused with the error GraphQL servers give for an unknown
//! field, so a client that drifts from the subset finds out here rather than against Shopify.
//!
//! Objects are resolved in two ways: seeded resources (customers, products, variants, orders,
//! line items) answer from their seed line plus `metafield`, `metafields` and their child
//! connection; every other object (payloads, `Metafield`, `BulkOperation`, user errors) is first
//! built as a complete JSON object carrying its `__typename` and then projected onto the
//! selection, which makes "a field this type does not have" a lookup miss.

use std::sync::Arc;

use graphql_parser::query::{
    Definition, Document, Field, OperationDefinition, Selection, SelectionSet, TypeCondition,
    Value as GValue, parse_query,
};
use serde_json::{Map, Value, json};

use crate::bulk;
use crate::cost::{self, CONNECTION_FIELDS, CostContext};
use crate::data::{Kind, StoreData};
use crate::functions;
use crate::metafields::{
    CompareDigest, DeleteInput, MetafieldRecord, SET_BATCH_LIMIT, SetInput, UserError,
    expand_namespace,
};
use crate::out::Out;
use crate::state::{Shared, lock};

pub type Doc = Document<'static, String>;
type GField = Field<'static, String>;
type GSelection = SelectionSet<'static, String>;

/// Input arrays longer than this are refused (Shopify's general input limit).
pub const INPUT_ARRAY_LIMIT: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
}

/// A parsed request: the document, the operation to run and its variables.
#[derive(Debug)]
pub struct Prepared {
    pub doc: Doc,
    op: usize,
    pub kind: OpKind,
    pub vars: Map<String, Value>,
}

/// A top-level GraphQL error.
#[derive(Debug, Clone, PartialEq)]
pub struct GqlError {
    pub message: String,
    pub code: Option<String>,
    pub line_column: Option<(usize, usize)>,
    pub path: Vec<String>,
    pub extra: Vec<(String, Out)>,
}

impl GqlError {
    pub fn new(message: impl Into<String>) -> GqlError {
        GqlError {
            message: message.into(),
            code: None,
            line_column: None,
            path: Vec::new(),
            extra: Vec::new(),
        }
    }

    pub fn code(mut self, code: &str) -> GqlError {
        self.code = Some(code.to_string());
        self
    }

    fn at(mut self, field: &GField, path: &[String]) -> GqlError {
        self.line_column = Some((field.position.line, field.position.column));
        self.path = path.to_vec();
        self
    }

    pub fn to_out(&self) -> Out {
        let mut fields = vec![("message".to_string(), Out::str(&self.message))];
        if let Some((line, column)) = self.line_column {
            fields.push((
                "locations".to_string(),
                Out::List(vec![Out::obj(vec![
                    ("line", Out::Int(line as i64)),
                    ("column", Out::Int(column as i64)),
                ])]),
            ));
        }
        if !self.path.is_empty() {
            fields.push((
                "path".to_string(),
                Out::List(self.path.iter().map(Out::str).collect()),
            ));
        }
        if self.code.is_some() || !self.extra.is_empty() {
            let mut extensions = Vec::new();
            if let Some(code) = &self.code {
                extensions.push(("code".to_string(), Out::str(code)));
            }
            extensions.extend(self.extra.iter().cloned());
            fields.push(("extensions".to_string(), Out::Obj(extensions)));
        }
        Out::Obj(fields)
    }
}

/// Parses `query`, picks the operation and merges the variables with their defaults.
pub fn prepare(
    query: &str,
    variables: Option<&Value>,
    operation_name: Option<&str>,
) -> Result<Prepared, GqlError> {
    let doc = parse_query::<String>(query)
        .map_err(|e| GqlError::new(format!("Parse error: {e}")).code("parseError"))?
        .into_static();
    let operations: Vec<usize> = doc
        .definitions
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d, Definition::Operation(_)))
        .map(|(i, _)| i)
        .collect();
    let op = match operation_name {
        Some(wanted) => operations
            .iter()
            .copied()
            .find(|i| operation_name_of(&doc, *i) == Some(wanted))
            .ok_or_else(|| GqlError::new(format!("No operation named \"{wanted}\"")))?,
        None => match operations.as_slice() {
            [one] => *one,
            [] => return Err(GqlError::new("No operations in query document")),
            _ => {
                return Err(GqlError::new(
                    "An operation name is required when the document has several operations",
                ));
            }
        },
    };
    let (kind, definitions) = match doc.definitions.get(op) {
        Some(Definition::Operation(OperationDefinition::Query(q))) => {
            (OpKind::Query, q.variable_definitions.as_slice())
        }
        Some(Definition::Operation(OperationDefinition::SelectionSet(_))) => {
            (OpKind::Query, &[][..])
        }
        Some(Definition::Operation(OperationDefinition::Mutation(m))) => {
            (OpKind::Mutation, m.variable_definitions.as_slice())
        }
        _ => {
            return Err(GqlError::new(
                "Subscriptions are not served by this local stand-in",
            ));
        }
    };
    let mut vars = match variables {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(GqlError::new("`variables` must be a JSON object")),
    };
    let empty = Map::new();
    for definition in definitions {
        if !vars.contains_key(&definition.name)
            && let Some(default) = &definition.default_value
            && let Some(value) = literal_to_json(default, &empty)
        {
            vars.insert(definition.name.clone(), value);
        }
    }
    Ok(Prepared {
        doc,
        op,
        kind,
        vars,
    })
}

fn operation_name_of(doc: &Doc, index: usize) -> Option<&str> {
    match doc.definitions.get(index)? {
        Definition::Operation(OperationDefinition::Query(q)) => q.name.as_deref(),
        Definition::Operation(OperationDefinition::Mutation(m)) => m.name.as_deref(),
        _ => None,
    }
}

/// Converts a GraphQL value to JSON with variables substituted; `None` when it names a variable
/// that was not provided (an absent input field, which is not the same as `null`).
fn literal_to_json(value: &GValue<'static, String>, vars: &Map<String, Value>) -> Option<Value> {
    Some(match value {
        GValue::Variable(name) => return vars.get(name).cloned(),
        GValue::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        GValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        GValue::String(s) => Value::String(s.clone()),
        GValue::Boolean(b) => Value::Bool(*b),
        GValue::Null => Value::Null,
        GValue::Enum(e) => Value::String(e.clone()),
        GValue::List(items) => Value::Array(
            items
                .iter()
                .map(|item| literal_to_json(item, vars).unwrap_or(Value::Null))
                .collect(),
        ),
        GValue::Object(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|(k, v)| literal_to_json(v, vars).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

impl Prepared {
    pub fn root_selection(&self) -> Option<&GSelection> {
        match self.doc.definitions.get(self.op)? {
            Definition::Operation(OperationDefinition::Query(q)) => Some(&q.selection_set),
            Definition::Operation(OperationDefinition::Mutation(m)) => Some(&m.selection_set),
            Definition::Operation(OperationDefinition::SelectionSet(s)) => Some(s),
            _ => None,
        }
    }

    pub fn fragment(&self, name: &str) -> Option<&Definition<'static, String>> {
        self.doc
            .definitions
            .iter()
            .find(|d| matches!(d, Definition::Fragment(f) if f.name == name))
    }

    pub fn arg(&self, field: &GField, name: &str) -> Option<Value> {
        field
            .arguments
            .iter()
            .find(|(arg, _)| arg == name)
            .and_then(|(_, value)| literal_to_json(value, &self.vars))
    }

    fn included(&self, directives: &[graphql_parser::query::Directive<'static, String>]) -> bool {
        for directive in directives {
            let condition = directive
                .arguments
                .iter()
                .find(|(name, _)| name == "if")
                .and_then(|(_, value)| literal_to_json(value, &self.vars))
                .and_then(|v| v.as_bool());
            match (directive.name.as_str(), condition) {
                ("skip", Some(true)) | ("include", Some(false)) => return false,
                _ => {}
            }
        }
        true
    }

    /// The fields of a selection set that apply to `type_name`, through fragments and
    /// `@skip`/`@include`.
    pub fn fields_for<'d>(&'d self, selection: &'d GSelection, type_name: &str) -> Vec<&'d GField> {
        let mut out = Vec::new();
        self.collect_fields(selection, type_name, &mut out, 0);
        out
    }

    fn collect_fields<'d>(
        &'d self,
        selection: &'d GSelection,
        type_name: &str,
        out: &mut Vec<&'d GField>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        for item in &selection.items {
            match item {
                Selection::Field(field) => {
                    if self.included(&field.directives) {
                        out.push(field);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.directives) {
                        continue;
                    }
                    if let Some(Definition::Fragment(fragment)) =
                        self.fragment(&spread.fragment_name)
                    {
                        let TypeCondition::On(condition) = &fragment.type_condition;
                        if type_matches(condition, type_name) {
                            self.collect_fields(&fragment.selection_set, type_name, out, depth + 1);
                        }
                    }
                }
                Selection::InlineFragment(inline) => {
                    if !self.included(&inline.directives) {
                        continue;
                    }
                    let applies = match &inline.type_condition {
                        None => true,
                        Some(TypeCondition::On(condition)) => type_matches(condition, type_name),
                    };
                    if applies {
                        self.collect_fields(&inline.selection_set, type_name, out, depth + 1);
                    }
                }
            }
        }
    }
}

impl CostContext for Prepared {
    fn fragment(&self, name: &str) -> Option<(&str, &GSelection)> {
        match Prepared::fragment(self, name)? {
            Definition::Fragment(fragment) => {
                let TypeCondition::On(condition) = &fragment.type_condition;
                Some((condition.as_str(), &fragment.selection_set))
            }
            Definition::Operation(_) => None,
        }
    }

    fn int_argument(&self, field: &GField, name: &str) -> Option<i64> {
        self.arg(field, name).and_then(|v| v.as_i64())
    }

    fn list_len_argument(&self, field: &GField, name: &str) -> Option<usize> {
        self.arg(field, name).map(|v| match v {
            Value::Array(items) => items.len(),
            Value::Null => 0,
            _ => 1,
        })
    }
}

/// Interfaces the served types implement, for fragment type conditions.
fn type_matches(condition: &str, type_name: &str) -> bool {
    if condition == type_name {
        return true;
    }
    let resource = matches!(
        type_name,
        "Customer" | "Product" | "ProductVariant" | "Order"
    );
    match condition {
        "Node" => {
            resource
                || functions::is_owner_type(type_name)
                || matches!(type_name, "LineItem" | "Metafield" | "BulkOperation")
        }
        "HasMetafields" => resource || functions::is_owner_type(type_name),
        "LegacyInteroperability" => resource,
        "HasCompareDigest" => type_name == "Metafield",
        "DisplayableError" => type_name.ends_with("UserError"),
        _ => false,
    }
}

/// What a connection lists.
#[derive(Debug, Clone)]
pub enum Item {
    Node(usize),
    Json(Value),
}

/// Children found by a bulk query inside one object: the connection field and its items.
pub struct PendingChildren<'a> {
    pub field: &'a GField,
    pub parent_gid: String,
    pub items: Vec<Item>,
}

/// One execution of a prepared operation.
pub struct Exec<'a> {
    pub shared: &'a Arc<Shared>,
    pub prepared: &'a Prepared,
    pub errors: Vec<GqlError>,
    /// Cost points to give back (connections that returned fewer nodes than asked for).
    pub refund: u64,
    /// Whether anything was written (then data is answered even next to errors).
    pub side_effects: bool,
    /// Set for bulk queries: nested connections become child lines instead of fields.
    pub bulk_children: Option<Vec<PendingChildren<'a>>>,
    /// Bulk queries allow connections two levels deep; this is the level being projected.
    pub bulk_level: usize,
    pub now: String,
}

impl<'a> Exec<'a> {
    pub fn new(shared: &'a Arc<Shared>, prepared: &'a Prepared, now: String) -> Exec<'a> {
        Exec {
            shared,
            prepared,
            errors: Vec::new(),
            refund: 0,
            side_effects: false,
            bulk_children: None,
            bulk_level: 0,
            now,
        }
    }

    fn data(&self) -> &StoreData {
        &self.shared.data
    }

    fn error(&mut self, error: GqlError) {
        self.errors.push(error);
    }

    fn unknown_field(&mut self, type_name: &str, field: &GField, path: &[String]) {
        let mut error = GqlError::new(format!(
            "Field '{}' doesn't exist on type '{type_name}'",
            field.name
        ))
        .code("undefinedField")
        .at(field, path);
        error.extra = vec![
            ("typeName".to_string(), Out::str(type_name)),
            ("fieldName".to_string(), Out::str(&field.name)),
        ];
        self.error(error);
    }

    /// Runs the operation; `Out::Obj` of the root fields.
    pub fn run(&mut self) -> Out {
        let Some(selection) = self.prepared.root_selection() else {
            return Out::Null;
        };
        let prepared = self.prepared;
        match prepared.kind {
            OpKind::Query => {
                let mut out = Vec::new();
                for field in prepared.fields_for(selection, "QueryRoot") {
                    let key = response_key(field);
                    let path = vec![key.clone()];
                    let value = self.query_root(field, &path);
                    out.push((key, value));
                }
                Out::Obj(out)
            }
            OpKind::Mutation => {
                let fields = prepared.fields_for(selection, "Mutation");
                // GraphQL validates the whole document before running any of it: a bad payload
                // selection must not leave a write behind.
                for field in &fields {
                    let path = vec![response_key(field)];
                    self.check_mutation(field, &path);
                }
                if !self.errors.is_empty() {
                    return Out::Null;
                }
                let mut out = Vec::new();
                for field in fields {
                    let key = response_key(field);
                    let path = vec![key.clone()];
                    let value = self.mutation_root(field, &path);
                    out.push((key, value));
                }
                Out::Obj(out)
            }
        }
    }

    // ----- queries -----

    fn query_root(&mut self, field: &'a GField, path: &[String]) -> Out {
        let prepared = self.prepared;
        match field.name.as_str() {
            "__typename" => Out::str("QueryRoot"),
            "customer" | "product" | "productVariant" | "order" | "node" => {
                let wanted = match field.name.as_str() {
                    "customer" => Some(Kind::Customer),
                    "product" => Some(Kind::Product),
                    "productVariant" => Some(Kind::ProductVariant),
                    "order" => Some(Kind::Order),
                    _ => None,
                };
                let Some(id) = self.string_arg(field, "id", path) else {
                    return Out::Null;
                };
                self.node_by_gid(&id, wanted, field, path)
            }
            "nodes" => {
                let ids = match prepared.arg(field, "ids") {
                    Some(Value::Array(ids)) => ids,
                    Some(Value::String(id)) => vec![Value::String(id)],
                    _ => {
                        self.error(
                            GqlError::new("Field 'nodes' is missing required arguments: ids")
                                .code("missingRequiredArguments")
                                .at(field, path),
                        );
                        return Out::Null;
                    }
                };
                if ids.len() > INPUT_ARRAY_LIMIT {
                    self.error(too_many(ids.len(), INPUT_ARRAY_LIMIT, field, path, "ids"));
                    return Out::Null;
                }
                let mut items = Vec::new();
                for (index, id) in ids.iter().enumerate() {
                    let mut item_path = path.to_vec();
                    item_path.push(index.to_string());
                    let value = match id.as_str() {
                        Some(id) => self.node_by_gid(id, None, field, &item_path),
                        None => Out::Null,
                    };
                    items.push(value);
                }
                Out::List(items)
            }
            "customers" | "products" | "orders" => {
                let Some(items) = self.root_items(field, path) else {
                    return Out::Null;
                };
                self.connection(
                    field,
                    items,
                    &format!("{}Connection", type_of_root(&field.name)),
                    path,
                )
            }
            "cartTransforms" | "shopifyFunctions" => {
                let mut items = if field.name == "cartTransforms" {
                    functions::cart_transforms(self.shared)
                } else {
                    let api_type = prepared
                        .arg(field, "apiType")
                        .and_then(|v| v.as_str().map(str::to_string));
                    functions::shopify_functions(self.shared, api_type.as_deref())
                };
                if prepared
                    .arg(field, "reverse")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false)
                {
                    items.reverse();
                }
                let type_name = if field.name == "cartTransforms" {
                    "CartTransformConnection"
                } else {
                    "ShopifyFunctionConnection"
                };
                let items = items.into_iter().map(Item::Json).collect();
                self.connection(field, items, type_name, path)
            }
            "currentBulkOperation" => {
                let kind = prepared
                    .arg(field, "type")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "QUERY".to_string());
                match bulk::current(self.shared, &kind) {
                    Some(op) => self.project_json(&op, field, path),
                    None => Out::Null,
                }
            }
            "bulkOperation" => {
                let Some(id) = self.string_arg(field, "id", path) else {
                    return Out::Null;
                };
                match bulk::get(self.shared, &id) {
                    Some(op) => self.project_json(&op, field, path),
                    None => Out::Null,
                }
            }
            "bulkOperations" => {
                let filter = prepared
                    .arg(field, "query")
                    .and_then(|v| v.as_str().map(str::to_string));
                let reverse = prepared
                    .arg(field, "reverse")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                match bulk::list(self.shared, filter.as_deref(), reverse) {
                    Ok(ops) => {
                        let items = ops.into_iter().map(Item::Json).collect();
                        self.connection(field, items, "BulkOperationConnection", path)
                    }
                    Err(message) => {
                        self.error(
                            GqlError::new(message)
                                .code("argumentInvalid")
                                .at(field, path),
                        );
                        Out::Null
                    }
                }
            }
            _ => {
                self.unknown_field("QueryRoot", field, path);
                Out::Null
            }
        }
    }

    fn string_arg(&mut self, field: &GField, name: &str, path: &[String]) -> Option<String> {
        match self.prepared.arg(field, name) {
            Some(Value::String(text)) => Some(text),
            _ => {
                self.error(
                    GqlError::new(format!(
                        "Field '{}' is missing required arguments: {name}",
                        field.name
                    ))
                    .code("missingRequiredArguments")
                    .at(field, path),
                );
                None
            }
        }
    }

    fn node_by_gid(
        &mut self,
        gid: &str,
        wanted: Option<Kind>,
        field: &'a GField,
        path: &[String],
    ) -> Out {
        if let Some(op) = bulk::get(self.shared, gid).filter(|_| wanted.is_none()) {
            return self.project_json(&op, field, path);
        }
        if let Some(owner) =
            functions::owner_json(self.shared, gid, &self.now).filter(|_| wanted.is_none())
        {
            return self.project_json(&owner, field, path);
        }
        let found = self.data().find(gid).filter(|index| {
            let kind = self.data().node(*index).map(|node| node.kind);
            wanted.is_none_or(|wanted| kind == Some(wanted))
        });
        match found {
            Some(index) => self.project(&Item::Node(index), &field.selection_set, path, field),
            None => {
                if crate::data::parse_gid(gid).is_none() {
                    self.error(
                        GqlError::new(format!("Invalid global id '{gid}'"))
                            .code("argumentLiteralsIncompatible")
                            .at(field, path),
                    );
                }
                Out::Null
            }
        }
    }

    /// The root list of `customers`, `products` or `orders`, filtered and sorted.
    pub fn root_items(&mut self, field: &GField, path: &[String]) -> Option<Vec<Item>> {
        let prepared = self.prepared;
        let data = Arc::clone(&self.shared.data);
        let list = match field.name.as_str() {
            "customers" => &data.customers,
            "products" => &data.products,
            _ => &data.orders,
        };
        if let Some(Value::String(query)) = prepared.arg(field, "query") {
            let query = query.trim();
            let supported = query.is_empty() || (field.name == "orders" && query == "status:any");
            if !supported {
                self.error(
                    GqlError::new(format!(
                        "This local stand-in (not Shopify) supports no search filter except `status:any` on orders; got `{query}`"
                    ))
                    .code("argumentInvalid")
                    .at(field, path),
                );
                return None;
            }
        }
        let sort_key = prepared
            .arg(field, "sortKey")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "ID".to_string());
        let sort_field = match sort_key.as_str() {
            "ID" => None,
            "CREATED_AT" => Some("createdAt"),
            "PROCESSED_AT" if field.name == "orders" => Some("processedAt"),
            "UPDATED_AT" => Some("updatedAt"),
            other => {
                self.error(
                    GqlError::new(format!(
                        "Sort key `{other}` is not served by this local stand-in for `{}`",
                        field.name
                    ))
                    .code("argumentInvalid")
                    .at(field, path),
                );
                return None;
            }
        };
        let mut indices = list.clone();
        let key_of = |index: &usize| {
            let node = data.node(*index);
            let text = sort_field
                .and_then(|name| node.and_then(|n| n.fields.get(name)))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            (text, node.map_or(0, |n| n.number()))
        };
        indices.sort_by_cached_key(key_of);
        if prepared
            .arg(field, "reverse")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
        {
            indices.reverse();
        }
        Some(indices.into_iter().map(Item::Node).collect())
    }

    /// Projects one item onto a selection set.
    pub fn project(
        &mut self,
        item: &Item,
        selection: &'a GSelection,
        path: &[String],
        owner_field: &GField,
    ) -> Out {
        match item {
            Item::Node(index) => self.project_node(*index, selection, path),
            Item::Json(value) => match value {
                Value::Object(map) => self.project_map(map, selection, path),
                _ => {
                    let _ = owner_field;
                    Out::Raw(value.clone())
                }
            },
        }
    }

    fn project_node(&mut self, index: usize, selection: &'a GSelection, path: &[String]) -> Out {
        let data = Arc::clone(&self.shared.data);
        let Some(node) = data.node(index) else {
            return Out::Null;
        };
        let prepared = self.prepared;
        let mut out = Vec::new();
        for field in prepared.fields_for(selection, node.kind.name()) {
            let key = response_key(field);
            let mut field_path = path.to_vec();
            field_path.push(key.clone());
            if let Some(value) = self.node_field(index, field, &field_path) {
                out.push((key, value));
            }
        }
        Out::Obj(out)
    }

    /// One field of a seeded resource; `None` when a bulk query turns it into child lines.
    fn node_field(&mut self, index: usize, field: &'a GField, path: &[String]) -> Option<Out> {
        let data = Arc::clone(&self.shared.data);
        let node = data.node(index)?;
        let name = field.name.as_str();
        Some(match name {
            "__typename" => Out::str(node.kind.name()),
            "id" => Out::str(&node.gid),
            "legacyResourceId" => Out::str(node.number().to_string()),
            "metafield" | "metafields" if node.kind.has_metafields() => {
                return self.owner_metafields(&node.gid, field, path);
            }
            _ if node.kind.child_connection() == Some(name) => {
                let items = node.children.iter().copied().map(Item::Node).collect();
                let type_name = if name == "variants" {
                    "ProductVariantConnection"
                } else {
                    "LineItemConnection"
                };
                return self.node_connection(node.gid.clone(), field, items, type_name, path);
            }
            "product"
                if node.kind == Kind::ProductVariant && !node.fields.contains_key("product") =>
            {
                match node.parent {
                    Some(parent) => self.project_node(parent, &field.selection_set, path),
                    None => Out::Null,
                }
            }
            _ => match node.fields.get(name) {
                Some(value) => self.project_value(value, field, path),
                None => {
                    self.unknown_field(node.kind.name(), field, path);
                    Out::Null
                }
            },
        })
    }

    /// `metafield(namespace:, key:)` or `metafields(first:, namespace:, keys:)` of the owner
    /// `owner_gid`; `None` when an argument error leaves the field out, or when a bulk query
    /// turns the connection into child lines.
    fn owner_metafields(
        &mut self,
        owner_gid: &str,
        field: &'a GField,
        path: &[String],
    ) -> Option<Out> {
        let prepared = self.prepared;
        if field.name == "metafield" {
            let namespace = prepared
                .arg(field, "namespace")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "$app".to_string());
            let key = self.string_arg(field, "key", path)?;
            let namespace = expand_namespace(&namespace, self.shared.app_id);
            let record = lock(&self.shared.metafields)
                .get(owner_gid, &namespace, &key)
                .cloned();
            return Some(match record {
                Some(record) => {
                    let json = metafield_json(&record);
                    self.project_json(&json, field, path)
                }
                None => Out::Null,
            });
        }
        let namespace = prepared.arg(field, "namespace").and_then(|v| {
            v.as_str()
                .map(|ns| expand_namespace(ns, self.shared.app_id))
        });
        let keys: Option<Vec<String>> = match prepared.arg(field, "keys") {
            Some(Value::Array(keys)) => Some(
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        };
        let records = lock(&self.shared.metafields).of_owner(owner_gid);
        let app_id = self.shared.app_id;
        let items: Vec<Item> = records
            .iter()
            .filter(|r| namespace.as_ref().is_none_or(|ns| &r.namespace == ns))
            .filter(|r| {
                keys.as_ref().is_none_or(|keys| {
                    keys.iter().any(|k| {
                        k.rsplit_once('.').is_some_and(|(ns, key)| {
                            expand_namespace(ns, app_id) == r.namespace && key == r.key
                        })
                    })
                })
            })
            .map(|r| Item::Json(metafield_json(r)))
            .collect();
        self.node_connection(
            owner_gid.to_string(),
            field,
            items,
            "MetafieldConnection",
            path,
        )
    }

    /// A connection inside a resource: a field in ordinary queries, child lines in bulk queries.
    fn node_connection(
        &mut self,
        parent_gid: String,
        field: &'a GField,
        items: Vec<Item>,
        type_name: &str,
        path: &[String],
    ) -> Option<Out> {
        if self.bulk_children.is_some() {
            if self.bulk_level >= 2 {
                self.error(
                    GqlError::new(
                        "Bulk queries cannot contain connections with a nesting depth greater than 2.",
                    )
                    .code("INVALID")
                    .at(field, path),
                );
                return None;
            }
            if let Some(children) = self.bulk_children.as_mut() {
                children.push(PendingChildren {
                    field,
                    parent_gid,
                    items,
                });
            }
            return None;
        }
        Some(self.connection(field, items, type_name, path))
    }

    /// Projects a seeded JSON value: objects and lists need a selection, scalars must not have one.
    fn project_value(&mut self, value: &Value, field: &'a GField, path: &[String]) -> Out {
        match value {
            Value::Null => Out::Null,
            Value::Object(map) => {
                if field.selection_set.items.is_empty() {
                    self.error(
                        GqlError::new(format!(
                            "Field must have selections (field '{}' returns an object but has no selections)",
                            field.name
                        ))
                        .code("selectionMismatch")
                        .at(field, path),
                    );
                    return Out::Null;
                }
                // A seeded `{ "id": ... }` naming a seeded resource is a reference to it.
                if let (1, Some(Value::String(gid))) = (map.len(), map.get("id"))
                    && let Some(index) = self.data().find(gid)
                {
                    return self.project_node(index, &field.selection_set, path);
                }
                self.project_map(map, &field.selection_set, path)
            }
            Value::Array(items) => Out::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let mut item_path = path.to_vec();
                        item_path.push(i.to_string());
                        self.project_value(item, field, &item_path)
                    })
                    .collect(),
            ),
            scalar => {
                if !field.selection_set.items.is_empty() {
                    self.error(
                        GqlError::new(format!(
                            "Selections can't be made on scalars (field '{}' returns a scalar but has selections)",
                            field.name
                        ))
                        .code("selectionMismatch")
                        .at(field, path),
                    );
                    return Out::Null;
                }
                Out::Raw(scalar.clone())
            }
        }
    }

    /// Projects a built object (it carries `__typename`; seed objects without one are `Object`).
    fn project_map(
        &mut self,
        map: &Map<String, Value>,
        selection: &'a GSelection,
        path: &[String],
    ) -> Out {
        let type_name = map
            .get("__typename")
            .and_then(|v| v.as_str())
            .unwrap_or("Object")
            .to_string();
        let prepared = self.prepared;
        let mut out = Vec::new();
        for field in prepared.fields_for(selection, &type_name) {
            let key = response_key(field);
            let mut field_path = path.to_vec();
            field_path.push(key.clone());
            let owner_metafields = functions::is_owner_type(&type_name)
                && matches!(field.name.as_str(), "metafield" | "metafields");
            let value = match map.get(field.name.as_str()) {
                _ if owner_metafields => {
                    let owner = map
                        .get("id")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string();
                    match self.owner_metafields(&owner, field, &field_path) {
                        Some(value) => value,
                        None => continue,
                    }
                }
                Some(value) => self.project_value(value, field, &field_path),
                None if field.name == "__typename" => Out::str(&type_name),
                None => {
                    self.unknown_field(&type_name, field, &field_path);
                    Out::Null
                }
            };
            out.push((key, value));
        }
        Out::Obj(out)
    }

    fn project_json(&mut self, value: &Value, field: &'a GField, path: &[String]) -> Out {
        self.project_value(value, field, path)
    }

    /// A connection in an ordinary query: `first`/`last`, `after`/`before`, edges, nodes, pageInfo.
    fn connection(
        &mut self,
        field: &'a GField,
        items: Vec<Item>,
        type_name: &str,
        path: &[String],
    ) -> Out {
        let prepared = self.prepared;
        let first = prepared.arg(field, "first").and_then(|v| v.as_i64());
        let last = prepared.arg(field, "last").and_then(|v| v.as_i64());
        if first.is_none() && last.is_none() {
            self.error(
                GqlError::new("you must provide one of first or last")
                    .code("argumentInvalid")
                    .at(field, path),
            );
            return Out::Null;
        }
        let cursor_index = |name: &str| {
            prepared
                .arg(field, name)
                .and_then(|v| v.as_str().and_then(parse_cursor))
        };
        let mut start = cursor_index("after").map_or(0, |i| i.saturating_add(1));
        let mut end = cursor_index("before").map_or(items.len(), |i| i.min(items.len()));
        start = start.min(end);
        if let Some(first) = first {
            end = end.min(start.saturating_add(usize::try_from(first.max(0)).unwrap_or(0)));
        }
        if let Some(last) = last {
            start = start.max(end.saturating_sub(usize::try_from(last.max(0)).unwrap_or(0)));
        }
        let page: Vec<(usize, &Item)> = items
            .iter()
            .enumerate()
            .skip(start)
            .take(end.saturating_sub(start))
            .collect();
        // Actual cost counts the nodes returned; the rest of the requested cost is refunded.
        let asked = cost::page_size(prepared, field);
        let node_cost = cost::connection_node_cost(prepared, field);
        self.refund = self.refund.saturating_add(
            asked
                .saturating_sub(page.len() as u64)
                .saturating_mul(node_cost),
        );
        let node_type = type_name.trim_end_matches("Connection").to_string();
        let mut out = Vec::new();
        for inner in prepared.fields_for(&field.selection_set, type_name) {
            let key = response_key(inner);
            let mut inner_path = path.to_vec();
            inner_path.push(key.clone());
            let value = match inner.name.as_str() {
                "__typename" => Out::str(type_name),
                "edges" => Out::List(
                    page.iter()
                        .map(|(index, item)| {
                            let mut edge = Vec::new();
                            for edge_field in prepared
                                .fields_for(&inner.selection_set, &format!("{node_type}Edge"))
                            {
                                let edge_key = response_key(edge_field);
                                let value = match edge_field.name.as_str() {
                                    "cursor" => Out::str(cursor(*index)),
                                    "node" => self.project(
                                        item,
                                        &edge_field.selection_set,
                                        &inner_path,
                                        edge_field,
                                    ),
                                    "__typename" => Out::str(format!("{node_type}Edge")),
                                    _ => {
                                        self.unknown_field(
                                            &format!("{node_type}Edge"),
                                            edge_field,
                                            &inner_path,
                                        );
                                        Out::Null
                                    }
                                };
                                edge.push((edge_key, value));
                            }
                            Out::Obj(edge)
                        })
                        .collect(),
                ),
                "nodes" => Out::List(
                    page.iter()
                        .map(|(_, item)| {
                            self.project(item, &inner.selection_set, &inner_path, inner)
                        })
                        .collect(),
                ),
                "pageInfo" => {
                    let info = json!({
                        "__typename": "PageInfo",
                        "hasNextPage": end < items.len(),
                        "hasPreviousPage": start > 0,
                        "startCursor": page.first().map(|(i, _)| cursor(*i)),
                        "endCursor": page.last().map(|(i, _)| cursor(*i)),
                    });
                    self.project_value(&info, inner, &inner_path)
                }
                _ => {
                    self.unknown_field(type_name, inner, &inner_path);
                    Out::Null
                }
            };
            out.push((key, value));
        }
        Out::Obj(out)
    }

    // ----- mutations -----

    /// Checks a mutation field's payload selection against the payload's shape before anything
    /// runs.
    fn check_mutation(&mut self, field: &'a GField, path: &[String]) {
        let Some(template) = payload_template(&field.name) else {
            self.unknown_field("Mutation", field, path);
            return;
        };
        let before = self.errors.len();
        let _ = self.project_value(&template, field, path);
        // Projection of a template only finds shape errors; keep them, nothing else ran.
        let _ = before;
    }

    fn mutation_root(&mut self, field: &'a GField, path: &[String]) -> Out {
        let payload = match field.name.as_str() {
            "metafieldsSet" => self.metafields_set(field, path),
            "metafieldsDelete" => self.metafields_delete(field, path),
            "discountAutomaticAppCreate" => {
                let input = self.prepared.arg(field, "automaticAppDiscount");
                let result = functions::discount_create(self.shared, input, &self.now);
                self.function_owner_result(result, field, path)
            }
            "discountAutomaticAppUpdate" => {
                let id = self.prepared.arg(field, "id");
                let input = self.prepared.arg(field, "automaticAppDiscount");
                let result = functions::discount_update(self.shared, id, input, &self.now);
                self.function_owner_result(result, field, path)
            }
            "cartTransformCreate" => {
                let arguments = functions::CartTransformArguments {
                    function_handle: self.prepared.arg(field, "functionHandle"),
                    function_id: self.prepared.arg(field, "functionId"),
                    block_on_failure: self.prepared.arg(field, "blockOnFailure"),
                    metafields: self.prepared.arg(field, "metafields"),
                };
                let result = functions::cart_transform_create(self.shared, arguments, &self.now);
                self.function_owner_result(result, field, path)
            }
            "bulkOperationRunQuery" => {
                let query = self.string_arg(field, "query", path);
                let group = self
                    .prepared
                    .arg(field, "groupObjects")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                query.map(|query| bulk::run_query(self.shared, &query, group, &self.now))
            }
            "bulkOperationRunMutation" => {
                let mutation = self.string_arg(field, "mutation", path);
                let upload = self.string_arg(field, "stagedUploadPath", path);
                match (mutation, upload) {
                    (Some(mutation), Some(upload)) => {
                        let client = self
                            .prepared
                            .arg(field, "clientIdentifier")
                            .and_then(|v| v.as_str().map(str::to_string));
                        Some(bulk::run_mutation(
                            self.shared,
                            &mutation,
                            &upload,
                            client,
                            &self.now,
                        ))
                    }
                    _ => None,
                }
            }
            "bulkOperationCancel" => self
                .string_arg(field, "id", path)
                .map(|id| bulk::cancel(self.shared, &id)),
            "stagedUploadsCreate" => match self.prepared.arg(field, "input") {
                Some(Value::Array(inputs)) if inputs.len() > INPUT_ARRAY_LIMIT => {
                    self.error(too_many(
                        inputs.len(),
                        INPUT_ARRAY_LIMIT,
                        field,
                        path,
                        "input",
                    ));
                    None
                }
                Some(value) => {
                    let inputs = match value {
                        Value::Array(inputs) => inputs,
                        other => vec![other],
                    };
                    Some(bulk::staged_uploads_create(self.shared, &inputs))
                }
                None => {
                    self.error(
                        GqlError::new(
                            "Field 'stagedUploadsCreate' is missing required arguments: input",
                        )
                        .code("missingRequiredArguments")
                        .at(field, path),
                    );
                    None
                }
            },
            _ => {
                self.unknown_field("Mutation", field, path);
                None
            }
        };
        match payload {
            Some(payload) => self.project_value(&payload, field, path),
            None => Out::Null,
        }
    }

    fn metafields_set(&mut self, field: &'a GField, path: &[String]) -> Option<Value> {
        let inputs = match self.prepared.arg(field, "metafields") {
            Some(Value::Array(inputs)) => inputs,
            Some(Value::Object(one)) => vec![Value::Object(one)],
            _ => {
                self.error(
                    GqlError::new(
                        "Field 'metafieldsSet' is missing required arguments: metafields",
                    )
                    .code("missingRequiredArguments")
                    .at(field, path),
                );
                self.count_rejected();
                return None;
            }
        };
        if inputs.len() > SET_BATCH_LIMIT {
            self.error(too_many(
                inputs.len(),
                SET_BATCH_LIMIT,
                field,
                path,
                "metafields",
            ));
            self.count_rejected();
            return None;
        }
        let mut coerced = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            match coerce_set_input(input) {
                Ok(input) => coerced.push(input),
                Err(problem) => {
                    self.error(
                        GqlError::new(format!(
                            "Argument 'metafields' on Field 'metafieldsSet' has an invalid value: {index}.{problem}"
                        ))
                        .code("argumentLiteralsIncompatible")
                        .at(field, path),
                    );
                    self.count_rejected();
                    return None;
                }
            }
        }
        let data = Arc::clone(&self.shared.data);
        // INVARIANT: `function_owners` is never locked while `metafields` is held.
        let function_owners = lock(&self.shared.function_owners).owner_ids();
        let owner_exists = |kind: Kind, gid: &str| {
            if kind.is_seeded() {
                data.find(gid).is_some()
            } else {
                function_owners.contains(gid)
            }
        };
        let result = lock(&self.shared.metafields).set(
            &owner_exists,
            self.shared.app_id,
            &coerced,
            &self.now,
        );
        let mut stats = lock(&self.shared.stats);
        stats.write_calls += 1;
        match result {
            Ok(written) => {
                stats.writes_applied += written.len() as u64;
                stats.duplicate_writes +=
                    written.iter().filter(|(_, a)| a.duplicate).count() as u64;
                drop(stats);
                self.side_effects = !written.is_empty();
                Some(json!({
                    "__typename": "MetafieldsSetPayload",
                    "metafields": written.iter().map(|(r, _)| metafield_json(r)).collect::<Vec<_>>(),
                    "userErrors": [],
                }))
            }
            Err(errors) => {
                stats.rejected_calls += 1;
                Some(json!({
                    "__typename": "MetafieldsSetPayload",
                    "metafields": [],
                    "userErrors": errors.iter().map(set_user_error_json).collect::<Vec<_>>(),
                }))
            }
        }
    }

    /// The payload of a discount or cart transform mutation, or its argument error.
    fn function_owner_result(
        &mut self,
        result: Result<Value, functions::ArgumentError>,
        field: &GField,
        path: &[String],
    ) -> Option<Value> {
        match result {
            Ok(payload) => {
                let created = payload
                    .as_object()
                    .and_then(|p| p.get("userErrors"))
                    .and_then(|e| e.as_array())
                    .is_some_and(|errors| errors.is_empty());
                self.side_effects |= created;
                Some(payload)
            }
            Err(error) => {
                self.error(
                    GqlError::new(error.message)
                        .code(error.code)
                        .at(field, path),
                );
                None
            }
        }
    }

    fn count_rejected(&self) {
        let mut stats = lock(&self.shared.stats);
        stats.write_calls += 1;
        stats.rejected_calls += 1;
    }

    fn metafields_delete(&mut self, field: &'a GField, path: &[String]) -> Option<Value> {
        let inputs = match self.prepared.arg(field, "metafields") {
            Some(Value::Array(inputs)) => inputs,
            Some(Value::Object(one)) => vec![Value::Object(one)],
            _ => {
                self.error(
                    GqlError::new(
                        "Field 'metafieldsDelete' is missing required arguments: metafields",
                    )
                    .code("missingRequiredArguments")
                    .at(field, path),
                );
                self.count_rejected();
                return None;
            }
        };
        if inputs.len() > INPUT_ARRAY_LIMIT {
            self.error(too_many(
                inputs.len(),
                INPUT_ARRAY_LIMIT,
                field,
                path,
                "metafields",
            ));
            self.count_rejected();
            return None;
        }
        let mut coerced = Vec::new();
        let mut user_errors = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            let text = |name: &str| input.get(name).and_then(|v| v.as_str()).map(str::to_string);
            match (text("ownerId"), text("namespace"), text("key")) {
                (Some(owner_id), Some(namespace), Some(key)) => {
                    if crate::data::parse_gid(&owner_id).is_none() {
                        user_errors.push(json!({
                            "__typename": "UserError",
                            "field": ["metafields", index.to_string(), "ownerId"],
                            "message": "Owner id is not a valid GID.",
                        }));
                    }
                    coerced.push(DeleteInput {
                        owner_id,
                        namespace,
                        key,
                    });
                }
                _ => {
                    self.error(
                        GqlError::new(format!(
                            "Argument 'metafields' on Field 'metafieldsDelete' has an invalid value: {index} needs ownerId, namespace and key"
                        ))
                        .code("argumentLiteralsIncompatible")
                        .at(field, path),
                    );
                    self.count_rejected();
                    return None;
                }
            }
        }
        let mut stats = lock(&self.shared.stats);
        stats.write_calls += 1;
        if !user_errors.is_empty() {
            stats.rejected_calls += 1;
            return Some(json!({
                "__typename": "MetafieldsDeletePayload",
                "deletedMetafields": [],
                "userErrors": user_errors,
            }));
        }
        drop(stats);
        let deleted = lock(&self.shared.metafields).delete(self.shared.app_id, &coerced);
        let n_deleted = deleted.iter().filter(|d| d.is_some()).count() as u64;
        lock(&self.shared.stats).deletes_applied += n_deleted;
        self.side_effects = n_deleted > 0;
        Some(json!({
            "__typename": "MetafieldsDeletePayload",
            "deletedMetafields": deleted.into_iter().map(|d| d.map(|(owner_id, namespace, key)| json!({
                "__typename": "MetafieldIdentifier",
                "ownerId": owner_id,
                "namespace": namespace,
                "key": key,
            }))).collect::<Vec<_>>(),
            "userErrors": [],
        }))
    }
}

fn type_of_root(root: &str) -> &'static str {
    match root {
        "customers" => "Customer",
        "products" => "Product",
        _ => "Order",
    }
}

pub fn response_key(field: &GField) -> String {
    field.alias.clone().unwrap_or_else(|| field.name.clone())
}

fn cursor(index: usize) -> String {
    format!("local:{index}")
}

fn parse_cursor(text: &str) -> Option<usize> {
    text.strip_prefix("local:")?.parse().ok()
}

fn too_many(n: usize, max: usize, field: &GField, path: &[String], argument: &str) -> GqlError {
    let mut path = path.to_vec();
    path.push(argument.to_string());
    GqlError::new(format!(
        "The input array size of {n} is greater than the maximum allowed of {max}."
    ))
    .code("MAX_INPUT_SIZE_EXCEEDED")
    .at(field, &path)
}

/// Reads one `MetafieldsSetInput`; `Err` names the field and the problem.
fn coerce_set_input(input: &Value) -> Result<SetInput, String> {
    let Value::Object(map) = input else {
        return Err(" Expected an input object".to_string());
    };
    let required = |name: &str| match map.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Null) | None => Err(format!("{name} Expected value to not be null")),
        Some(other) => Err(format!("{name} Could not coerce value {other} to String")),
    };
    let optional = |name: &str| match map.get(name) {
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(format!("{name} Could not coerce value {other} to String")),
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "ownerId" | "namespace" | "key" | "type" | "value" | "compareDigest"
        ) {
            return Err(format!("{key} Field is not defined on MetafieldsSetInput"));
        }
    }
    let compare_digest = match map.get("compareDigest") {
        None => CompareDigest::Absent,
        Some(Value::Null) => CompareDigest::Null,
        Some(Value::String(digest)) => CompareDigest::Digest(digest.clone()),
        Some(other) => {
            return Err(format!(
                "compareDigest Could not coerce value {other} to String"
            ));
        }
    };
    Ok(SetInput {
        owner_id: required("ownerId")?,
        namespace: optional("namespace")?,
        key: required("key")?,
        kind: optional("type")?,
        value: required("value")?,
        compare_digest,
    })
}

fn set_user_error_json(error: &UserError) -> Value {
    json!({
        "__typename": "MetafieldsSetUserError",
        "field": error.field,
        "message": error.message,
        "code": error.code,
        "elementIndex": error.element_index,
    })
}

/// A metafield as the `Metafield` type answers it.
pub fn metafield_json(record: &MetafieldRecord) -> Value {
    let json_value = match record.kind.as_str() {
        "json"
        | "boolean"
        | "number_integer"
        | "list.single_line_text_field"
        | "list.number_integer" => {
            serde_json::from_str(&record.value).unwrap_or(Value::String(record.value.clone()))
        }
        _ => Value::String(record.value.clone()),
    };
    json!({
        "__typename": "Metafield",
        "id": record.gid(),
        "legacyResourceId": record.id.to_string(),
        "namespace": record.namespace,
        "key": record.key,
        "value": record.value,
        "type": record.kind,
        "jsonValue": json_value,
        "compareDigest": record.compare_digest,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "ownerType": record.owner_kind.map(|k| k.owner_type()),
        "owner": { "id": record.owner_id },
        "description": null,
    })
}

/// The shape of each mutation's payload, with one element in every list, so that a selection
/// can be checked before the mutation runs.
fn payload_template(name: &str) -> Option<Value> {
    let user_error = json!({"__typename": "UserError", "field": [], "message": ""});
    let bulk_user_error = |type_name: &str| json!({"__typename": type_name, "field": [], "message": "", "code": null});
    let metafield = json!({
        "__typename": "Metafield", "id": "", "legacyResourceId": "", "namespace": "", "key": "",
        "value": "", "type": "", "jsonValue": null, "compareDigest": "", "createdAt": "",
        "updatedAt": "", "ownerType": null, "owner": {"__typename": "Node", "id": ""}, "description": null,
    });
    Some(match name {
        "metafieldsSet" => json!({
            "__typename": "MetafieldsSetPayload",
            "metafields": [metafield],
            "userErrors": [{"__typename": "MetafieldsSetUserError", "field": [], "message": "", "code": null, "elementIndex": null}],
        }),
        "metafieldsDelete" => json!({
            "__typename": "MetafieldsDeletePayload",
            "deletedMetafields": [{"__typename": "MetafieldIdentifier", "ownerId": "", "namespace": "", "key": ""}],
            "userErrors": [user_error],
        }),
        "bulkOperationRunQuery" => json!({
            "__typename": "BulkOperationRunQueryPayload",
            "bulkOperation": bulk::operation_template(),
            "userErrors": [bulk_user_error("BulkOperationUserError")],
        }),
        "bulkOperationRunMutation" => json!({
            "__typename": "BulkOperationRunMutationPayload",
            "bulkOperation": bulk::operation_template(),
            "userErrors": [bulk_user_error("BulkMutationUserError")],
        }),
        "bulkOperationCancel" => json!({
            "__typename": "BulkOperationCancelPayload",
            "bulkOperation": bulk::operation_template(),
            "userErrors": [user_error],
        }),
        "discountAutomaticAppCreate" | "discountAutomaticAppUpdate" | "cartTransformCreate" => {
            return functions::payload_template(name);
        }
        "stagedUploadsCreate" => json!({
            "__typename": "StagedUploadsCreatePayload",
            "stagedTargets": [{
                "__typename": "StagedMediaUploadTarget", "url": "", "resourceUrl": null,
                "parameters": [{"__typename": "StagedUploadParameter", "name": "", "value": ""}],
            }],
            "userErrors": [user_error],
        }),
        _ => return None,
    })
}

/// Counts connection fields anywhere in a selection (bulk queries allow at most five).
pub fn count_connections(prepared: &Prepared, selection: &GSelection) -> usize {
    cost::fields_of(prepared, selection)
        .iter()
        .map(|field| {
            usize::from(CONNECTION_FIELDS.contains(&field.name.as_str()))
                + count_connections(prepared, &field.selection_set)
        })
        .sum()
}

/// The selection of one node of a connection field (`edges { node { ... } }` or `nodes { ... }`).
pub fn connection_node_selection<'d>(
    prepared: &'d Prepared,
    field: &'d GField,
) -> Option<&'d GSelection> {
    for inner in cost::fields_of(prepared, &field.selection_set) {
        match inner.name.as_str() {
            "nodes" => return Some(&inner.selection_set),
            "edges" => {
                for edge_field in cost::fields_of(prepared, &inner.selection_set) {
                    if edge_field.name == "node" {
                        return Some(&edge_field.selection_set);
                    }
                }
            }
            _ => {}
        }
    }
    None
}
