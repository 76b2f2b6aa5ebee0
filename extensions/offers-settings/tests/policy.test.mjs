// The policy helpers on their own: reading what the admin hands over, converting what the
// merchant types, and the classes a discount needs. Whether a policy may be saved is held to the
// engine by model-pipeline/tests/settings_policy.rs.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  checkPolicy,
  discountClasses,
  moneyText,
  newOffer,
  newPolicy,
  parseCount,
  parseMoney,
  parsePercent,
  percentText,
  readStored,
  rewardOfKind,
  storedTextProblems,
  withoutUnknownKeys,
} from "../src/policy.js";

test("percentages are basis points without floating point", () => {
  assert.deepEqual(parsePercent("12.5"), { value: 1250 });
  assert.deepEqual(parsePercent(" 0.01 "), { value: 1 });
  assert.deepEqual(parsePercent("100"), { value: 10_000 });
  assert.deepEqual(parsePercent("007"), { value: 700 });
  // 0.29 * 100 is 28.999999999999996 in floating point.
  assert.deepEqual(parsePercent("0.29"), { value: 29 });
  assert.equal(parsePercent("100.01").error, "at most 100 %");
  assert.deepEqual(parsePercent("250", 100_000), { value: 25_000 });
  assert.equal(parsePercent("1.234").error, "at most 2 decimals");
  for (const bad of ["", "-1", "1e2", "12,5", "abc", "1.2.3", "."]) {
    assert.ok(parsePercent(bad).error, bad);
  }
  assert.equal(percentText(1250), "12.5");
  assert.equal(percentText(1), "0.01");
  assert.equal(percentText(10_000), "100");
  assert.equal(percentText(0), "0");
});

test("amounts are minor units of the policy currency", () => {
  assert.deepEqual(parseMoney("12.50", "USD"), { value: 1250 });
  assert.deepEqual(parseMoney("12", "USD"), { value: 1200 });
  assert.equal(parseMoney("12.505", "USD").error, "at most 2 decimals");
  assert.deepEqual(parseMoney("500", "JPY"), { value: 500 });
  assert.equal(parseMoney("5.5", "JPY").error, "whole numbers only");
  assert.deepEqual(parseMoney("1.234", "KWD"), { value: 1234 });
  assert.equal(parseMoney("99999999999999999", "USD").error, "too large");
  assert.equal(moneyText(1250, "USD"), "12.5");
  assert.equal(moneyText(5, "USD"), "0.05");
  assert.equal(moneyText(500, "JPY"), "500");
  assert.equal(moneyText(1234, "KWD"), "1.234");
  for (const [minor, currency] of [[1, "EUR"], [123456789, "BHD"], [0, "CLP"]]) {
    assert.deepEqual(parseMoney(moneyText(minor, currency), currency), { value: minor });
  }
});

test("slots are whole numbers of at least one", () => {
  assert.deepEqual(parseCount("2"), { value: 2 });
  assert.equal(parseCount("0").error, "at least 1");
  assert.equal(parseCount("1.5").error, "whole numbers only");
});

test("the stored policy is found under $app or the app's resolved namespace", () => {
  const policy = JSON.stringify(newPolicy("USD"));
  for (const namespace of ["$app", "app--4242"]) {
    const read = readStored([
      { namespace: "custom", key: "policy", value: "{}" },
      { namespace, key: "policy", value: policy },
      { namespace, key: "policy_compiled", value: "mwp1" },
    ]);
    assert.deepEqual(read.policy, JSON.parse(policy));
    assert.equal(read.compiled, true);
    assert.equal(read.error, null);
  }
  assert.deepEqual(readStored([{ namespace: "other", key: "policy", value: policy }]), {
    policy: null,
    compiled: false,
    compiledText: null,
    error: null,
    textProblems: [],
  });
  assert.equal(readStored([{ namespace: "$app", key: "policy", value: "null" }]).error, "not a policy (null)");
  assert.match(readStored([{ namespace: "$app", key: "policy", value: "{" }]).error, /^not valid JSON/);
});

test("a new policy can be saved as it is, and new offers take free ids", () => {
  assert.deepEqual(checkPolicy(newPolicy("USD")), []);
  const offers = [newOffer([])];
  offers.push(newOffer(offers));
  offers.push({ ...newOffer(offers) });
  assert.deepEqual(
    offers.map((offer) => offer.id),
    ["offer-1", "offer-2", "offer-3"],
  );
  assert.equal(newOffer([{ id: "offer-2" }]).id, "offer-3");
});

test("discount classes follow the rewards, in the admin's order", () => {
  const policy = newPolicy("USD");
  assert.deepEqual(discountClasses(policy), ["order"]);
  policy.offers.push({ ...newOffer(policy.offers), reward: { kind: "free_shipping" } });
  policy.offers.push({ ...newOffer(policy.offers), reward: { kind: "slot_percent", bps: 1, max_slots: 1 } });
  assert.deepEqual(discountClasses(policy), ["product", "order", "shipping"]);
  assert.deepEqual(discountClasses({ offers: "none" }), []);
});

test("switching a reward's kind keeps the figures both kinds take", () => {
  assert.deepEqual(rewardOfKind({ kind: "order_percent", bps: 1200 }, "slot_percent"), {
    kind: "slot_percent",
    bps: 1200,
    max_slots: 1,
  });
  assert.deepEqual(rewardOfKind({ kind: "order_fixed", amount: 500 }, "free_shipping"), {
    kind: "free_shipping",
  });
});

test("a stored text's fractions, exponents and repeated keys are named with their places", () => {
  assert.deepEqual(storedTextProblems(JSON.stringify(newPolicy("USD"))), []);
  const text =
    '{"version":1.0,"guard":{"a":1,"a":2},"offers":[{"x":"a\\"b{[1.5","reward":{"bps":1e3}},{"reward":{"bps":-2E+2}}],"s":"1e3"}';
  assert.deepEqual(
    storedTextProblems(text).map((problem) => problem.path),
    ["version", "guard.a", "offers[0].reward.bps", "offers[1].reward.bps"],
  );
});

test("unknown keys are removed on request, known ones kept in place", () => {
  const policy = newPolicy("USD");
  policy.note = "x";
  policy.guard.min_line_margin = 1;
  policy.offers[0].reward.max_slots = 2;
  policy.offers[0].eligibility.tags = ["vip"];
  assert.equal(checkPolicy(policy).length > 0, true);
  const cleaned = withoutUnknownKeys(policy);
  assert.deepEqual(checkPolicy(cleaned), []);
  assert.deepEqual(Object.keys(cleaned), Object.keys(newPolicy("USD")));
  assert.deepEqual(cleaned.offers[0].reward, { kind: "order_percent", bps: 500 });
});
