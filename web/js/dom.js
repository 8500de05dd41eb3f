// A tiny view layer: elements are built from nodes and text, never from markup strings.

const PROPS = new Set(["value", "checked", "disabled", "selected", "hidden", "indeterminate", "open"]);
let counter = 0;

export function uid(prefix = "k") {
  counter += 1;
  return `${prefix}-${counter}`;
}

export function h(tag, props, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  // An element that had focus and is put back (a form kept across a redraw) keeps it.
  const focused = el.contains(document.activeElement) ? document.activeElement : null;
  el.replaceChildren();
  append(el, children);
  if (focused && focused !== document.activeElement && el.contains(focused)) focused.focus({ preventScroll: true });
  return el;
}

/** A labelled form control: label, control, optional hint and error, wired with aria attributes. */
export function field(labelText, control, { hint, required, id } = {}) {
  const controlId = id || control.id || uid("f");
  control.id = controlId;
  const hintEl = hint ? h("p", { class: "hint", id: `${controlId}-hint`, text: hint }) : null;
  const errorEl = h("p", { class: "field-error", id: `${controlId}-error`, hidden: true });
  const described = [hintEl && hintEl.id, errorEl.id].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  if (required) control.required = true;
  const wrapper = h("div", { class: "field" },
    h("label", { for: controlId }, labelText, required ? h("span", { class: "req", "aria-hidden": "true", text: " *" }) : null),
    hintEl, control, errorEl);
  wrapper.setError = (message) => {
    errorEl.textContent = message || "";
    errorEl.hidden = !message;
    if (message) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  };
  return wrapper;
}

export function select(options, { value, name, id, emptyLabel } = {}) {
  const el = h("select", { name, id });
  if (emptyLabel !== undefined) el.append(h("option", { value: "", text: emptyLabel }));
  for (const [optionValue, text] of options) {
    el.append(h("option", { value: optionValue, text, selected: optionValue === value }));
  }
  return el;
}

/** A group of checkboxes inside a fieldset with a legend. */
export function checkboxes(legend, options, { name, checked = [] } = {}) {
  const set = h("fieldset", { class: "checks" }, h("legend", { text: legend }));
  for (const [optionValue, text] of options) {
    const id = uid("c");
    set.append(h("div", { class: "check" },
      h("input", { type: "checkbox", id, name, value: optionValue, checked: checked.includes(optionValue) }),
      h("label", { for: id, text })));
  }
  set.values = () => [...set.querySelectorAll("input:checked")].map((i) => i.value);
  return set;
}

export function radios(legend, options, { name, value } = {}) {
  const set = h("fieldset", { class: "radios" }, h("legend", { text: legend }));
  for (const [optionValue, text] of options) {
    const id = uid("r");
    set.append(h("div", { class: "check" },
      h("input", { type: "radio", id, name, value: optionValue, checked: optionValue === value }),
      h("label", { for: id, text })));
  }
  set.value = () => set.querySelector("input:checked")?.value;
  return set;
}

/**
 * A table with a caption; ``columns`` are [heading, (row) => cell content]. On a narrow screen
 * (or at high zoom) each row is stacked as a card with the column's heading beside each value;
 * where a table is still wider than its place, it scrolls inside its own box, named by the
 * caption and reachable by keyboard (WCAG 1.4.10, 2.1.1).
 */
export function table(caption, columns, rows, { empty } = {}) {
  if (!rows.length && empty) return h("p", { class: "empty", text: empty });
  const captionId = uid("caption");
  const wrap = h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", { id: captionId, text: caption }),
      h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col", text: heading })))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([heading, cell]) =>
        h("td", { dataset: { label: heading } }, cell(row))))))));
  // Always in the tab order and named by its caption, whether or not it scrolls at this width:
  // that changes with zoom, fonts and language, and a keyboard user must reach it in every case.
  // A group, not a region: the section around a table is often the landmark of the same name.
  wrap.setAttribute("role", "group");
  wrap.setAttribute("aria-labelledby", captionId);
  wrap.tabIndex = 0;
  return wrap;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
