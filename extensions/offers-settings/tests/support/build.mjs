// Bundles with esbuild the way Shopify CLI builds a UI extension (one ES module, JSX through
// Preact), for the page tests and for the bundle size check.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

export const root = fileURLToPath(new URL("../..", import.meta.url));

export async function bundle(entry, { minify = false } = {}) {
  const out = join(mkdtempSync(join(tmpdir(), "offers-settings-")), "bundle.mjs");
  await build({
    entryPoints: [join(root, entry)],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    minify,
    outfile: out,
    logLevel: "silent",
  });
  return out;
}
