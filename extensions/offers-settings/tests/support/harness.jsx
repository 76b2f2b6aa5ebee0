// Test entry, bundled by tests/support/build.mjs: the settings page and the Preact that renders it,
// from one bundle so both use the same Preact.
import { render } from "preact";

import { Settings, loadContext } from "../../src/index.jsx";

export { loadContext };

export function mount(api, context, container) {
  render(<Settings api={api} context={context} />, container);
}
