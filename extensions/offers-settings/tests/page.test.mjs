// The settings page rendered into a DOM (happy-dom) with a stand-in for the admin's `shopify`
// object: what it shows for a stored policy, what it saves after an edit, and what it refuses.
// Polaris elements are not defined here, so they are plain elements whose `value` the test sets
// before it sends the event the admin would.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { xxh64 } from "@pacote/xxhash";
import { Window } from "happy-dom";

import { compilePolicy } from "../src/compiled.js";
import { checkPolicy } from "../src/policy.js";

import { bundle, root } from "./support/build.mjs";

let page;
const window = new Window();

before(async () => {
  for (const name of ["window", "document", "Event", "HTMLElement", "Node", "navigator"]) {
    Object.defineProperty(globalThis, name, {
      value: name === "window" ? window : window[name],
      configurable: true,
      writable: true,
    });
  }
  // Browsers have these handler properties on every element, and Preact names the event it
  // listens for after them (`onSubmit` -> "submit"); happy-dom lacks some.
  for (const handler of ["onsubmit", "onreset", "oninput", "onchange", "onclick", "onerror"]) {
    if (!(handler in window.HTMLElement.prototype)) {
      Object.defineProperty(window.HTMLElement.prototype, handler, { value: null, writable: true });
    }
  }
  page = await import(await bundle("tests/support/harness.jsx"));
});

after(() => window.happyDOM.close());

const SAMPLE = readFileSync(join(root, "../../model-pipeline/sample/policy.json"), "utf8");
const ALL_CLASSES = ["product", "order", "shipping"];

// The admin's `shopify` object as the page uses it; `refuse` makes every metafield change fail,
// `refuseClasses` every class update.
function admin(
  metafields,
  { classes = ALL_CLASSES, refuse = null, refuseKey = null, refuseClasses = false } = {},
) {
  const calls = { changes: [], classes: [] };
  const discountClasses = { value: classes, subscribe: () => () => {} };
  const api = {
    data: { id: "gid://shopify/DiscountAutomaticApp/77", metafields },
    applyMetafieldChange: async (change) => {
      calls.changes.push(change);
      return refuse && (refuseKey === null || refuseKey === change.key)
        ? { type: "error", message: refuse }
        : { type: "success" };
    },
    discounts: {
      discountClasses,
      updateDiscountClasses: (next) => {
        calls.classes.push(next);
        if (refuseClasses) {
          return { success: false, errors: [{ type: "error", message: "not allowed", code: "x" }] };
        }
        discountClasses.value = next;
        return { success: true, value: next };
      },
    },
  };
  return { api, calls };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

async function open(metafields, options = {}) {
  const container = document.createElement("div");
  document.body.appendChild(container);
  const { api, calls } = admin(metafields, options);
  const context = { shopCurrency: "USD", bundle: null, ...options.context };
  page.mount(api, context, container);
  await settle();
  return { container, calls, api };
}

function field(container, label, nth = 0) {
  const found = [...container.querySelectorAll("[label]")].filter(
    (element) => element.getAttribute("label") === label,
  );
  assert.ok(found.length > nth, `no field labelled "${label}" (#${nth})`);
  const element = found[nth];
  // Polaris fields have a `value` property; here Preact wrote it as an attribute until the test
  // typed into the field.
  if (!("value" in element)) element.value = element.getAttribute("value");
  return element;
}

// The whole text at once (a paste).
async function type(element, text) {
  element.value = text;
  element.dispatchEvent(new Event("input"));
  await settle();
}

// Key by key into an emptied field, as a merchant types: each keystroke adds to what the field
// shows now (the page may have rewritten it) and sends an input event.
async function keys(element, text) {
  await type(element, "");
  for (const key of text) {
    element.value = `${element.value ?? ""}${key}`;
    element.dispatchEvent(new Event("input"));
    await settle();
  }
}

async function choose(element, value) {
  element.value = value;
  element.dispatchEvent(new Event("change"));
  await settle();
}

function banner(container, heading) {
  return container.querySelector(`s-banner[heading="${heading}"]`);
}

async function button(container, text, nth = 0) {
  const found = [...container.querySelectorAll("s-button")].filter(
    (element) => element.textContent.trim() === text,
  );
  assert.ok(found.length > nth, `no button "${text}"`);
  found[nth].dispatchEvent(new Event("click"));
  await settle();
}

// What the admin does when the merchant presses Save: a submit event whose waitUntil promise
// decides whether the save went through.
async function submit(container) {
  const form = container.querySelector("s-function-settings");
  let pending = Promise.resolve();
  const event = new Event("submit");
  event.waitUntil = (promise) => {
    pending = promise;
  };
  form.dispatchEvent(event);
  try {
    await pending;
    return null;
  } catch (error) {
    return error;
  } finally {
    await settle();
  }
}

async function discard(container) {
  container.querySelector("s-function-settings").dispatchEvent(new Event("reset"));
  await settle();
}

// A discount's metafields as `marginwise discount` leaves them: the policy and, for a policy it
// would store, the compiled form made from exactly that text (else a stale one).
function stored(value, namespace = "app--123") {
  let compiled = "mwp1,1,0000000000000000,";
  try {
    const policy = JSON.parse(value);
    if (checkPolicy(policy).length === 0) compiled = compilePolicy(policy, value);
  } catch {
    // Not a policy: the stale form stays.
  }
  return [
    { id: "gid://shopify/Metafield/1", namespace, key: "policy", value, type: "json" },
    {
      id: "gid://shopify/Metafield/2",
      namespace,
      key: "policy_compiled",
      value: compiled,
      type: "single_line_text_field",
    },
  ];
}

const compact = (text) => JSON.stringify(JSON.parse(text));

function savedPolicies(calls) {
  return calls.changes
    .filter((change) => change.type === "updateMetafield" && change.key === "policy")
    .map((update) => {
      assert.equal(update.namespace, "$app");
      assert.equal(update.key, "policy");
      assert.equal(update.valueType, "json");
      return JSON.parse(update.value);
    });
}

function savedPolicy(calls) {
  const all = savedPolicies(calls);
  assert.ok(all.length > 0, "the policy was not saved");
  return all[all.length - 1];
}

test("shows a stored policy's figures in the merchant's units", async () => {
  const { container } = await open(stored(compact(SAMPLE)));
  assert.equal(field(container, "Offer id").value, "vip-10");
  assert.equal(field(container, "Discount").value, "10");
  assert.equal(field(container, "Most this offer gives on one order").value, "50");
  assert.equal(field(container, "Order subtotal at least").value, "50");
  assert.equal(field(container, "Amount off").value, "5");
  assert.equal(field(container, "Line margin over cost").value, "10");
  assert.equal(field(container, "Customers held out").value, "10");
  assert.equal(field(container, "Currency of the amounts").value, "USD");
  assert.equal(container.querySelectorAll("s-heading").length, 7);
  assert.equal(container.querySelectorAll("s-banner").length, 0);
});

test("an edit is saved as the policy's integers, with its compiled form", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  await keys(field(container, "Discount"), "12.5");
  await type(field(container, "Most this offer gives on one order"), "");
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.equal(policy.offers[0].reward.bps, 1250);
  assert.equal(Object.hasOwn(policy.offers[0], "cap"), false);
  // Everything else as it was, keys in their order.
  const before = JSON.parse(SAMPLE);
  before.offers[0].reward.bps = 1250;
  delete before.offers[0].cap;
  assert.equal(JSON.stringify(policy), JSON.stringify(before));
  // The compiled form beside it, fingerprinted with exactly the text stored.
  const text = calls.changes[0].value;
  const compiled = calls.changes[1];
  assert.equal(compiled.type, "updateMetafield");
  assert.equal(compiled.namespace, "$app");
  assert.equal(compiled.key, "policy_compiled");
  assert.equal(compiled.valueType, "single_line_text_field");
  const bytes = new TextEncoder().encode(text);
  const hash = xxh64(0).update(bytes.buffer.slice(0, bytes.length)).digest("hex");
  assert.ok(compiled.value.startsWith(`mwp1,${bytes.length},${hash},USD,p,`), compiled.value);
  assert.match(compiled.value, /,o,1250,-,30:10% off for our best customers,/);
  assert.ok(banner(container, "Policy saved"));
});

test("decimals typed key by key arrive whole", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  const margin = field(container, "Line margin over cost");
  await keys(margin, "12.5");
  assert.equal(margin.value, "12.5");
  await keys(field(container, "Discount"), "0.5");
  await keys(field(container, "Most this offer gives on one order"), "12.50");
  await keys(field(container, "Amount off"), "7.05");
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.equal(policy.guard.min_line_margin_bps, 1250);
  assert.equal(policy.offers[0].reward.bps, 50);
  assert.equal(policy.offers[0].cap, 1250);
  assert.equal(policy.offers[4].reward.amount, 705);
});

test("a figure the policy cannot hold is refused, and nothing is saved", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  const discount = field(container, "Discount");
  await keys(discount, "12.345");
  assert.equal(discount.getAttribute("error"), "at most 2 decimals");
  assert.equal(discount.value, "12.345");
  const error = await submit(container);
  assert.match(String(error), /offers\[0\]\.reward\.bps: at most 2 decimals/);
  assert.equal(calls.changes.length, 0);
  assert.ok(banner(container, "Not saved"));

  await type(discount, "101");
  assert.equal(discount.getAttribute("error"), "at most 100 %");
  await type(discount, "100");
  assert.equal(discount.getAttribute("error"), null);
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).offers[0].reward.bps, 10_000);
});

test("a rule the engine refuses is refused here before it reaches a checkout", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  await type(field(container, "Offer id", 1), "vip-10");
  const error = await submit(container);
  assert.match(String(error), /offers\[1\]\.id: duplicate offer id "vip-10"/);
  assert.equal(field(container, "Offer id", 1).getAttribute("error"), 'duplicate offer id "vip-10"');
  await type(field(container, "Offer id", 1), "complete the set");
  assert.match(String(await submit(container)), /offers\[1\]\.id: an offer id is/);
  await type(field(container, "Offer id", 1), "complete-the-set");
  await type(field(container, "Message shown at checkout", 2), "x".repeat(101));
  assert.match(String(await submit(container)), /101 characters, at most 100/);
  assert.equal(calls.changes.length, 0);
});

test("amounts follow the policy currency's decimals", async () => {
  const jpy = JSON.parse(SAMPLE);
  jpy.currency = "JPY";
  let { container, calls } = await open(stored(JSON.stringify(jpy)), {
    context: { shopCurrency: "JPY" },
  });
  assert.equal(field(container, "Most this offer gives on one order").value, "5000");
  await type(field(container, "Amount off"), "5.5");
  assert.equal(field(container, "Amount off").getAttribute("error"), "whole numbers only");
  await type(field(container, "Amount off"), "700");
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).offers[4].reward.amount, 700);

  const kwd = JSON.parse(SAMPLE);
  kwd.currency = "KWD";
  ({ container, calls } = await open(stored(JSON.stringify(kwd)), {
    context: { shopCurrency: "KWD" },
  }));
  assert.equal(field(container, "Most this offer gives on one order").value, "5");
  await keys(field(container, "Amount off"), "1.234");
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).offers[4].reward.amount, 1234);
});

test("changing an offer's reward keeps only what the new kind takes", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  // A bad figure typed for the old kind does not block the new one.
  await type(field(container, "Discount"), "12.345");
  await choose(field(container, "Reward", 0), "free_shipping");
  await choose(field(container, "Reward", 1), "lines_percent");
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.deepEqual(policy.offers[0].reward, { kind: "free_shipping" });
  assert.deepEqual(policy.offers[1].reward, { kind: "lines_percent", bps: 1500 });
});

test("offers are added, moved and removed, and the discount classes follow them", async () => {
  const only = JSON.parse(SAMPLE);
  only.offers = [only.offers[0]];
  const { container, calls } = await open(stored(JSON.stringify(only)), { classes: ["order"] });
  await button(container, "Add an offer");
  await choose(field(container, "Reward", 1), "shipping_percent");
  assert.deepEqual(calls.classes, [["order", "shipping"]]);
  // A typed figure moves with its offer.
  await keys(field(container, "Discount", 1), "7.");
  await button(container, "Move up", 1);
  assert.equal(field(container, "Discount", 0).value, "7.");
  assert.equal(field(container, "Offer id", 0).value, "offer-2");
  await button(container, "Remove", 1);
  assert.deepEqual(calls.classes, [["order", "shipping"], ["shipping"]]);
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.deepEqual(
    policy.offers.map((offer) => [offer.id, offer.reward]),
    [["offer-2", { kind: "shipping_percent", bps: 700 }]],
  );
});

test("the save bar sees every change, and a save becomes the new starting point", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  const whole = () => container.querySelector('s-text-field[name="policy"]');
  const text = JSON.stringify(JSON.parse(SAMPLE));
  assert.equal(whole().getAttribute("value"), text);
  assert.equal(whole().getAttribute("defaultValue") ?? whole().defaultValue, text);
  assert.equal(field(container, "Discount").getAttribute("name"), "offers[0].reward.bps");
  await button(container, "Move down", 0);
  assert.notEqual(whole().getAttribute("value"), text);
  assert.equal(whole().getAttribute("defaultValue") ?? whole().defaultValue, text);

  await discard(container);
  assert.equal(field(container, "Offer id").value, "vip-10");
  await type(field(container, "Discount"), "11");
  assert.equal(await submit(container), null);
  assert.equal(whole().defaultValue ?? whole().getAttribute("defaultValue"), whole().getAttribute("value"));
  // Discard now goes back to what was saved, and a second save writes both again.
  await type(field(container, "Discount"), "9");
  await discard(container);
  assert.equal(field(container, "Discount").value, "11");
  assert.equal(banner(container, "Policy saved"), null);
  await type(field(container, "Discount"), "9");
  assert.equal(await submit(container), null);
  assert.deepEqual(
    calls.changes.map((change) => change.key),
    ["policy", "policy_compiled", "policy", "policy_compiled"],
  );
  assert.deepEqual(
    savedPolicies(calls).map((policy) => policy.offers[0].reward.bps),
    [1100, 900],
  );
});

test("segments are chosen from the five the pipeline writes", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  const segments = field(container, "Customer segments");
  segments.values = ["lapsed", "at_risk"];
  segments.dispatchEvent(new Event("change"));
  await settle();
  assert.equal(await submit(container), null);
  assert.deepEqual(savedPolicy(calls).offers[0].eligibility.segments, ["at_risk", "lapsed"]);
});

test("a discount without a policy starts from one in the shop's currency", async () => {
  const { container, calls } = await open([], { context: { shopCurrency: "EUR" }, classes: [] });
  assert.equal(field(container, "Offer id").value, "offer-1");
  assert.ok(banner(container, "Offers this discount cannot give"));
  await button(container, "Set the classes the offers need");
  assert.deepEqual(calls.classes, [["order"]]);
  assert.equal(banner(container, "Offers this discount cannot give"), null);
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.equal(policy.currency, "EUR");
  assert.equal(policy.offers.length, 1);
  assert.deepEqual(
    calls.changes.map((change) => change.key),
    ["policy", "policy_compiled"],
  );
});

test("without the shop's currency, the merchant names one before saving", async () => {
  const { container, calls } = await open([], { context: { shopCurrency: null } });
  const currency = field(container, "Currency of the amounts");
  assert.equal(currency.getAttribute("error"), 'unknown currency code ""');
  assert.match(String(await submit(container)), /currency: unknown currency code/);
  await type(currency, "CHF");
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).currency, "CHF");
});

test("a stored value that is not a policy is reported, and replaced on save", async () => {
  for (const value of ['{"version": 1,', "null", "[1]"]) {
    const { container, calls } = await open(stored(value));
    assert.match(
      banner(container, "The stored policy cannot be read").textContent,
      /not valid JSON|not a policy/,
    );
    assert.equal(await submit(container), null);
    assert.equal(savedPolicy(calls).offers[0].id, "offer-1");
    assert.equal(banner(container, "The stored policy cannot be read"), null);
  }
});

test("a stored text the checkout refuses is named before it is rewritten", async () => {
  const text = SAMPLE.replace('"bps": 1000', '"bps": 1000.0').replace(
    '"min_line_margin_bps": 1000,',
    '"min_line_margin_bps": 1000, "min_line_margin_bps": 0,',
  );
  const { container, calls } = await open(stored(text));
  const warning = banner(container, "The stored policy is written in a way checkouts refuse");
  assert.match(warning.textContent, /offers\[0\]\.reward\.bps: 1000\.0 is not written as an integer/);
  assert.match(warning.textContent, /guard\.min_line_margin_bps: repeated key/);
  // The page reads the last copy, as JSON.parse does, and shows it.
  assert.equal(field(container, "Line margin over cost").value, "0");
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).offers[0].reward.bps, 1000);
});

test("fields this page does not edit are shown, and removed only when asked", async () => {
  const typo = JSON.parse(SAMPLE);
  typo.offers[1].note = "x";
  typo.offers[0].reward.amount = 300;
  const { container, calls } = await open(stored(JSON.stringify(typo), "$app"));
  const warning = banner(container, "Fields this page does not edit");
  assert.match(warning.textContent, /offers\[1\]\.note: unknown key/);
  assert.match(warning.textContent, /offers\[0\]\.reward\.amount: not used by order_percent/);
  assert.match(String(await submit(container)), /offers\[1\]\.note: unknown key/);
  await button(container, "Remove unknown fields");
  assert.equal(banner(container, "Fields this page does not edit"), null);
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.equal(Object.hasOwn(policy.offers[1], "note"), false);
  assert.deepEqual(policy.offers[0].reward, { kind: "order_percent", bps: 1000 });
});

test("a holdout the cart transform does not share is named", async () => {
  const other = { share_bps: 500, salt: "other" };
  const { container } = await open(stored(compact(SAMPLE)), { context: { bundle: { holdout: other } } });
  const warning = banner(container, "The cart transform holds out other shoppers");
  assert.match(warning.textContent, /holds out 5 % with the salt "other"/);
  await type(field(container, "Customers held out"), "5");
  await type(field(container, "Salt"), "other");
  assert.equal(banner(container, "The cart transform holds out other shoppers"), null);

  const same = JSON.parse(SAMPLE).holdout;
  const { container: matching } = await open(stored(compact(SAMPLE)), { context: { bundle: { holdout: same } } });
  assert.equal(banner(matching, "The cart transform holds out other shoppers"), null);
  const { container: unknown } = await open(stored(compact(SAMPLE)), { context: { bundle: undefined } });
  assert.ok(banner(unknown, "Holdout not compared"));
});

test("the admin's refusals are reported as not saved", async () => {
  let { container, calls } = await open(stored(compact(SAMPLE)), { refuse: "Access denied for $app" });
  await type(field(container, "Discount"), "11");
  assert.match(String(await submit(container)), /the policy was not saved: Access denied/);
  assert.ok(banner(container, "Not saved"));
  assert.equal(calls.changes.length, 1);

  ({ container, calls } = await open(stored(compact(SAMPLE)), {
    refuse: "too long",
    refuseKey: "policy_compiled",
  }));
  await type(field(container, "Discount"), "11");
  assert.match(String(await submit(container)), /refused the policy's compiled form/);
  assert.equal(banner(container, "Policy saved"), null);
  await discard(container);
  assert.equal(banner(container, "Not saved"), null);

  const only = JSON.parse(SAMPLE);
  only.offers = [only.offers[0]];
  ({ container, calls } = await open(stored(JSON.stringify(only)), {
    classes: ["order"],
    refuseClasses: true,
  }));
  await choose(field(container, "Reward", 0), "free_shipping");
  assert.match(banner(container, "Discount classes not set").textContent, /not allowed/);
  await discard(container);
  assert.equal(banner(container, "Discount classes not set"), null);
});

test("a save the admin does not commit leaves the discount's policy as the starting point", async () => {
  const { container } = await open(stored(compact(SAMPLE)));
  const whole = () => container.querySelector('s-text-field[name="policy"]');
  await type(field(container, "Discount"), "11");
  assert.equal(await submit(container), null);
  assert.ok(banner(container, "Policy saved"));
  const event = new Event("error");
  event.error = Object.assign(new Error("network down"), { errors: [{ message: "try again" }] });
  container.querySelector("s-function-settings").dispatchEvent(event);
  await settle();
  assert.match(banner(container, "Not saved").textContent, /network down.*try again/s);
  assert.equal(banner(container, "Policy saved"), null);
  // Still a change to save, and Discard goes back to what the discount holds.
  assert.notEqual(whole().getAttribute("value"), whole().getAttribute("defaultValue") ?? whole().defaultValue);
  await discard(container);
  assert.equal(field(container, "Discount").value, "10");
});

test("drafts follow their offers when offers move or go", async () => {
  const three = JSON.parse(SAMPLE);
  three.offers = [three.offers[0], three.offers[3], three.offers[5]];
  const { container, calls } = await open(stored(JSON.stringify(three)));
  await keys(field(container, "Discount", 0), "1.");
  await keys(field(container, "Discount", 2), "3.");
  await button(container, "Remove", 1);
  assert.deepEqual(
    [0, 1].map((n) => field(container, "Discount", n).value),
    ["1.", "3."],
  );
  await button(container, "Move down", 0);
  assert.deepEqual(
    [0, 1].map((n) => field(container, "Discount", n).value),
    ["3.", "1."],
  );
  await button(container, "Move up", 1);
  assert.deepEqual(
    [0, 1].map((n) => field(container, "Offer id", n).value),
    ["vip-10", "regulars-5"],
  );
  assert.deepEqual(
    [0, 1].map((n) => field(container, "Discount", n).value),
    ["1.", "3."],
  );
  assert.equal(await submit(container), null);
  assert.deepEqual(
    savedPolicy(calls).offers.map((offer) => offer.reward.bps),
    [100, 300],
  );
});

test("amounts typed before a currency change are read in the new currency", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  await keys(field(container, "Amount off"), "12.50");
  await keys(field(container, "Most this offer gives on one order"), "5.5");
  await type(field(container, "Currency of the amounts"), "KWD");
  assert.equal(field(container, "Amount off").value, "12.50");
  assert.equal(await submit(container), null);
  let policy = savedPolicy(calls);
  assert.equal(policy.offers[4].reward.amount, 12_500);
  assert.equal(policy.offers[0].cap, 5_500);
  await keys(field(container, "Most this offer gives on one order"), "5.5");
  await type(field(container, "Currency of the amounts"), "JPY");
  assert.equal(
    field(container, "Most this offer gives on one order").getAttribute("error"),
    "whole numbers only",
  );
  await type(field(container, "Currency of the amounts"), "USD");
  assert.equal(field(container, "Most this offer gives on one order").getAttribute("error"), null);
  assert.equal(await submit(container), null);
  policy = savedPolicy(calls);
  assert.equal(policy.offers[0].cap, 550);
});

test("a policy without an up-to-date compiled form can be saved as it is, to get one", async () => {
  const text = compact(SAMPLE);
  const metafields = stored(text);
  metafields[1].value = "mwp1,1,0000000000000000,";
  const { container, calls } = await open(metafields);
  assert.ok(banner(container, "Checkouts parse this policy's JSON"));
  const whole = container.querySelector('s-text-field[name="policy"]');
  // The save bar has something to save from the start.
  assert.equal(whole.getAttribute("value"), text);
  assert.equal(whole.getAttribute("defaultValue") ?? whole.defaultValue, text);
  assert.equal(await submit(container), null);
  assert.equal(calls.changes[1].key, "policy_compiled");

  const { container: fresh } = await open(stored(text));
  assert.equal(banner(fresh, "Checkouts parse this policy's JSON"), null);
});

test("a policy with no offers leaves the discount's classes as they are", async () => {
  const { container, calls } = await open(stored(compact(SAMPLE)));
  for (let n = 7; n > 1; n -= 1) await button(container, "Remove", n - 1);
  // The classes followed the offers down to the last one's (an order discount) ...
  assert.deepEqual(calls.classes.at(-1), ["order"]);
  const updates = calls.classes.length;
  await button(container, "Remove", 0);
  // ... and stay when it goes: a discount needs a class.
  assert.match(container.textContent, /No offers: this discount gives nothing/);
  assert.equal(calls.classes.length, updates);
  assert.equal(await submit(container), null);
  assert.deepEqual(savedPolicy(calls).offers, []);
});

test("the shop's currency and the bundle policy's holdout come from one Admin API query", async () => {
  const answer = (data) => async (url, init) => {
    assert.equal(url, "shopify:admin/api/graphql.json");
    assert.match(JSON.parse(init.body).query, /shop \{ currencyCode \}/);
    return { json: async () => ({ data }) };
  };
  assert.deepEqual(
    await page.loadContext(
      answer({
        shop: { currencyCode: "EUR" },
        cartTransforms: { nodes: [{ metafield: null }, { metafield: { value: '{"holdout":{"share_bps":1}}' } }] },
      }),
    ),
    { shopCurrency: "EUR", bundle: { holdout: { share_bps: 1 } } },
  );
  assert.deepEqual(
    await page.loadContext(answer({ shop: { currencyCode: "EUR" }, cartTransforms: { nodes: [] } })),
    { shopCurrency: "EUR", bundle: null },
  );
  assert.deepEqual(
    await page.loadContext(async () => {
      throw new Error("offline");
    }),
    { shopCurrency: null, bundle: undefined },
  );
});
