// Test entry, bundled by tests/support/build.mjs: the settings page and the Preact that renders it,
// from one bundle so both use the same Preact.
import { render } from "preact";

import { Settings } from "../../src/index.jsx";

export function mount(api, shopCurrency, container) {
  render(<Settings api={api} shopCurrency={shopCurrency} />, container);
}

export function unmount(container) {
  render(null, container);
}
