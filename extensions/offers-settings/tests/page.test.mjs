// The settings page rendered into a DOM (happy-dom) with a stand-in for the admin's `shopify`
// object: what it shows for a stored policy, what it saves after an edit, and what it refuses.
// Polaris elements are not defined here, so they are plain elements whose `value` the test sets
// before it sends the event the admin would.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Window } from "happy-dom";

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
  for (const handler of ["onsubmit", "onreset", "oninput", "onchange", "onclick"]) {
    if (!(handler in window.HTMLElement.prototype)) {
      Object.defineProperty(window.HTMLElement.prototype, handler, { value: null, writable: true });
    }
  }
  page = await import(await bundle("tests/support/harness.jsx"));
});

after(() => window.happyDOM.close());

const SAMPLE = readFileSync(join(root, "../../model-pipeline/sample/policy.json"), "utf8");

function admin(metafields, refuse) {
  const calls = { changes: [], classes: [] };
  const api = {
    data: { id: "gid://shopify/DiscountAutomaticNode/1", metafields },
    applyMetafieldChange: async (change) => {
      calls.changes.push(change);
      return refuse ? { type: "error", message: refuse } : { type: "success" };
    },
    discounts: {
      updateDiscountClasses: (classes) => calls.classes.push(classes),
    },
  };
  return { api, calls };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

async function open(metafields, shopCurrency = "USD", refuse = null) {
  const container = document.createElement("div");
  document.body.appendChild(container);
  const { api, calls } = admin(metafields, refuse);
  page.mount(api, shopCurrency, container);
  await settle();
  return { container, calls };
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

async function type(element, text) {
  element.value = text;
  element.dispatchEvent(new Event("input"));
  await settle();
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

const stored = (value, namespace = "app--123") => [
  { id: "gid://shopify/Metafield/1", namespace, key: "policy", value, type: "json" },
  {
    id: "gid://shopify/Metafield/2",
    namespace,
    key: "policy_compiled",
    value: "mwp1,...",
    type: "single_line_text_field",
  },
];

function savedPolicy(calls) {
  const update = calls.changes.find((change) => change.type === "updateMetafield");
  assert.ok(update, "the policy was not saved");
  assert.equal(update.namespace, "$app");
  assert.equal(update.key, "policy");
  assert.equal(update.valueType, "json");
  return JSON.parse(update.value);
}

test("shows a stored policy's figures in the merchant's units", async () => {
  const { container } = await open(stored(SAMPLE));
  assert.equal(field(container, "Offer id").value, "vip-10");
  assert.equal(field(container, "Discount").value, "10");
  assert.equal(field(container, "Most this offer gives on one order").value, "50");
  assert.equal(field(container, "Order subtotal at least").value, "50");
  assert.equal(field(container, "Amount off").value, "5");
  assert.equal(field(container, "Line margin over cost").value, "10");
  assert.equal(field(container, "Customers held out").value, "10");
  assert.equal(container.querySelectorAll("s-heading").length, 7);
});

test("an edit is saved as the policy's integers, the stale compiled form removed", async () => {
  const { container, calls } = await open(stored(SAMPLE));
  await type(field(container, "Discount"), "12.5");
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
  assert.deepEqual(calls.changes[1], {
    type: "removeMetafield",
    namespace: "$app",
    key: "policy_compiled",
  });
  assert.deepEqual(calls.classes, [["product", "order", "shipping"]]);
  assert.match(
    banner(container, "Policy saved").textContent,
    /marginwise discount --recompile gid:\/\/shopify\/DiscountAutomaticNode\/1/,
  );
});

test("a figure the policy cannot hold is refused, and nothing is saved", async () => {
  const { container, calls } = await open(stored(SAMPLE));
  const discount = field(container, "Discount");
  await type(discount, "12.345");
  assert.equal(discount.getAttribute("error"), "at most 2 decimals");
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
  const { container, calls } = await open(stored(SAMPLE));
  await type(field(container, "Offer id", 1), "vip-10");
  const error = await submit(container);
  assert.match(String(error), /offers\[1\]\.id: duplicate offer id "vip-10"/);
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
  let { container, calls } = await open(stored(JSON.stringify(jpy)), "JPY");
  assert.equal(field(container, "Most this offer gives on one order").value, "5000");
  await type(field(container, "Amount off"), "5.5");
  assert.equal(field(container, "Amount off").getAttribute("error"), "whole numbers only");
  await type(field(container, "Amount off"), "700");
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).offers[4].reward.amount, 700);

  const kwd = JSON.parse(SAMPLE);
  kwd.currency = "KWD";
  ({ container, calls } = await open(stored(JSON.stringify(kwd)), "KWD"));
  assert.equal(field(container, "Most this offer gives on one order").value, "5");
  await type(field(container, "Amount off"), "1.234");
  assert.equal(await submit(container), null);
  assert.equal(savedPolicy(calls).offers[4].reward.amount, 1234);
});

test("changing an offer's reward keeps only what the new kind takes", async () => {
  const { container, calls } = await open(stored(SAMPLE));
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
  const { container, calls } = await open(stored(JSON.stringify(only)));
  await button(container, "Add an offer");
  await choose(field(container, "Reward", 1), "shipping_percent");
  await button(container, "Move up", 1);
  await button(container, "Remove", 1);
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.deepEqual(
    policy.offers.map((offer) => offer.id),
    ["offer-2"],
  );
  assert.deepEqual(calls.classes, [["shipping"]]);
});

test("segments are chosen from the five the pipeline writes", async () => {
  const { container, calls } = await open(stored(SAMPLE));
  const segments = field(container, "Customer segments");
  segments.values = ["lapsed", "at_risk"];
  segments.dispatchEvent(new Event("change"));
  await settle();
  assert.equal(await submit(container), null);
  assert.deepEqual(savedPolicy(calls).offers[0].eligibility.segments, ["at_risk", "lapsed"]);
});

test("a discount without a policy starts from one in the shop's currency", async () => {
  const { container, calls } = await open([], "EUR");
  assert.equal(field(container, "Offer id").value, "offer-1");
  assert.equal(await submit(container), null);
  const policy = savedPolicy(calls);
  assert.equal(policy.currency, "EUR");
  assert.equal(policy.offers.length, 1);
  // Nothing compiled to remove.
  assert.equal(calls.changes.length, 1);
});

test("a stored value that is not JSON is reported, and replaced only on save", async () => {
  const { container, calls } = await open(stored("{\"version\": 1,"));
  assert.match(banner(container, "The stored policy cannot be read").textContent, /not valid JSON/);
  assert.equal(calls.changes.length, 0);
});

test("fields this page does not edit are shown, and removed only when asked", async () => {
  const typo = JSON.parse(SAMPLE);
  typo.guard.min_line_margin = 500;
  const { container, calls } = await open(stored(JSON.stringify(typo), "$app"));
  assert.match(container.textContent, /guard\.min_line_margin: unknown key/);
  assert.match(String(await submit(container)), /guard\.min_line_margin: unknown key/);
  await button(container, "Remove unknown fields");
  assert.equal(await submit(container), null);
  assert.equal(Object.hasOwn(savedPolicy(calls).guard, "min_line_margin"), false);
});

test("a save the admin refuses is reported as not saved", async () => {
  const { container, calls } = await open(stored(SAMPLE), "USD", "Access denied for $app");
  await type(field(container, "Discount"), "11");
  assert.match(String(await submit(container)), /the policy was not saved: Access denied/);
  assert.ok(banner(container, "Not saved"));
  // The compiled form stays while the policy it was compiled from stays.
  assert.equal(calls.changes.length, 1);
  assert.deepEqual(calls.classes, []);
});
