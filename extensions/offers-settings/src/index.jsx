// The marginwise offers policy on the discount's page in the Shopify admin
// (target admin.discount-details.function-settings.render). The merchant edits the offers, the
// margin guard and the holdout; saving stores the policy in the discount's `$app.policy`
// metafield, which the discount Function reads at checkout, with its compiled form beside it
// (./compiled.js, the form checkouts read fastest). Changing the offers sets the
// discount classes they need. What may be saved is decided by ./policy.js, which is held to the
// engine's parser.
import "@shopify/ui-extensions/preact";
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";

import {
  COMPILED_POLICY_KEY,
  CUSTOMERS,
  KEYS,
  MAX_MARGIN_BPS,
  MAX_OFFERS,
  MAX_VALUE_BYTES,
  NAMESPACE,
  POLICY_KEY,
  REWARDS,
  SEGMENTS,
  STRATEGIES,
  UNKNOWN_COST,
  appliedHoldout,
  checkPolicy,
  discountClasses,
  isCurrencyCode,
  moneyText,
  newOffer,
  newPolicy,
  parseCount,
  parseMoney,
  parsePercent,
  percentText,
  policyText,
  readStored,
  rewardOfKind,
  sameHoldout,
  withoutUnknownKeys,
} from "./policy.js";
import { compiledFrom, compilePolicy } from "./compiled.js";

export default async () => {
  const context = await loadContext(fetch);
  render(<Settings api={shopify} context={context} />, document.body);
};

const LOOKUP_TIMEOUT_MS = 3000;

// What the page needs besides the discount, from the Admin API (the extension's own access):
// the shop's currency, for a new policy and to warn when a policy names another one, and the
// cart transform's bundle policy, whose holdout must be this policy's. `bundle` is null when
// there is no cart transform with a policy, undefined when the lookup failed.
export async function loadContext(fetchImpl) {
  const query =
    'query { shop { currencyCode } cartTransforms(first: 5) { nodes { metafield(namespace: "$app", key: "policy") { value } } } }';
  try {
    const lookup = fetchImpl("shopify:admin/api/graphql.json", {
      method: "POST",
      body: JSON.stringify({ query }),
    }).then((response) => response.json());
    const timeout = new Promise((_, reject) => {
      setTimeout(() => reject(new Error("timed out")), LOOKUP_TIMEOUT_MS);
    });
    const body = await Promise.race([lookup, timeout]);
    const code = body?.data?.shop?.currencyCode;
    const policies = (body?.data?.cartTransforms?.nodes ?? [])
      .map((node) => node?.metafield?.value)
      .filter((value) => typeof value === "string");
    let bundle = null;
    if (policies.length > 0) {
      try {
        bundle = { holdout: JSON.parse(policies[0])?.holdout ?? null };
      } catch {
        bundle = undefined;
      }
    }
    return { shopCurrency: isCurrencyCode(code) ? code : null, bundle };
  } catch {
    return { shopCurrency: null, bundle: undefined };
  }
}

const LABELS = {
  kind: {
    order_percent: "Percentage off the order",
    order_fixed: "Amount off the order",
    lines_percent: "Percentage off every product",
    lines_fixed: "Amount off each unit",
    shipping_percent: "Percentage off shipping",
    free_shipping: "Free shipping",
    slot_percent: "Percentage off recommended products",
  },
  segment: {
    new: "New (one recent order)",
    active: "Active",
    loyal_high_value: "Loyal, high value",
    at_risk: "At risk",
    lapsed: "Lapsed",
  },
  customer: { any: "Anyone", new: "First order", returning: "Returning customers" },
  strategy: {
    priority: "The first offer in this list that applies",
    best_for_shopper: "The offer worth most to the shopper",
  },
  unknown_cost: {
    exclude: "Never discount them",
    allow: "Discount them without a floor",
  },
};

// `offers[2].reward.bps` for ["offers", 2, "reward", "bps"]: the engine's names for places.
export function pathText(path) {
  return path
    .map((part, index) =>
      typeof part === "number" ? `[${part}]` : index === 0 ? part : `.${part}`,
    )
    .join("");
}

function get(object, path) {
  let value = object;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[part];
  }
  return value;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// A copy of `object` with `value` at `path` (`undefined` removes the key).
function set(object, path, value) {
  const copy = structuredClone(object);
  let at = copy;
  for (const [index, part] of path.slice(0, -1).entries()) {
    const child = at[part];
    if (child === null || typeof child !== "object") {
      at[part] = typeof path[index + 1] === "number" ? [] : {};
    }
    at = at[part];
  }
  const last = path[path.length - 1];
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

// Drafts follow their offer when offers move: `to(index)` is the offer's new index, or null
// when it was removed.
function remapDrafts(drafts, to) {
  const moved = {};
  for (const [key, draft] of Object.entries(drafts)) {
    const match = /^offers\[(\d+)\](.*)$/.exec(key);
    if (!match) {
      moved[key] = draft;
      continue;
    }
    const index = to(Number(match[1]));
    if (index !== null) moved[`offers[${index}]${match[2]}`] = draft;
  }
  return moved;
}

// ["offers", 2, "reward", "bps"] for `offers[2].reward.bps`.
function parsePath(text) {
  return [...text.matchAll(/([a-z_]+)|\[(\d+)\]/g)].map((match) =>
    match[2] === undefined ? match[1] : Number(match[2]),
  );
}

// The places the form has a field for: a problem anywhere else goes in a banner.
function formPaths(policy) {
  const paths = new Set(["currency", "strategy", "holdout.share_bps", "holdout.salt"]);
  for (const key of KEYS.guard) paths.add(`guard.${key}`);
  const offers = Array.isArray(policy?.offers) ? policy.offers : [];
  for (const [index, offer] of offers.entries()) {
    const at = `offers[${index}]`;
    if (!isObject(offer)) {
      paths.add(at);
      continue;
    }
    for (const key of ["id", "message", "cap", "reward", "reward.kind"]) paths.add(`${at}.${key}`);
    for (const field of REWARDS[offer.reward?.kind]?.fields ?? []) paths.add(`${at}.reward.${field}`);
    for (const key of KEYS.eligibility) paths.add(`${at}.eligibility.${key}`);
    const segments = offer.eligibility?.segments;
    for (const [k] of (Array.isArray(segments) ? segments : []).entries()) {
      paths.add(`${at}.eligibility.segments[${k}]`);
    }
  }
  return paths;
}

// The fields that hold amounts in the policy currency: what they mean changes with it.
const MONEY = /(\.amount|\.cap|\.subtotal_min|\.clv_min|\.clv_max)$/;

function sameClasses(a, b) {
  return a.length === b.length && a.every((name) => b.includes(name));
}

export function Settings({ api, context }) {
  const stored = useMemo(() => readStored(api.data.metafields), [api]);
  // Whether what the discount holds needs writing even if the merchant changes nothing: no policy
  // or one checkouts cannot read, a text they refuse, or no compiled form made from this text
  // (checkouts then parse the JSON on every run).
  const compiledFresh = compiledFrom(stored.compiledText, stored.text);
  const needsWrite =
    stored.policy === null || stored.textProblems.length > 0 || !compiledFresh;
  // What the discount holds: the form starts from it, Discard goes back to it, and a save
  // replaces it.
  const [baseline, setBaseline] = useState(() => ({
    policy: stored.policy ?? newPolicy(context.shopCurrency ?? ""),
    compiled: stored.compiled,
    fromStore: true,
  }));
  const [policy, setPolicy] = useState(baseline.policy);
  // What the merchant typed into number fields, as typed ("12." while typing 12.5): path text ->
  // {text, error}. A draft with an error keeps the policy's value unchanged and blocks a save.
  const [drafts, setDrafts] = useState({});
  const [saveError, setSaveError] = useState(null);
  const [classError, setClassError] = useState(null);
  const [saved, setSaved] = useState(false);
  // The starting point before the last save, until the admin has committed it.
  const beforeSave = useRef(null);
  // The discount's classes, which the admin may also change beside this page.
  const [currentClasses, setCurrentClasses] = useState(
    () => api.discounts?.discountClasses?.value ?? [],
  );
  useEffect(() => api.discounts?.discountClasses?.subscribe?.(setCurrentClasses), [api]);

  const problems = checkPolicy(policy);
  const currency = typeof policy?.currency === "string" ? policy.currency : "";
  const offers = Array.isArray(policy?.offers) ? policy.offers : [];
  const neededClasses = discountClasses(policy);
  const classesCovered = neededClasses.every((name) => currentClasses.includes(name));

  // The discount runs for the classes it has: an offer whose class it lacks never applies
  // (`class_not_allowed`). When an edit changes the classes the offers need, the discount gets
  // exactly those, as `marginwise discount` sets them; other edits leave the classes alone.
  const syncClasses = (next, force = false) => {
    const needed = discountClasses(next);
    if (
      needed.length === 0 ||
      sameClasses(needed, currentClasses) ||
      (!force && sameClasses(needed, discountClasses(policy))) ||
      !api.discounts?.updateDiscountClasses
    ) {
      return;
    }
    const result = api.discounts.updateDiscountClasses(needed);
    if (result?.success === false) {
      setClassError((result.errors ?? []).map((error) => error.message).join("; ") || "refused");
    } else {
      setClassError(null);
      setCurrentClasses(needed);
    }
  };
  const update = (next) => {
    setPolicy(next);
    setSaved(false);
    syncClasses(next);
  };
  const errorAt = (path) => {
    const key = pathText(path);
    return (
      drafts[key]?.error ?? problems.find((problem) => problem.path === key)?.message ?? undefined
    );
  };
  // A text field bound to the number at `path`: shown with `show`, read back with `parse`. An
  // empty optional field removes the key. `name` and `defaultValue` let the admin tell a changed
  // field (its save bar).
  const bind = (path, show, parse, { optional = false } = {}) => {
    const key = pathText(path);
    const value = get(policy, path);
    const initial = get(baseline.policy, path);
    return {
      name: key,
      value: drafts[key]?.text ?? (value == null ? "" : show(value)),
      defaultValue: initial == null ? "" : show(initial),
      error: errorAt(path),
      onInput: (event) => {
        const text = event.currentTarget.value ?? "";
        if (optional && text.trim() === "") {
          setDrafts((current) => ({ ...current, [key]: { text } }));
          update(set(policy, path, undefined));
          return;
        }
        const parsed = parse(text);
        setDrafts((current) => ({ ...current, [key]: { text, error: parsed.error } }));
        if (!parsed.error) update(set(policy, path, parsed.value));
      },
    };
  };
  const bindText = (path) => ({
    name: pathText(path),
    value: typeof get(policy, path) === "string" ? get(policy, path) : "",
    defaultValue: typeof get(baseline.policy, path) === "string" ? get(baseline.policy, path) : "",
    error: errorAt(path),
    onInput: (event) => update(set(policy, path, event.currentTarget.value ?? "")),
  });
  // The currency: amounts typed but not yet read are read again in the new one's decimals.
  const bindCurrency = () => ({
    ...bindText(["currency"]),
    onInput: (event) => {
      const next = set(policy, ["currency"], event.currentTarget.value ?? "");
      let reread = next;
      const kept = {};
      for (const [key, draft] of Object.entries(drafts)) {
        if (!MONEY.test(key) || draft.text.trim() === "") {
          kept[key] = draft;
          continue;
        }
        const parsed = parseMoney(draft.text, next.currency);
        kept[key] = { text: draft.text, error: parsed.error };
        if (!parsed.error) reread = set(reread, parsePath(key), parsed.value);
      }
      setDrafts(kept);
      update(reread);
    },
  });
  const bindChoice = (path, fallback) => ({
    name: pathText(path),
    value: typeof get(policy, path) === "string" ? get(policy, path) : fallback,
    error: errorAt(path),
    onChange: (event) => update(set(policy, path, event.currentTarget.value)),
  });
  const percent = (max) => (text) => parsePercent(text, max);
  const money = (text) => parseMoney(text, currency);
  const showMoney = (minor) => moneyText(minor, currency);

  const moveOffer = (from, to) => {
    const list = [...offers];
    const [offer] = list.splice(from, 1);
    list.splice(to, 0, offer);
    setDrafts((current) =>
      remapDrafts(current, (index) => {
        if (index === from) return to;
        if (from < to && index > from && index <= to) return index - 1;
        if (to < from && index >= to && index < from) return index + 1;
        return index;
      }),
    );
    update({ ...policy, offers: list });
  };
  const removeOffer = (removed) => {
    setDrafts((current) =>
      remapDrafts(current, (index) =>
        index === removed ? null : index > removed ? index - 1 : index,
      ),
    );
    update({ ...policy, offers: offers.filter((_, i) => i !== removed) });
  };
  const changeKind = (index, reward, kind) => {
    const prefix = `offers[${index}].reward.`;
    setDrafts((current) =>
      Object.fromEntries(Object.entries(current).filter(([key]) => !key.startsWith(prefix))),
    );
    update(set(policy, ["offers", index, "reward"], rewardOfKind(reward, kind)));
  };

  const save = async () => {
    setSaveError(null);
    const typed = Object.entries(drafts).filter(([, draft]) => draft.error);
    const now = checkPolicy(policy);
    if (typed.length > 0 || now.length > 0) {
      throw failure(setSaveError, [
        ...typed.map(([path, draft]) => `${path}: ${draft.error}`),
        ...now.map((problem) => `${problem.path || "policy"}: ${problem.message}`),
      ]);
    }
    const text = policyText(policy);
    const result = await api.applyMetafieldChange({
      type: "updateMetafield",
      namespace: NAMESPACE,
      key: POLICY_KEY,
      value: text,
      valueType: "json",
    });
    if (result?.type === "error") {
      throw failure(setSaveError, [`the policy was not saved: ${result.message}`]);
    }
    // The compiled form beside it, from exactly this text: checkouts read it instead of parsing
    // the JSON. One that does not fit in what a Function reads (no policy that fits comes near)
    // is left out, and an old one removed, since it would no longer match the JSON.
    const compiled = compilePolicy(policy, text);
    const fits = new TextEncoder().encode(compiled).length <= MAX_VALUE_BYTES;
    if (fits || baseline.compiled) {
      const change = fits
        ? {
            type: "updateMetafield",
            namespace: NAMESPACE,
            key: COMPILED_POLICY_KEY,
            value: compiled,
            valueType: "single_line_text_field",
          }
        : { type: "removeMetafield", namespace: NAMESPACE, key: COMPILED_POLICY_KEY };
      const answer = await api.applyMetafieldChange(change);
      if (answer?.type === "error") {
        throw failure(setSaveError, [
          `the admin refused the policy's compiled form ($app.policy_compiled): ${answer.message}`,
        ]);
      }
    }
    beforeSave.current = baseline;
    setBaseline({ policy, compiled: fits, fromStore: false });
    setDrafts({});
    setSaved(true);
  };

  const paths = formPaths(policy);
  const leftOver = problems.filter((problem) => !paths.has(problem.path));
  const cleanable = policyText(withoutUnknownKeys(policy)) !== policyText(policy);
  const missingClasses = neededClasses.filter((name) => !currentClasses.includes(name));
  const bundle = context.bundle;
  const bundleHoldout = bundle ? appliedHoldout(bundle.holdout) : null;

  return (
    <s-function-settings
      onSubmit={(event) => event.waitUntil(save())}
      onReset={() => {
        setPolicy(baseline.policy);
        setDrafts({});
        setSaveError(null);
        setClassError(null);
        setSaved(false);
      }}
      onError={(event) => {
        // The admin did not commit: the discount still holds what it held before the save.
        if (beforeSave.current) {
          setBaseline(beforeSave.current);
          beforeSave.current = null;
        }
        setSaved(false);
        const details = (event.error?.errors ?? []).map((error) => error.message);
        setSaveError([
          `the admin did not save the discount: ${event.error?.message ?? "unknown error"}`,
          ...details,
        ]);
      }}
    >
      {/* The whole policy as one field, so that adding, moving or removing an offer (no field
          of its own changes) still shows the admin's save bar. */}
      <s-box display="none">
        <s-text-field
          label="Policy"
          name="policy"
          value={policyText(policy)}
          defaultValue={
            baseline.fromStore && needsWrite ? (stored.text ?? "") : policyText(baseline.policy)
          }
        />
      </s-box>
      <s-stack gap="base">
        {stored.error && baseline.fromStore ? (
          <s-banner tone="critical" heading="The stored policy cannot be read">
            <s-paragraph>{stored.error}. Saving replaces it with the policy below.</s-paragraph>
          </s-banner>
        ) : null}
        {stored.textProblems.length > 0 && baseline.fromStore ? (
          <s-banner tone="warning" heading="The stored policy is written in a way checkouts refuse">
            {stored.textProblems.map((problem) => (
              <s-paragraph key={problem.path + problem.message}>
                {problem.path || "policy"}: {problem.message}
              </s-paragraph>
            ))}
            <s-paragraph>Saving writes it as this page shows it.</s-paragraph>
          </s-banner>
        ) : null}
        {saveError ? (
          <s-banner tone="critical" heading="Not saved">
            {saveError.map((line) => (
              <s-paragraph key={line}>{line}</s-paragraph>
            ))}
          </s-banner>
        ) : null}
        {saved ? (
          <s-banner tone="success" heading="Policy saved">
            <s-paragraph>Checkouts use it from now on.</s-paragraph>
          </s-banner>
        ) : null}
        {baseline.fromStore && stored.policy !== null && !compiledFresh ? (
          <s-banner tone="info" heading="Checkouts parse this policy's JSON">
            <s-paragraph>
              It has no compiled form made from its current text, so every checkout parses the
              JSON (about 0.1 M instructions more). Saving writes one.
            </s-paragraph>
          </s-banner>
        ) : null}
        {classError && !classesCovered ? (
          <s-banner tone="critical" heading="Discount classes not set">
            <s-paragraph>
              The admin refused the classes {neededClasses.join(", ")} ({classError}); offers of
              a class the discount lacks never apply.
            </s-paragraph>
          </s-banner>
        ) : missingClasses.length > 0 ? (
          <s-banner tone="warning" heading="Offers this discount cannot give">
            <s-paragraph>
              The discount lacks the {missingClasses.join(", ")} class, so those offers never
              apply.
            </s-paragraph>
            <s-button onClick={() => syncClasses(policy, true)}>
              Set the classes the offers need
            </s-button>
          </s-banner>
        ) : null}
        {leftOver.length > 0 ? (
          <s-banner tone="warning" heading="Fields this page does not edit">
            {leftOver.map((problem) => (
              <s-paragraph key={problem.path + problem.message}>
                {problem.path || "policy"}: {problem.message}
              </s-paragraph>
            ))}
            {cleanable ? (
              <s-button onClick={() => update(withoutUnknownKeys(policy))}>
                Remove unknown fields
              </s-button>
            ) : null}
          </s-banner>
        ) : null}
        {context.shopCurrency && currency && currency !== context.shopCurrency ? (
          <s-banner tone="warning" heading="Another currency">
            <s-paragraph>
              This policy's amounts are in {currency}; the shop's currency is{" "}
              {context.shopCurrency}. Amounts are converted at checkout as a price in {currency}
              would be.
            </s-paragraph>
          </s-banner>
        ) : null}
        {bundle && !sameHoldout(policy?.holdout, bundle.holdout) ? (
          <s-banner tone="warning" heading="The cart transform holds out other shoppers">
            <s-paragraph>
              Its bundle policy holds out{" "}
              {bundleHoldout
                ? `${percentText(bundleHoldout.share_bps)} % with the salt "${bundleHoldout.salt}"`
                : "nobody"}
              . Set the same holdout here (or change the bundle policy with marginwise
              cart-transform), or shoppers held out of offers still get bundle prices and the
              holdout no longer measures what offers earn.
            </s-paragraph>
          </s-banner>
        ) : null}
        {bundle === undefined ? (
          <s-banner tone="info" heading="Holdout not compared">
            <s-paragraph>
              The cart transform's bundle policy could not be read, so this holdout was not
              compared with it.
            </s-paragraph>
          </s-banner>
        ) : null}

        <s-section heading="Offers">
          <s-paragraph>
            Each checkout gets at most one of these offers, and never below the margin guard.
          </s-paragraph>
          <s-text-field
            label="Currency of the amounts"
            details="Three capital letters (USD). Amounts below are in it; changing it does not convert them."
            {...bindCurrency()}
          />
          <s-select label="When several offers apply, give" {...bindChoice(["strategy"], "priority")}>
            {STRATEGIES.map((strategy) => (
              <s-option key={strategy} value={strategy}>
                {LABELS.strategy[strategy]}
              </s-option>
            ))}
          </s-select>
          {offers.length === 0 ? (
            <s-paragraph>No offers: this discount gives nothing.</s-paragraph>
          ) : null}
          {offers.map((offer, index) => (
            <Offer
              key={`${index}`}
              offer={offer}
              index={index}
              count={offers.length}
              currency={currency}
              bind={bind}
              bindText={bindText}
              bindChoice={bindChoice}
              percent={percent}
              money={money}
              showMoney={showMoney}
              errorAt={errorAt}
              update={(path, value) => update(set(policy, ["offers", index, ...path], value))}
              changeKind={(reward, kind) => changeKind(index, reward, kind)}
              move={(to) => moveOffer(index, to)}
              remove={() => removeOffer(index)}
            />
          ))}
          <s-button
            disabled={offers.length >= MAX_OFFERS}
            onClick={() => update({ ...policy, offers: [...offers, newOffer(offers)] })}
          >
            Add an offer
          </s-button>
        </s-section>

        <s-section heading="Margin guard">
          <s-paragraph>
            No discounted line ends below its unit cost plus the line margin, and the discounted
            lines together keep the order margin.
          </s-paragraph>
          <s-text-field
            label="Line margin over cost"
            suffix="%"
            {...bind(["guard", "min_line_margin_bps"], percentText, percent(MAX_MARGIN_BPS), {
              optional: true,
            })}
          />
          <s-text-field
            label="Order margin over cost"
            suffix="%"
            {...bind(["guard", "min_order_margin_bps"], percentText, percent(MAX_MARGIN_BPS), {
              optional: true,
            })}
          />
          <s-text-field
            label="Other discounts that may stack"
            details="The share of each price other discounts may also take; the guard keeps room for it."
            suffix="%"
            {...bind(["guard", "assumed_stack_bps"], percentText, percent(10_000), {
              optional: true,
            })}
          />
          <s-select
            label="Products without a known cost"
            {...bindChoice(["guard", "unknown_cost"], "exclude")}
          >
            {UNKNOWN_COST.map((value) => (
              <s-option key={value} value={value}>
                {LABELS.unknown_cost[value]}
              </s-option>
            ))}
          </s-select>
        </s-section>

        <s-section heading="Holdout">
          <s-paragraph>
            A fixed share of signed-in customers gets no personalized offer, so that marginwise
            measure can compare their margin with everyone else's. Changing the share or the salt
            moves customers between the groups, and the cart transform's bundle policy must use
            the same holdout.
          </s-paragraph>
          <s-text-field
            label="Customers held out"
            suffix="%"
            {...bind(["holdout", "share_bps"], percentText, percent(10_000), { optional: true })}
          />
          <s-text-field label="Salt" {...bindText(["holdout", "salt"])} />
        </s-section>
      </s-stack>
    </s-function-settings>
  );
}

function failure(setSaveError, lines) {
  setSaveError(lines);
  return new Error(lines.join("\n"));
}

function Offer({
  offer,
  index,
  count,
  currency,
  bind,
  bindText,
  bindChoice,
  percent,
  money,
  showMoney,
  errorAt,
  update,
  changeKind,
  move,
  remove,
}) {
  const at = (...path) => ["offers", index, ...path];
  if (!isObject(offer)) {
    return (
      <s-box padding="base" borderWidth="base" borderRadius="base">
        <s-paragraph>
          Offer {index + 1} is not an offer ({errorAt(at())}).
        </s-paragraph>
        <s-button tone="critical" onClick={remove}>
          Remove
        </s-button>
      </s-box>
    );
  }
  const reward = isObject(offer.reward) ? offer.reward : {};
  const kind = Object.hasOwn(REWARDS, reward.kind) ? reward.kind : "";
  const fields = kind ? REWARDS[kind].fields : [];
  const eligibility = isObject(offer.eligibility) ? offer.eligibility : {};
  const segments = Array.isArray(eligibility.segments) ? eligibility.segments : [];

  return (
    <s-box padding="base" borderWidth="base" borderRadius="base">
      <s-stack gap="base">
        <s-heading>
          Offer {index + 1}: {typeof offer.id === "string" ? offer.id : ""}
        </s-heading>
        <s-text-field
          label="Offer id"
          details="Letters, digits and - _ . : (shown in reports)"
          {...bindText(at("id"))}
        />
        <s-text-field
          label="Message shown at checkout"
          details="At most 100 characters"
          {...bindText(at("message"))}
        />
        <s-select
          label="Reward"
          name={`offers[${index}].reward.kind`}
          value={kind}
          error={errorAt(at("reward", "kind")) ?? errorAt(at("reward"))}
          onChange={(event) => changeKind(reward, event.currentTarget.value)}
        >
          {Object.keys(REWARDS).map((name) => (
            <s-option key={name} value={name}>
              {LABELS.kind[name]}
            </s-option>
          ))}
        </s-select>
        {fields.includes("bps") ? (
          <s-text-field
            label="Discount"
            suffix="%"
            {...bind(at("reward", "bps"), percentText, percent(10_000))}
          />
        ) : null}
        {fields.includes("amount") ? (
          <s-text-field
            label={kind === "lines_fixed" ? "Amount off each unit" : "Amount off"}
            prefix={currency}
            {...bind(at("reward", "amount"), showMoney, money)}
          />
        ) : null}
        {fields.includes("max_slots") ? (
          <s-text-field
            label="Recommended products discounted, at most"
            {...bind(at("reward", "max_slots"), String, parseCount)}
          />
        ) : null}
        <s-text-field
          label="Most this offer gives on one order"
          details="Empty: no limit besides the margin guard"
          prefix={currency}
          {...bind(at("cap"), showMoney, money, { optional: true })}
        />
        <s-choice-list
          label="Customer segments"
          details="None checked: everyone, signed in or not"
          name={`offers[${index}].eligibility.segments`}
          multiple
          error={
            errorAt(at("eligibility", "segments")) ??
            segments.map((_, k) => errorAt(at("eligibility", "segments", k))).find(Boolean)
          }
          onChange={(event) => {
            const values = event.currentTarget.values ?? [];
            update(
              ["eligibility", "segments"],
              SEGMENTS.filter((segment) => values.includes(segment)),
            );
          }}
        >
          {SEGMENTS.map((segment) => (
            <s-choice key={segment} value={segment} selected={segments.includes(segment)}>
              {LABELS.segment[segment]}
            </s-choice>
          ))}
        </s-choice-list>
        <s-select label="Customers" {...bindChoice(at("eligibility", "customer"), "any")}>
          {CUSTOMERS.map((customer) => (
            <s-option key={customer} value={customer}>
              {LABELS.customer[customer]}
            </s-option>
          ))}
        </s-select>
        <s-text-field
          label="Order subtotal at least"
          prefix={currency}
          {...bind(at("eligibility", "subtotal_min"), showMoney, money, { optional: true })}
        />
        <s-text-field
          label="Predicted 12-month value at least"
          prefix={currency}
          {...bind(at("eligibility", "clv_min"), showMoney, money, { optional: true })}
        />
        <s-text-field
          label="Predicted 12-month value at most"
          prefix={currency}
          {...bind(at("eligibility", "clv_max"), showMoney, money, { optional: true })}
        />
        <s-text-field
          label="Churn risk at least"
          suffix="%"
          {...bind(at("eligibility", "churn_min_bps"), percentText, percent(10_000), {
            optional: true,
          })}
        />
        <s-stack direction="inline" gap="base">
          <s-button disabled={index === 0} onClick={() => move(index - 1)}>
            Move up
          </s-button>
          <s-button disabled={index === count - 1} onClick={() => move(index + 1)}>
            Move down
          </s-button>
          <s-button tone="critical" onClick={remove}>
            Remove
          </s-button>
        </s-stack>
      </s-stack>
    </s-box>
  );
}
