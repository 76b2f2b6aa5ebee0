// Shopify refuses to deploy a UI extension (API 2025-10 and later) whose JavaScript bundle is over
// 64 KB compressed. This builds the page as Shopify CLI does (esbuild, one minified ES module) and
// prints and checks its compressed size.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { gzipSync } from "node:zlib";

import { bundle } from "./support/build.mjs";

const LIMIT = 64 * 1024;

test("the page's bundle stays under Shopify's 64 KB compressed limit", async () => {
  const code = readFileSync(await bundle("src/index.jsx", { minify: true }));
  const compressed = gzipSync(code, { level: 9 }).length;
  console.log(
    `offers-settings bundle: ${code.length} bytes, ${compressed} bytes compressed (limit ${LIMIT})`,
  );
  assert.ok(compressed < LIMIT, `${compressed} bytes compressed, over ${LIMIT}`);
  // The page is bundled whole: Preact and the policy checker are in it.
  assert.ok(code.length > 10_000, `suspiciously small bundle: ${code.length} bytes`);
});
