// Small DOM helpers: elements are built with h(), never from HTML strings, so no text the API returns
// (file names, model answers, error messages) is ever parsed as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...nodes(children));
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  el.append(...nodes(children));
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value" && "value" in el) el.value = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
}

function nodes(children) {
  return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

export function replace(el, ...children) {
  el.replaceChildren(...nodes(children));
  return el;
}

export function time(unixSeconds) {
  return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "—";
}

export function duration(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function count(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString();
}

export function metric(x) {
  return typeof x === "number" ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3)) : "—";
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function badge(status) {
  return h("span", { class: `badge status-${status}` }, status.replaceAll("_", " "));
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

export function note(text) {
  return h("p", { class: "note" }, text);
}

/** A table whose `rows` are arrays of cells (text or nodes); `empty` when there are none. */
export function table(headers, rows, { empty = "Nothing here yet.", label } = {}) {
  if (rows.length === 0) return note(empty);
  return h("div", { class: "table-wrap" },
    h("table", { "aria-label": label },
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell)))))));
}

/** A definition list from [term, value] pairs (pairs with an undefined value are left out). */
export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, value]) => value !== undefined).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]));
}

/** A button that asks once more before doing something that cannot be undone. */
export function confirmButton(label, action, { confirmLabel = `Really ${label.toLowerCase()}?` } = {}) {
  let armed = false;
  const button = h("button", { type: "button", class: "danger" }, label);
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      setTimeout(() => {
        armed = false;
        if (button.isConnected && !button.disabled) button.textContent = label;
      }, 5000);
      return;
    }
    button.disabled = true;
    await action();
  });
  return button;
}

/** Run `fn` with `button` disabled (and marked busy) until it settles, so a second click waits. */
export async function busy(button, fn) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } finally {
    button.removeAttribute("aria-busy");
    if (button.isConnected) button.disabled = false;
  }
}

/** Run `fn` every `seconds` while the page is shown, until `signal` aborts. */
export function every(seconds, signal, fn) {
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") fn();
  }, seconds * 1000);
  signal.addEventListener("abort", () => clearInterval(timer));
}
