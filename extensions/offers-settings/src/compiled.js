// The compiled form of a policy (`$app.policy_compiled`, format mwp1, defined in
// engine/src/policy/compiled.rs), written beside the JSON so that checkouts read it instead of
// parsing the JSON: about 22 K instructions instead of about 110 K. The discount Function uses it
// only when its fingerprint (byte length and xxh64 of the JSON text) matches the JSON it reads,
// and checks every value against the JSON reader's rules; but the fingerprint covers the JSON
// only, so a compiled form that keeps the rules and says something else is used as written.
// Nothing but this encoder and the engine's may write it: model-pipeline/tests/settings_policy.rs
// checks that this one writes, for every policy the page saves, what the engine's compiler writes.
import { xxh64 } from "@pacote/xxhash";

import { SEGMENTS } from "./policy.js";

const TAG = "mwp1";
const encoder = new TextEncoder();

const STRATEGY = { priority: "p", best_for_shopper: "b" };
const UNKNOWN_COST = { exclude: "x", allow: "a" };
const CUSTOMER = { any: "a", new: "n", returning: "r" };
const REWARD = {
  order_percent: ["o", ["bps"]],
  order_fixed: ["f", ["amount"]],
  lines_percent: ["l", ["bps"]],
  lines_fixed: ["u", ["amount"]],
  shipping_percent: ["s", ["bps"]],
  free_shipping: ["z", []],
  slot_percent: ["t", ["bps", "max_slots"]],
};

// `null` stands for an absent key, as in the engine.
function given(object, key) {
  const value = object?.[key];
  return value === null ? undefined : value;
}

// The first three fields of a compiled form made from `text`: the tag, and the byte length and
// xxh64 of the JSON text.
export function fingerprint(text) {
  const bytes = encoder.encode(text);
  const hash = xxh64(0)
    .update(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
    .digest("hex");
  return `${TAG},${bytes.length},${hash},`;
}

// Whether `compiled` was made from exactly `text` (what the discount Function checks before it
// uses a compiled form).
export function compiledFrom(compiled, text) {
  return typeof compiled === "string" && compiled.startsWith(fingerprint(text));
}

// The compiled form of `policy`, a policy `checkPolicy` accepts, read from exactly `text` (the
// JSON stored beside it).
export function compilePolicy(policy, text) {
  const fields = [
    fingerprint(text).slice(0, -1),
    policy.currency,
    STRATEGY[given(policy, "strategy") ?? "priority"],
  ];
  const guard = given(policy, "guard") ?? {};
  fields.push(
    String(given(guard, "min_line_margin_bps") ?? 0),
    String(given(guard, "min_order_margin_bps") ?? 0),
    String(given(guard, "assumed_stack_bps") ?? 0),
    UNKNOWN_COST[given(guard, "unknown_cost") ?? "exclude"],
  );
  const holdout = given(policy, "holdout");
  if (holdout === undefined) fields.push("-");
  else fields.push(String(given(holdout, "share_bps") ?? 0), textField(given(holdout, "salt") ?? ""));
  fields.push(String(policy.offers.length));
  for (const offer of policy.offers) {
    const eligibility = given(offer, "eligibility") ?? {};
    const reward = offer.reward;
    const [letter, figures] = REWARD[reward.kind];
    fields.push(
      textField(offer.id),
      (given(eligibility, "segments") ?? []).map((segment) => SEGMENTS.indexOf(segment)).join(""),
      optional(eligibility, "clv_min"),
      optional(eligibility, "clv_max"),
      optional(eligibility, "churn_min_bps"),
      optional(eligibility, "subtotal_min"),
      CUSTOMER[given(eligibility, "customer") ?? "any"],
      letter,
      ...figures.map((figure) => String(reward[figure])),
      optional(offer, "cap"),
      textField(offer.message),
    );
  }
  return `${fields.join(",")},`;
}

function optional(object, key) {
  const value = given(object, key);
  return value === undefined ? "-" : String(value);
}

// A text as `<UTF-8 bytes>:<text>`.
function textField(text) {
  return `${encoder.encode(text).length}:${text}`;
}
