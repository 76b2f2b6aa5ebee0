// The offers policy as the settings page edits it: reading the stored value, checking a policy the
// way the discount Function and `marginwise compile-policy` do, and converting between the
// policy's integers (basis points, minor units) and what a merchant types.
//
// The policy format is defined once, in engine/src/policy.rs. This file is a second reader of it,
// kept honest by model-pipeline/tests/settings_policy.rs: that test feeds thousands of policies
// made by tests/policy-cases.mjs to this checker and to the engine's own parser, and fails on any
// policy one accepts and the other refuses. Nothing here depends on the browser or on Preact.

export const POLICY_VERSION = 1;
export const NAMESPACE = "$app";
export const POLICY_KEY = "policy";
export const COMPILED_POLICY_KEY = "policy_compiled";
export const MAX_OFFERS = 24;
export const MAX_OFFER_ID_CHARS = 64;
export const MAX_MESSAGE_CHARS = 100;
// A Function reads at most this many bytes of one metafield value; a longer one arrives as null.
export const MAX_VALUE_BYTES = 10_000;
export const BPS_ONE = 10_000;
// Margin floors may exceed 100 % (a line may have to stay above twice its cost).
export const MAX_MARGIN_BPS = 100_000;
const MAX_SLOTS = 4_294_967_295;

export const STRATEGIES = ["priority", "best_for_shopper"];
export const UNKNOWN_COST = ["exclude", "allow"];
export const SEGMENTS = ["new", "active", "loyal_high_value", "at_risk", "lapsed"];
export const CUSTOMERS = ["any", "new", "returning"];

// What each reward kind takes besides `kind`, and the discount class it needs on the discount.
export const REWARDS = {
  order_percent: { fields: ["bps"], discountClass: "order" },
  order_fixed: { fields: ["amount"], discountClass: "order" },
  lines_percent: { fields: ["bps"], discountClass: "product" },
  lines_fixed: { fields: ["amount"], discountClass: "product" },
  shipping_percent: { fields: ["bps"], discountClass: "shipping" },
  free_shipping: { fields: [], discountClass: "shipping" },
  slot_percent: { fields: ["bps", "max_slots"], discountClass: "product" },
};
const REWARD_KEYS = ["kind", "bps", "amount", "max_slots"];

// The keys of each object the engine reads; any other key is refused.
export const KEYS = {
  policy: ["version", "currency", "strategy", "guard", "holdout", "offers"],
  guard: ["min_line_margin_bps", "min_order_margin_bps", "assumed_stack_bps", "unknown_cost"],
  holdout: ["share_bps", "salt"],
  offer: ["id", "eligibility", "reward", "cap", "message"],
  eligibility: ["segments", "clv_min", "clv_max", "churn_min_bps", "subtotal_min", "customer"],
};

// ISO 4217 currencies whose minor unit is not 1/100 (the engine's table, money.rs); every other
// code has two decimals. The conformance test compares this table with the engine's.
export const EXPONENT_EXCEPTIONS = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0,
  VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
};

export function isCurrencyCode(code) {
  return typeof code === "string" && /^[A-Z]{3}$/.test(code);
}

export function exponentOf(code) {
  return Object.hasOwn(EXPONENT_EXCEPTIONS, code) ? EXPONENT_EXCEPTIONS[code] : 2;
}

// Unicode White_Space, which the engine trims before deciding a message is blank.
const WHITE_SPACE =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/u;
// Unicode general category Cc (what the pipeline refuses in ids, messages and the salt).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

function typeName(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "boolean":
      return "a boolean";
    case "number":
      return Number.isSafeInteger(value) ? "a number" : "a fraction or a number beyond 64 bits";
    case "string":
      return "a string";
    default:
      return "an object";
  }
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// `null` stands for an absent key, as in the engine.
function present(object, key) {
  return Object.hasOwn(object, key) && object[key] !== null;
}

// A checker collects {path, message} pairs; `path` is the engine's subject (`offers[2].reward.bps`).
class Problems {
  constructor() {
    this.list = [];
  }
  add(path, message) {
    this.list.push({ path, message });
    return false;
  }
}

// Integers only: JSON numbers that a JavaScript number holds exactly. The engine takes integers up
// to 2^63 - 1, but a larger one than 2^53 - 1 has already lost digits when JSON.parse read it, so
// this page refuses it rather than write back a different number.
function integerIn(problems, object, key, path, min, max) {
  const value = object[key];
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return problems.add(path, `expected an integer, found ${typeName(value)}`);
  }
  if (!Number.isSafeInteger(value)) {
    return problems.add(path, `${value} is too large for this page`);
  }
  if (value < min) return problems.add(path, `${value} is below ${min}`);
  if (value > max) return problems.add(path, `${value} is above ${max}`);
  return true;
}

function knownKeys(problems, object, path, keys) {
  const unknown = Object.keys(object)
    .filter((key) => !keys.includes(key))
    .sort();
  if (unknown.length > 0) {
    return problems.add(join(path, unknown[0]), "unknown key");
  }
  return true;
}

function join(path, key) {
  return path === "" ? key : `${path}.${key}`;
}

function oneOf(problems, object, key, path, values, what) {
  const value = object[key];
  if (typeof value !== "string") {
    return problems.add(path, `expected a string, found ${typeName(value)}`);
  }
  if (!values.includes(value)) {
    return problems.add(path, `unknown ${what} "${value}" (${values.join(" | ")})`);
  }
  return true;
}

function checkGuard(problems, guard) {
  if (!isObject(guard)) {
    return problems.add("guard", `expected an object, found ${typeName(guard)}`);
  }
  if (!knownKeys(problems, guard, "guard", KEYS.guard)) return false;
  for (const [key, max] of [
    ["min_line_margin_bps", MAX_MARGIN_BPS],
    ["min_order_margin_bps", MAX_MARGIN_BPS],
    ["assumed_stack_bps", BPS_ONE],
  ]) {
    if (present(guard, key) && !integerIn(problems, guard, key, `guard.${key}`, 0, max)) {
      return false;
    }
  }
  if (present(guard, "unknown_cost")) {
    return oneOf(problems, guard, "unknown_cost", "guard.unknown_cost", UNKNOWN_COST, "value");
  }
  return true;
}

function checkHoldout(problems, holdout) {
  if (!isObject(holdout)) {
    return problems.add("holdout", `expected an object, found ${typeName(holdout)}`);
  }
  if (!knownKeys(problems, holdout, "holdout", KEYS.holdout)) return false;
  if (
    present(holdout, "share_bps") &&
    !integerIn(problems, holdout, "share_bps", "holdout.share_bps", 0, BPS_ONE)
  ) {
    return false;
  }
  if (present(holdout, "salt")) {
    if (typeof holdout.salt !== "string") {
      return problems.add("holdout.salt", `expected a string, found ${typeName(holdout.salt)}`);
    }
  }
  return true;
}

function checkEligibility(problems, eligibility, path) {
  if (!isObject(eligibility)) {
    return problems.add(path, `expected an object, found ${typeName(eligibility)}`);
  }
  if (!knownKeys(problems, eligibility, path, KEYS.eligibility)) return false;
  if (present(eligibility, "segments")) {
    const segments = eligibility.segments;
    if (!Array.isArray(segments)) {
      return problems.add(`${path}.segments`, `expected an array, found ${typeName(segments)}`);
    }
    for (const [index, segment] of segments.entries()) {
      const at = `${path}.segments[${index}]`;
      if (typeof segment !== "string") {
        return problems.add(at, `expected a string, found ${typeName(segment)}`);
      }
      if (!SEGMENTS.includes(segment)) {
        return problems.add(at, `unknown segment "${segment}"`);
      }
    }
  }
  for (const key of ["clv_min", "clv_max"]) {
    if (
      present(eligibility, key) &&
      !integerIn(problems, eligibility, key, `${path}.${key}`, 0, Number.MAX_SAFE_INTEGER)
    ) {
      return false;
    }
  }
  if (
    present(eligibility, "clv_min") &&
    present(eligibility, "clv_max") &&
    eligibility.clv_max < eligibility.clv_min
  ) {
    return problems.add(
      `${path}.clv_max`,
      `clv_max ${eligibility.clv_max} < clv_min ${eligibility.clv_min}`,
    );
  }
  if (
    present(eligibility, "churn_min_bps") &&
    !integerIn(problems, eligibility, "churn_min_bps", `${path}.churn_min_bps`, 0, BPS_ONE)
  ) {
    return false;
  }
  if (
    present(eligibility, "subtotal_min") &&
    !integerIn(
      problems,
      eligibility,
      "subtotal_min",
      `${path}.subtotal_min`,
      0,
      Number.MAX_SAFE_INTEGER,
    )
  ) {
    return false;
  }
  if (present(eligibility, "customer")) {
    return oneOf(problems, eligibility, "customer", `${path}.customer`, CUSTOMERS, "customer type");
  }
  return true;
}

function checkReward(problems, reward, path) {
  if (!isObject(reward)) {
    return problems.add(path, `expected an object, found ${typeName(reward)}`);
  }
  if (!present(reward, "kind")) return problems.add(`${path}.kind`, "missing");
  if (!oneOf(problems, reward, "kind", `${path}.kind`, Object.keys(REWARDS), "reward kind")) {
    return false;
  }
  const { fields } = REWARDS[reward.kind];
  for (const field of fields) {
    const at = `${path}.${field}`;
    if (!present(reward, field)) return problems.add(at, "missing");
    const [min, max] =
      field === "bps" ? [0, BPS_ONE] : field === "max_slots" ? [1, MAX_SLOTS] : [0, Number.MAX_SAFE_INTEGER];
    if (!integerIn(problems, reward, field, at, min, max)) return false;
  }
  // A key of another kind is refused even when it is null (the engine reads the kind's keys by
  // name, and a stray one would be a typo for a field the merchant meant to set).
  const extra = Object.keys(reward)
    .filter((key) => key !== "kind" && !fields.includes(key))
    .sort();
  if (extra.length > 0) {
    return problems.add(
      `${path}.${extra[0]}`,
      REWARD_KEYS.includes(extra[0]) ? `not used by ${reward.kind}` : "unknown key",
    );
  }
  return true;
}

function checkOffer(problems, offer, path, ids) {
  if (!isObject(offer)) {
    return problems.add(path, `expected an object, found ${typeName(offer)}`);
  }
  if (!knownKeys(problems, offer, path, KEYS.offer)) return false;
  if (!present(offer, "id")) return problems.add(`${path}.id`, "missing");
  if (typeof offer.id !== "string") {
    return problems.add(`${path}.id`, `expected a string, found ${typeName(offer.id)}`);
  }
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(offer.id)) {
    return problems.add(
      `${path}.id`,
      `an offer id is 1-${MAX_OFFER_ID_CHARS} characters of A-Z a-z 0-9 - _ . :`,
    );
  }
  if (present(offer, "eligibility") && !checkEligibility(problems, offer.eligibility, `${path}.eligibility`)) {
    return false;
  }
  if (!present(offer, "reward")) return problems.add(`${path}.reward`, "missing");
  if (!checkReward(problems, offer.reward, `${path}.reward`)) return false;
  if (present(offer, "cap") && !integerIn(problems, offer, "cap", `${path}.cap`, 0, Number.MAX_SAFE_INTEGER)) {
    return false;
  }
  const message = offer.message;
  if (!present(offer, "message")) return problems.add(`${path}.message`, "missing");
  if (typeof message !== "string") {
    return problems.add(`${path}.message`, `expected a string, found ${typeName(message)}`);
  }
  if (WHITE_SPACE.test(message)) return problems.add(`${path}.message`, "missing");
  const chars = [...message].length;
  if (chars > MAX_MESSAGE_CHARS) {
    return problems.add(`${path}.message`, `${chars} characters, at most ${MAX_MESSAGE_CHARS}`);
  }
  if (ids.has(offer.id)) return problems.add(`${path}.id`, `duplicate offer id "${offer.id}"`);
  ids.add(offer.id);
  return true;
}

// Every problem that keeps this policy from being stored for the discount Function: what the
// engine reports (a skipped offer included) and what `marginwise compile-policy` refuses on top
// (a control character, a value longer than a Function reads). An empty list means it can be saved.
// Text that is not well-formed Unicode (a lone surrogate) is refused too: the engine reads such
// a document as no policy at all.
export function checkPolicy(policy) {
  const problems = new Problems();
  if (!wellFormed(policy)) {
    // The engine reads such a text as no JSON at all, before anything else.
    problems.add("", "a text holds a lone UTF-16 surrogate");
    return problems.list;
  }
  checkDocument(problems, policy);
  // What the pipeline checks once the engine reads the policy cleanly (so do these, in its order):
  // no control character in a text the compiled form holds, and a value a Function reads whole.
  if (problems.list.length === 0) {
    const texts = [["holdout.salt", policy.holdout?.salt]];
    for (const [index, offer] of policy.offers.entries()) {
      texts.push([`offers[${index}].id`, offer.id], [`offers[${index}].message`, offer.message]);
    }
    for (const [path, text] of texts) {
      if (typeof text === "string" && CONTROL.test(text)) {
        problems.add(path, "holds a control character (a line break, a tab, ...)");
      }
    }
  }
  if (problems.list.length === 0) {
    const bytes = new TextEncoder().encode(policyText(policy)).length;
    if (bytes > MAX_VALUE_BYTES) {
      problems.add(
        "",
        `the policy is ${bytes} bytes; a Function reads at most ${MAX_VALUE_BYTES} (shorten messages or use fewer offers)`,
      );
    }
  }
  return problems.list;
}

// Whether every key and string in the value is well-formed Unicode (JSON.stringify writes a lone
// surrogate as a `\uD83D` escape, which makes the whole document unreadable to the engine).
function wellFormed(value) {
  if (typeof value === "string") return value.isWellFormed();
  if (Array.isArray(value)) return value.every(wellFormed);
  if (isObject(value)) {
    return Object.entries(value).every(([key, item]) => key.isWellFormed() && wellFormed(item));
  }
  return true;
}

function checkDocument(problems, policy) {
  if (!isObject(policy)) {
    return problems.add("", `expected an object, found ${typeName(policy)}`);
  }
  if (!present(policy, "version")) return problems.add("version", "missing");
  if (!integerIn(problems, policy, "version", "version", POLICY_VERSION, POLICY_VERSION)) {
    return false;
  }
  if (!knownKeys(problems, policy, "", KEYS.policy)) return false;
  if (!present(policy, "currency")) return problems.add("currency", "missing");
  if (typeof policy.currency !== "string") {
    return problems.add("currency", `expected a string, found ${typeName(policy.currency)}`);
  }
  if (!isCurrencyCode(policy.currency)) {
    return problems.add("currency", `unknown currency code "${policy.currency}"`);
  }
  if (present(policy, "strategy") && !oneOf(problems, policy, "strategy", "strategy", STRATEGIES, "strategy")) {
    return false;
  }
  if (present(policy, "guard") && !checkGuard(problems, policy.guard)) return false;
  if (present(policy, "holdout") && !checkHoldout(problems, policy.holdout)) return false;
  if (!present(policy, "offers")) return problems.add("offers", "missing");
  if (!Array.isArray(policy.offers)) {
    return problems.add("offers", `expected an array, found ${typeName(policy.offers)}`);
  }
  if (policy.offers.length > MAX_OFFERS) {
    problems.add("offers", `${policy.offers.length} offers, at most ${MAX_OFFERS}`);
  }
  // Unlike the checkout, which skips a bad offer and applies the rest, saving refuses the policy:
  // every offer it reads is reported, so the merchant sees them all at once.
  const ids = new Set();
  for (const [index, offer] of policy.offers.slice(0, MAX_OFFERS).entries()) {
    checkOffer(problems, offer, `offers[${index}]`, ids);
  }
  return problems.list.length === 0;
}

// The text stored in `$app.policy`: compact, keys in the order they were read.
export function policyText(policy) {
  return JSON.stringify(policy);
}

// The discount classes the policy's offers need ("product", "order", "shipping"), in that order.
export function discountClasses(policy) {
  const needed = new Set();
  for (const offer of Array.isArray(policy?.offers) ? policy.offers : []) {
    const kind = offer?.reward?.kind;
    if (Object.hasOwn(REWARDS, kind)) needed.add(REWARDS[kind].discountClass);
  }
  return ["product", "order", "shipping"].filter((name) => needed.has(name));
}

// The policy stored on the discount, from the settings API's `data.metafields`. `$app` is
// resolved to the app's own namespace (`app--<id>`) by Shopify; either spelling is accepted.
export function readStored(metafields) {
  const ours = (field) =>
    field && (field.namespace === NAMESPACE || /^app--\d+/.test(String(field.namespace)));
  const policy = (metafields ?? []).find((field) => ours(field) && field.key === POLICY_KEY);
  const compiledField = (metafields ?? []).find(
    (field) => ours(field) && field.key === COMPILED_POLICY_KEY,
  );
  const compiled = compiledField !== undefined;
  const compiledText = compiledField?.value ?? null;
  if (!policy || policy.value == null || policy.value === "") {
    return { policy: null, compiled, compiledText, error: null, textProblems: [] };
  }
  const text = String(policy.value);
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return {
      policy: null,
      compiled,
      compiledText,
      error: `not valid JSON (${error.message})`,
      text,
      textProblems: [],
    };
  }
  if (!isObject(parsed)) {
    return {
      policy: null,
      compiled,
      compiledText,
      error: `not a policy (${typeName(parsed)})`,
      text,
      textProblems: [],
    };
  }
  return {
    policy: parsed,
    compiled,
    compiledText,
    error: null,
    text,
    textProblems: storedTextProblems(text),
  };
}

// What JSON.parse smooths over in a stored text but the engine refuses: a key given twice (the
// engine refuses the object; JSON.parse keeps the last copy) and a number written as a fraction
// or with an exponent (`1000.0`, `1e3`: the engine wants integers as written). Saving rewrites
// both, so the page names them before the merchant saves. `text` must be valid JSON.
export function storedTextProblems(text) {
  const problems = [];
  const stack = []; // {keys: Set | null, path, index, key}
  let at = 0;
  const here = () => {
    const top = stack[stack.length - 1];
    if (!top) return "";
    return top.keys ? join(top.path, top.key) : `${top.path}[${top.index}]`;
  };
  while (at < text.length) {
    const c = text[at];
    if (c === "{" || c === "[") {
      stack.push({ keys: c === "{" ? new Set() : null, path: here(), index: 0, key: "" });
      at += 1;
    } else if (c === "}" || c === "]") {
      stack.pop();
      at += 1;
    } else if (c === ",") {
      const top = stack[stack.length - 1];
      if (top && !top.keys) top.index += 1;
      at += 1;
    } else if (c === '"') {
      let end = at + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const value = JSON.parse(text.slice(at, end + 1));
      at = end + 1;
      while (/\s/.test(text[at] ?? "")) at += 1;
      const top = stack[stack.length - 1];
      if (text[at] === ":" && top?.keys) {
        if (top.keys.has(value)) {
          problems.push({
            path: join(top.path, value),
            message: "repeated key (the checkout refuses it; this page keeps the last copy)",
          });
        }
        top.keys.add(value);
        top.key = value;
        at += 1;
      }
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      const literal = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(at))[0];
      if (/[.eE]/.test(literal)) {
        problems.push({
          path: here(),
          message: `${literal} is not written as an integer (the checkout refuses it; saving writes ${JSON.stringify(Number(literal))})`,
        });
      }
      at += literal.length;
    } else {
      at += 1;
    }
  }
  return problems;
}

// A holdout as it applies: none when absent or its share is 0 (the engine's `Holdout::applied`).
export function appliedHoldout(holdout) {
  if (!isObject(holdout) || !Number.isSafeInteger(holdout.share_bps) || holdout.share_bps <= 0) {
    return null;
  }
  return { share_bps: holdout.share_bps, salt: typeof holdout.salt === "string" ? holdout.salt : "" };
}

export function sameHoldout(a, b) {
  const x = appliedHoldout(a);
  const y = appliedHoldout(b);
  return x === y || (x !== null && y !== null && x.share_bps === y.share_bps && x.salt === y.salt);
}

// A new discount's policy: one offer for everyone, a guard that keeps 10 % margin on each line.
export function newPolicy(currency) {
  return {
    version: POLICY_VERSION,
    currency,
    strategy: "priority",
    guard: {
      min_line_margin_bps: 1000,
      min_order_margin_bps: 1000,
      assumed_stack_bps: 0,
      unknown_cost: "exclude",
    },
    holdout: { share_bps: 1000, salt: "" },
    offers: [newOffer([])],
  };
}

// An offer with an id not yet taken.
export function newOffer(offers) {
  const taken = new Set((offers ?? []).map((offer) => offer?.id));
  let n = (offers ?? []).length + 1;
  while (taken.has(`offer-${n}`)) n += 1;
  return {
    id: `offer-${n}`,
    eligibility: { segments: [] },
    reward: { kind: "order_percent", bps: 500 },
    message: "5% off your order",
  };
}

// The policy without the keys this page does not know (and, in each reward, the keys its kind does
// not take), so that a policy written elsewhere with a typo can be saved once the merchant agrees.
export function withoutUnknownKeys(policy) {
  const keep = (object, keys) => {
    if (!isObject(object)) return object;
    return Object.fromEntries(Object.entries(object).filter(([key]) => keys.includes(key)));
  };
  const result = keep(policy, KEYS.policy);
  if (!isObject(result)) return result;
  if (isObject(result.guard)) result.guard = keep(result.guard, KEYS.guard);
  if (isObject(result.holdout)) result.holdout = keep(result.holdout, KEYS.holdout);
  if (Array.isArray(result.offers)) {
    result.offers = result.offers.map((offer) => {
      const kept = keep(offer, KEYS.offer);
      if (!isObject(kept)) return kept;
      if (isObject(kept.eligibility)) kept.eligibility = keep(kept.eligibility, KEYS.eligibility);
      if (isObject(kept.reward)) {
        const fields = Object.hasOwn(REWARDS, kept.reward.kind) ? REWARDS[kept.reward.kind].fields : REWARD_KEYS;
        kept.reward = keep(kept.reward, ["kind", ...fields]);
      }
      return kept;
    });
  }
  return result;
}

// A reward of another kind, keeping the figures both kinds take (a percentage stays a percentage).
export function rewardOfKind(reward, kind) {
  const next = { kind };
  for (const field of REWARDS[kind]?.fields ?? []) {
    if (isObject(reward) && present(reward, field)) next[field] = reward[field];
    else next[field] = field === "max_slots" ? 1 : field === "bps" ? 500 : 0;
  }
  return next;
}

// ---- What the merchant types -----------------------------------------------------------------

// Decimal text with at most `decimals` digits after the point, as an integer scaled by 10^decimals,
// without floating point ("12.5" with 2 decimals is 1250).
function scaled(text, decimals, what) {
  const trimmed = String(text ?? "").trim();
  const match = /^(\d+)(?:\.(\d*))?$/.exec(trimmed);
  if (!match) return { error: `enter ${what}` };
  const fraction = match[2] ?? "";
  if (fraction.length > decimals) {
    return {
      error: decimals === 0 ? "whole numbers only" : `at most ${decimals} decimals`,
    };
  }
  const digits = (match[1] + fraction.padEnd(decimals, "0")).replace(/^0+(?=\d)/, "");
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) return { error: "too large" };
  return { value };
}

function unscaled(value, decimals) {
  const negative = value < 0;
  const digits = String(Math.abs(value)).padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  let fraction = decimals === 0 ? "" : digits.slice(digits.length - decimals);
  fraction = fraction.replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

// Basis points as the percentage a merchant reads: 1250 -> "12.5".
export function percentText(bps) {
  return Number.isSafeInteger(bps) ? unscaled(bps, 2) : "";
}

// A typed percentage as basis points, at most `maxBps`.
export function parsePercent(text, maxBps = BPS_ONE) {
  const result = scaled(text, 2, "a percentage such as 12.5");
  if (result.error) return result;
  if (result.value > maxBps) return { error: `at most ${percentText(maxBps)} %` };
  return result;
}

// Minor units as the amount a merchant reads in the policy's currency: 1250 USD -> "12.5".
export function moneyText(minor, currency) {
  return Number.isSafeInteger(minor) ? unscaled(minor, exponentOf(currency)) : "";
}

// A typed amount in the policy's currency as minor units.
export function parseMoney(text, currency) {
  const exponent = exponentOf(currency);
  return scaled(text, exponent, exponent === 0 ? "a whole amount" : "an amount such as 12.50");
}

// A typed whole number of at least 1 (slots).
export function parseCount(text) {
  const result = scaled(text, 0, "a whole number");
  if (result.error) return result;
  if (result.value < 1) return { error: "at least 1" };
  if (result.value > MAX_SLOTS) return { error: `at most ${MAX_SLOTS}` };
  return result;
}
