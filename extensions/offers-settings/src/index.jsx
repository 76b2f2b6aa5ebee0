// The marginwise offers policy on the discount's page in the Shopify admin
// (target admin.discount-details.function-settings.render). The merchant edits the offers, the
// margin guard and the holdout; saving stores the policy in the discount's `$app.policy`
// metafield, which the discount Function reads at checkout, and sets the discount classes the
// offers need. What may be saved is decided by ./policy.js, which is held to the engine's parser.
import "@shopify/ui-extensions/preact";
import { render } from "preact";
import { useMemo, useRef, useState } from "preact/hooks";

import {
  COMPILED_POLICY_KEY,
  CUSTOMERS,
  MAX_MARGIN_BPS,
  MAX_OFFERS,
  NAMESPACE,
  POLICY_KEY,
  REWARDS,
  SEGMENTS,
  STRATEGIES,
  UNKNOWN_COST,
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
  withoutUnknownKeys,
} from "./policy.js";

export default async () => {
  const shopCurrency = await fetchShopCurrency();
  render(<Settings api={shopify} shopCurrency={shopCurrency} />, document.body);
};

// The shop's currency, for a new policy and to warn when a stored policy names another one.
async function fetchShopCurrency() {
  try {
    const response = await fetch("shopify:admin/api/graphql.json", {
      method: "POST",
      body: JSON.stringify({ query: "query { shop { currencyCode } }" }),
    });
    const body = await response.json();
    const code = body?.data?.shop?.currencyCode;
    return isCurrencyCode(code) ? code : null;
  } catch {
    return null;
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

export function Settings({ api, shopCurrency }) {
  const stored = useMemo(() => readStored(api.data.metafields), [api]);
  const initial = useMemo(
    () => stored.policy ?? newPolicy(shopCurrency ?? ""),
    [stored, shopCurrency],
  );
  const [policy, setPolicy] = useState(initial);
  // What the merchant typed where it is not (yet) a value: path text -> {text, error}.
  const [drafts, setDrafts] = useState({});
  const [saveError, setSaveError] = useState(null);
  const [saved, setSaved] = useState(false);
  const dirty = useRef(null);

  const problems = checkPolicy(policy);
  const currency = typeof policy?.currency === "string" ? policy.currency : "";

  // The admin shows its save bar when a form input changes; buttons that add, move or remove
  // offers change nothing it watches, so they touch a hidden input.
  const touch = () => {
    dirty.current?.dispatchEvent(new Event("input", { bubbles: true }));
    dirty.current?.dispatchEvent(new Event("change", { bubbles: true }));
  };
  const update = (next) => {
    setPolicy(next);
    setSaved(false);
    touch();
  };
  const errorAt = (path) => {
    const key = pathText(path);
    return (
      drafts[key]?.error ?? problems.find((problem) => problem.path === key)?.message ?? undefined
    );
  };
  // A text field bound to the number at `path`: shown with `show`, read back with `parse`.
  // An empty optional field removes the key.
  const bind = (path, show, parse, { optional = false } = {}) => {
    const key = pathText(path);
    const value = get(policy, path);
    return {
      value: drafts[key]?.text ?? (value == null ? "" : show(value)),
      error: errorAt(path),
      onInput: (event) => {
        const text = event.currentTarget.value ?? "";
        if (optional && text.trim() === "") {
          setDrafts(({ [key]: _, ...rest }) => rest);
          update(set(policy, path, undefined));
          return;
        }
        const parsed = parse(text);
        if (parsed.error) {
          setDrafts((current) => ({ ...current, [key]: { text, error: parsed.error } }));
          return;
        }
        setDrafts(({ [key]: _, ...rest }) => rest);
        update(set(policy, path, parsed.value));
      },
    };
  };
  const bindText = (path) => ({
    value: typeof get(policy, path) === "string" ? get(policy, path) : "",
    error: errorAt(path),
    onInput: (event) => update(set(policy, path, event.currentTarget.value ?? "")),
  });
  const bindChoice = (path, fallback) => ({
    value: typeof get(policy, path) === "string" ? get(policy, path) : fallback,
    error: errorAt(path),
    onChange: (event) => update(set(policy, path, event.currentTarget.value)),
  });
  const percent = (max) => (text) => parsePercent(text, max);
  const money = (text) => parseMoney(text, currency);
  const showMoney = (minor) => moneyText(minor, currency);

  const offers = Array.isArray(policy?.offers) ? policy.offers : [];
  const moveOffer = (from, to) => {
    const list = [...offers];
    const [offer] = list.splice(from, 1);
    list.splice(to, 0, offer);
    setDrafts({});
    update({ ...policy, offers: list });
  };

  const save = async () => {
    setSaveError(null);
    const pending = Object.entries(drafts);
    if (pending.length > 0) {
      throw failure(setSaveError, pending.map(([path, draft]) => `${path}: ${draft.error}`));
    }
    const now = checkPolicy(policy);
    if (now.length > 0) {
      throw failure(
        setSaveError,
        now.map((problem) => `${problem.path || "policy"}: ${problem.message}`),
      );
    }
    const result = await api.applyMetafieldChange({
      type: "updateMetafield",
      namespace: NAMESPACE,
      key: POLICY_KEY,
      value: policyText(policy),
      valueType: "json",
    });
    if (result?.type === "error") {
      throw failure(setSaveError, [`the policy was not saved: ${result.message}`]);
    }
    // A compiled form is only read while it matches the JSON byte for byte; after an edit here it
    // would not, and every checkout would read both. Without it the Function reads the JSON.
    if (stored.compiled) {
      const removed = await api.applyMetafieldChange({
        type: "removeMetafield",
        namespace: NAMESPACE,
        key: COMPILED_POLICY_KEY,
      });
      if (removed?.type === "error") {
        throw failure(setSaveError, [
          `the policy was saved, but its old compiled form was not removed (${removed.message}); the discount still decides by the new policy`,
        ]);
      }
    }
    const classes = discountClasses(policy);
    if (classes.length > 0 && api.discounts?.updateDiscountClasses) {
      api.discounts.updateDiscountClasses(classes);
    }
    setSaved(true);
  };

  const leftOver = problems.filter(
    (problem) => !shownInForm(problem.path, policy),
  );

  return (
    <s-function-settings
      onSubmit={(event) => event.waitUntil(save())}
      onReset={() => {
        setPolicy(initial);
        setDrafts({});
        setSaveError(null);
      }}
    >
      <input ref={dirty} type="hidden" name="marginwise-policy" value={policyText(policy)} />
      <s-stack gap="base">
        {stored.error ? (
          <s-banner tone="critical" heading="The stored policy cannot be read">
            <s-paragraph>
              {stored.error}. Saving replaces it with the policy below.
            </s-paragraph>
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
            <s-paragraph>
              Checkouts use it from now on. To have them read its faster compiled form, run
              `marginwise discount --recompile {api.data.id}`.
            </s-paragraph>
          </s-banner>
        ) : null}
        {leftOver.length > 0 ? (
          <s-banner tone="warning" heading="Fields this page does not edit">
            {leftOver.map((problem) => (
              <s-paragraph key={problem.path}>
                {problem.path || "policy"}: {problem.message}
              </s-paragraph>
            ))}
            <s-button onClick={() => update(withoutUnknownKeys(policy))}>
              Remove unknown fields
            </s-button>
          </s-banner>
        ) : null}
        {shopCurrency && currency && currency !== shopCurrency ? (
          <s-banner tone="warning" heading="Another currency">
            <s-paragraph>
              This policy's amounts are in {currency}; the shop's currency is {shopCurrency}.
              Amounts are converted at checkout as a price in {currency} would be.
            </s-paragraph>
          </s-banner>
        ) : null}

        <s-section heading="Offers">
          <s-paragraph>
            Each checkout gets at most one of these offers, and never below the margin guard.
            Amounts are in {currency || "the policy currency"}.
          </s-paragraph>
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
              move={(to) => moveOffer(index, to)}
              remove={() => {
                setDrafts({});
                update({ ...policy, offers: offers.filter((_, i) => i !== index) });
              }}
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
          <s-select label="Products without a known cost" {...bindChoice(["guard", "unknown_cost"], "exclude")}>
            {UNKNOWN_COST.map((value) => (
              <s-option key={value} value={value}>
                {LABELS.unknown_cost[value]}
              </s-option>
            ))}
          </s-select>
        </s-section>

        <s-section heading="Holdout">
          <s-paragraph>
            A fixed share of signed-in customers gets no personalized offer, so that `marginwise
            measure` can compare their margin with everyone else's. Changing the share or the
            salt moves customers between the groups, and the bundle policy of the cart transform
            must use the same holdout.
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

// Problems the form shows beside a field; the rest (unknown keys, wrong types) go in a banner.
function shownInForm(path, policy) {
  if (path === "") return false;
  const shown = [
    /^strategy$/,
    /^guard\.(min_line_margin_bps|min_order_margin_bps|assumed_stack_bps|unknown_cost)$/,
    /^holdout\.(share_bps|salt)$/,
    /^offers\[\d+\]\.(id|cap|message)$/,
    /^offers\[\d+\]\.reward\.(kind|bps|amount|max_slots)$/,
    /^offers\[\d+\]\.eligibility\.(clv_min|clv_max|churn_min_bps|subtotal_min|customer)$/,
  ];
  if (!shown.some((pattern) => pattern.test(path))) return false;
  // A field of an object that is not an object is not shown either.
  const parent = path.replace(/\.[a-z_]+$/, "");
  return parent === path || typeof get(policy, parsePath(parent)) === "object" || parent === "";
}

function parsePath(text) {
  return [...text.matchAll(/([a-z_]+)|\[(\d+)\]/g)].map((match) =>
    match[2] === undefined ? match[1] : Number(match[2]),
  );
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
  move,
  remove,
}) {
  const at = (...path) => ["offers", index, ...path];
  if (offer === null || typeof offer !== "object" || Array.isArray(offer)) {
    return (
      <s-box padding="base" borderWidth="base" borderRadius="base">
        <s-paragraph>Offer {index + 1} is not an offer ({errorAt(at())}).</s-paragraph>
        <s-button tone="critical" onClick={remove}>
          Remove
        </s-button>
      </s-box>
    );
  }
  const reward = offer.reward && typeof offer.reward === "object" ? offer.reward : {};
  const kind = Object.hasOwn(REWARDS, reward.kind) ? reward.kind : "";
  const fields = kind ? REWARDS[kind].fields : [];
  const eligibility =
    offer.eligibility && typeof offer.eligibility === "object" ? offer.eligibility : {};
  const segments = Array.isArray(eligibility.segments) ? eligibility.segments : [];

  return (
    <s-box padding="base" borderWidth="base" borderRadius="base">
      <s-stack gap="base">
        <s-heading>
          Offer {index + 1}: {typeof offer.id === "string" ? offer.id : ""}
        </s-heading>
        <s-text-field label="Offer id" details="Letters, digits and - _ . : (shown in reports)" {...bindText(at("id"))} />
        <s-text-field
          label="Message shown at checkout"
          details="At most 100 characters"
          {...bindText(at("message"))}
        />
        <s-select
          label="Reward"
          value={kind}
          error={errorAt(at("reward", "kind")) ?? errorAt(at("reward"))}
          onChange={(event) =>
            update(["reward"], rewardOfKind(reward, event.currentTarget.value))
          }
        >
          {Object.keys(REWARDS).map((name) => (
            <s-option key={name} value={name}>
              {LABELS.kind[name]}
            </s-option>
          ))}
        </s-select>
        {fields.includes("bps") ? (
          <s-text-field label="Discount" suffix="%" {...bind(at("reward", "bps"), percentText, percent(10_000))} />
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
          multiple
          error={segments.map((_, k) => errorAt(at("eligibility", "segments", k))).find(Boolean)}
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
