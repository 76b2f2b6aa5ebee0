// Policies for the differential test (model-pipeline/tests/settings_policy.rs): valid policies
// with one to three random edits each, printed one per line as
//   {"text": <the policy as this page would store it, or a hand-written text it would read>,
//    "problems": [<this page's problems>], "raw": <whether the text is hand-written>,
//    "compiled": <the compiled form the page stores beside it, for a policy it saves>,
//    "classes": <the discount classes the page sets for it>}
// The Rust test stores each text the way `marginwise compile-policy` does and fails when the
// engine and this page disagree on whether it can be saved.
//
//   node tests/policy-cases.mjs [--count N] [--seed S] SEED_POLICY.json...
//
// Deterministic for a given seed. Edits stay away from what this page refuses on purpose and the
// engine takes: integers between 2^53 and 2^63 (JSON.parse has already changed them) and
// currency codes that are not ISO 4217 (the pipeline checks those against its own table).

import { readFileSync } from "node:fs";
import { argv, stdout } from "node:process";

import {
  BPS_ONE,
  CUSTOMERS,
  MAX_MARGIN_BPS,
  MAX_OFFERS,
  REWARDS,
  SEGMENTS,
  checkPolicy,
  discountClasses,
  newOffer,
  newPolicy,
  policyText,
  storedTextProblems,
} from "../src/policy.js";
import { compilePolicy } from "../src/compiled.js";

const args = argv.slice(2);
let count = 2000;
let seed = 1;
const seeds = [];
for (let i = 0; i < args.length; i += 1) {
  if (args[i] === "--count") count = Number(args[(i += 1)]);
  else if (args[i] === "--seed") seed = Number(args[(i += 1)]);
  else seeds.push(JSON.parse(readFileSync(args[i], "utf8")));
}
seeds.push(newPolicy("USD"), newPolicy("JPY"), newPolicy("KWD"));

// mulberry32: small, seeded, good enough to pick edits.
function random(state) {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const next = random(seed);
const pick = (list) => list[Math.floor(next() * list.length)];

function numbers(max) {
  return [-1, 0, 1, max - 1, max, max + 1, 1.5, 1e19, 1e21, "5", null, true, [], {}, 2 ** 53 - 1];
}

const TEXTS = [
  "",
  "   ",
  "\u3000",
  "\u00a0x",
  "\u200b",
  "\ufeff",
  "x".repeat(100),
  "x".repeat(101),
  " ".repeat(1) + "x".repeat(100),
  "\u{1f381}".repeat(100),
  "\u{1f381}".repeat(101),
  "\u1680",
  "\u2000\u200a",
  "\u2028",
  "\u2029\u202f\u205f",
  "\u3000x\u205f",
  "line\nbreak",
  "tab\there",
  "\u0085x",
  "\u007f",
  "x\ud83d",
  "Free shipping: we missed you",
  "20 % de réduction",
];
const IDS = ["", "a".repeat(64), "a".repeat(65), "a b", "é", "vip:10.a_b-c", "offer-1", 7, null];

function offers(policy) {
  return Array.isArray(policy.offers) ? policy.offers : [];
}

function someOffer(policy) {
  const list = offers(policy).filter((offer) => offer && typeof offer === "object");
  return list.length > 0 ? pick(list) : null;
}

function objectOf(offer, key) {
  if (offer[key] === null || typeof offer[key] !== "object" || Array.isArray(offer[key])) {
    offer[key] = {};
  }
  return offer[key];
}

const EDITS = [
  // A number at every place a policy holds one.
  (p) => {
    p.guard = p.guard && typeof p.guard === "object" ? p.guard : {};
    const key = pick(["min_line_margin_bps", "min_order_margin_bps", "assumed_stack_bps"]);
    p.guard[key] = pick(numbers(key === "assumed_stack_bps" ? BPS_ONE : MAX_MARGIN_BPS));
  },
  (p) => {
    p.holdout = p.holdout && typeof p.holdout === "object" ? p.holdout : {};
    p.holdout.share_bps = pick(numbers(BPS_ONE));
  },
  (p) => {
    const offer = someOffer(p);
    if (offer) offer.cap = pick(numbers(1_000_000));
  },
  (p) => {
    const offer = someOffer(p);
    if (!offer) return;
    const eligibility = objectOf(offer, "eligibility");
    const key = pick(["clv_min", "clv_max", "churn_min_bps", "subtotal_min"]);
    eligibility[key] = pick(numbers(key === "churn_min_bps" ? BPS_ONE : 50_000));
  },
  (p) => {
    const offer = someOffer(p);
    if (!offer) return;
    const reward = objectOf(offer, "reward");
    const key = pick(["bps", "amount", "max_slots"]);
    reward[key] = pick(numbers(key === "bps" ? BPS_ONE : key === "max_slots" ? 4_294_967_295 : 9000));
  },
  // Kinds, with and without the fields they take.
  (p) => {
    const offer = someOffer(p);
    if (!offer) return;
    const kind = pick([...Object.keys(REWARDS), "Free_shipping", "bogo", 3]);
    const reward = objectOf(offer, "reward");
    reward.kind = kind;
    if (next() < 0.6 && Object.hasOwn(REWARDS, kind)) {
      offer.reward = { kind };
      for (const field of REWARDS[kind].fields) {
        offer.reward[field] = field === "max_slots" ? 2 : field === "bps" ? 1500 : 500;
      }
    }
  },
  (p) => {
    const offer = someOffer(p);
    if (offer) offer.reward = pick([null, "order_percent", [], { bps: 100 }]);
  },
  // Ids and messages.
  (p) => {
    const offer = someOffer(p);
    if (!offer) return;
    const others = offers(p).filter((o) => o && o !== offer && typeof o.id === "string");
    offer.id = next() < 0.3 && others.length > 0 ? pick(others).id : pick(IDS);
  },
  (p) => {
    const offer = someOffer(p);
    if (offer) offer.message = pick([...TEXTS, null, 5]);
  },
  // Eligibility.
  (p) => {
    const offer = someOffer(p);
    if (!offer) return;
    const eligibility = objectOf(offer, "eligibility");
    eligibility.segments = pick([
      [],
      [pick(SEGMENTS)],
      [pick(SEGMENTS), pick(SEGMENTS)],
      ["vip"],
      ["New"],
      [null],
      "lapsed",
      null,
    ]);
  },
  (p) => {
    const offer = someOffer(p);
    if (offer) objectOf(offer, "eligibility").customer = pick([...CUSTOMERS, "guest", null, 1]);
  },
  (p) => {
    const offer = someOffer(p);
    if (!offer) return;
    const eligibility = objectOf(offer, "eligibility");
    eligibility.clv_min = pick([0, 100, 5000]);
    eligibility.clv_max = pick([0, 99, 100, 5000]);
  },
  (p) => {
    const offer = someOffer(p);
    if (offer) offer.eligibility = pick([null, [], "all", {}]);
  },
  // Keys nobody reads, at every level.
  (p) => {
    const targets = [p];
    if (p.guard && typeof p.guard === "object") targets.push(p.guard);
    if (p.holdout && typeof p.holdout === "object") targets.push(p.holdout);
    const offer = someOffer(p);
    if (offer) {
      targets.push(offer);
      for (const key of ["eligibility", "reward"]) {
        if (offer[key] && typeof offer[key] === "object" && !Array.isArray(offer[key])) {
          targets.push(offer[key]);
        }
      }
    }
    pick(targets)[pick(["note", "min_line_margin", "bps", "amount", "Kind", "offers"])] = pick([1, null]);
  },
  // Removing a key, required or not.
  (p) => {
    const targets = [p];
    const offer = someOffer(p);
    if (offer) targets.push(offer);
    if (offer?.reward && typeof offer.reward === "object") targets.push(offer.reward);
    const target = pick(targets);
    const keys = Object.keys(target);
    if (keys.length > 0) delete target[pick(keys)];
  },
  // Top-level fields.
  (p) => {
    p.strategy = pick(["priority", "best_for_shopper", "cheapest", null, 0]);
  },
  (p) => {
    p.guard = p.guard && typeof p.guard === "object" ? p.guard : {};
    p.guard.unknown_cost = pick(["exclude", "allow", "skip", null]);
  },
  (p) => {
    p.currency = pick(["USD", "EUR", "JPY", "KWD", "usd", "US", "EURO", 840, null]);
  },
  (p) => {
    p.version = pick([1, 2, 0, "1", null, 1.5]);
  },
  (p) => {
    const key = pick(["guard", "holdout", "offers"]);
    p[key] = pick([null, [], "x", 3, {}]);
  },
  (p) => {
    p.holdout = p.holdout && typeof p.holdout === "object" ? p.holdout : {};
    p.holdout.salt = pick(["", "2026-q4", "a,b:c", "\u00e9t\u00e9", "tab\there", "x\ud83d", 5, null]);
  },
  (p) => {
    if (Array.isArray(p.offers) && p.offers.length > 0) {
      p.offers[Math.floor(next() * p.offers.length)] = pick([null, [], "offer", 1]);
    }
  },
  // Sizes: up to and past the most offers, and past the bytes a Function reads.
  (p) => {
    if (!Array.isArray(p.offers)) p.offers = [];
    const target = pick([MAX_OFFERS - 1, MAX_OFFERS, MAX_OFFERS + 1]);
    while (p.offers.length < target) p.offers.push(newOffer(p.offers));
  },
  (p) => {
    if (!Array.isArray(p.offers)) p.offers = [];
    const target = pick([20, 24]);
    while (p.offers.length < target) p.offers.push(newOffer(p.offers));
    const long = pick(["\u{1f381}".repeat(100), "x".repeat(100), "\u00e9".repeat(100)]);
    for (const offer of p.offers) if (offer && typeof offer === "object") offer.message = long;
  },
  // Exactly at, and one byte past, what a Function reads: the salt pads the text.
  (p) => {
    p.holdout = p.holdout && typeof p.holdout === "object" ? p.holdout : {};
    p.holdout.salt = "";
    const size = new TextEncoder().encode(policyText(p)).length;
    const target = pick([9_999, 10_000, 10_001]);
    if (size < target) p.holdout.salt = "s".repeat(target - size);
  },
];

// Texts JSON.stringify never writes but a hand-set metafield may hold: a number written as a
// fraction or with an exponent, a key given twice. JSON.parse reads both without complaint.
const RAW_EDITS = [
  (text) =>
    text.replace(/"(bps|cap|share_bps|min_line_margin_bps|version|amount)":(\d+)(?=[,}])/, (_, key, n) =>
      `"${key}":${pick([`${n}.0`, `${n}e0`, `${n}E+0`, `${n}.00`])}`,
    ),
  (text) =>
    text.replace(/\{"([a-z_]+)":(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"[^"\\]*")(?=[,}])/, (_, key, value) =>
      `{"${key}":${value},"${key}":${pick([value, "0", '"x"'])}`,
    ),
];

// Edits every run makes, on the first seed, whatever the random ones pick: edges the random
// edits reach only by chance.
const slot = (p) => p.offers.find((offer) => offer?.reward?.kind === "slot_percent");
const FIXED = [
  (p) => (slot(p).reward.max_slots = 0),
  (p) => (slot(p).reward.max_slots = 1),
  (p) => (slot(p).reward.max_slots = 4_294_967_295),
  (p) => (slot(p).reward.max_slots = 4_294_967_296),
  ...["\u00a0", "\u2028", "\u2029", "\u0085", "\ufeff", "a\u2028b", "a\u00a0b", "\u180e"].map(
    (message) => (p) => (p.offers[0].message = message),
  ),
  (p) => (p.guard.min_line_margin_bps = MAX_MARGIN_BPS),
  (p) => (p.guard.min_line_margin_bps = MAX_MARGIN_BPS + 1),
  (p) => (p.offers[0].reward.bps = BPS_ONE),
  (p) => (p.offers[0].reward.bps = BPS_ONE + 1),
];
for (const edit of FIXED) {
  const policy = structuredClone(seeds[0]);
  edit(policy);
  const text = policyText(policy);
  const problems = checkPolicy(policy);
  const compiled = problems.length === 0 ? compilePolicy(policy, text) : null;
  const classes = discountClasses(policy);
  stdout.write(`${JSON.stringify({ text, problems, raw: false, compiled, classes })}\n`);
}

for (let i = 0; i < count; i += 1) {
  const policy = structuredClone(seeds[i % seeds.length]);
  const edits = 1 + Math.floor(next() * 3);
  for (let e = 0; e < edits; e += 1) pick(EDITS)(policy);
  let text = policyText(policy);
  let problems = checkPolicy(policy);
  let raw = false;
  // What the page would show for such a text read from the discount: the policy as JSON.parse
  // reads it, and what the text itself does that the engine refuses.
  if (next() < 0.15) {
    text = pick(RAW_EDITS)(text);
    problems = [...checkPolicy(JSON.parse(text)), ...storedTextProblems(text)];
    raw = true;
  }
  // What the page stores beside a policy it saves.
  const compiled = problems.length === 0 && !raw ? compilePolicy(policy, text) : null;
  const classes = discountClasses(policy);
  stdout.write(`${JSON.stringify({ text, problems, raw, compiled, classes })}\n`);
}
