// Small DOM and formatting helpers shared by every panel.

/** `el("div", {class: "x", onclick}, child, …)`: an element with attributes, listeners and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

export function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function money(value) {
  if (value == null) return "—";
  const amount = Number(value);
  return "$" + amount.toLocaleString("en-US", { maximumFractionDigits: Number.isInteger(amount) ? 0 : 2 });
}

export function flash(node) {
  node.classList.add("flash");
  return node;
}

export function empty(text) {
  return el("p", { class: "empty" }, text);
}

/** Replace a container's children, or show `emptyText` when there are none. */
export function fill(container, nodes, emptyText) {
  container.replaceChildren(...(nodes.length ? nodes : [empty(emptyText)]));
}

/** Call `fn` at most once per `ms`, with the latest arguments (trailing). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Open a <dialog> as modal; resolves with the FormData when submitted, null when cancelled. */
export function ask(dialog, submit) {
  const form = dialog.querySelector("form");
  const error = dialog.querySelector(".error");
  form.reset();
  if (error) error.textContent = "";
  dialog.showModal();
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("close", onClose);
      cancel.removeEventListener("click", onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const cancel = form.querySelector("[data-close]");
    const onCancel = () => done(null);
    const onClose = () => done(null);
    const onSubmit = async (event) => {
      event.preventDefault();
      const button = form.querySelector("button:not([data-close])");
      button.disabled = true;
      try {
        const value = await submit(new FormData(form));
        done(value ?? true);
      } catch (failure) {
        if (error) error.textContent = failure.message;
      } finally {
        button.disabled = false;
      }
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", onClose);
    cancel.addEventListener("click", onCancel);
  });
}
