// Building DOM safely. Every piece of user text goes in through text nodes, never innerHTML,
// so a message like `<img onerror=…>` shows as the characters it is.
//
//   h("button", { class: "primary", onclick: send, "aria-label": t("composer.send") }, "Send")
//
// Must not: know about chat state or the server.

/** Splits text into plain runs, links and @mentions. Pure: `[{ kind, text, href? }]`. */
export function tokenize(text) {
  const tokens = [];
  const pattern = /\bhttps?:\/\/[^\s<>"]+|(^|[^\w@])@([A-Za-z0-9][A-Za-z0-9_.-]{1,31})/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    let start = match.index;
    let value = match[0];
    if (match[2] !== undefined) {
      start += match[1].length;
      value = `@${match[2]}`.replace(/[.-]+$/, "");
    } else {
      // Trailing punctuation usually ends the sentence, not the URL; keep a closing paren
      // only when the URL opened one (Wikipedia-style links).
      value = value.replace(/[.,;:!?'’”]+$/, "");
      while (value.endsWith(")") && (value.match(/\(/g) ?? []).length < (value.match(/\)/g) ?? []).length) {
        value = value.slice(0, -1);
      }
    }
    if (start > last) tokens.push({ kind: "text", text: text.slice(last, start) });
    if (match[2] !== undefined) tokens.push({ kind: "mention", text: value, username: value.slice(1) });
    else tokens.push({ kind: "link", text: value, href: value });
    last = start + value.length;
  }
  if (last < text.length) tokens.push({ kind: "text", text: text.slice(last) });
  return tokens;
}

/** Whether `text` mentions the user (by @username, ignoring case). */
export function mentions(text, username) {
  const wanted = username.toLowerCase();
  return tokenize(text).some((token) => token.kind === "mention" && token.username.toLowerCase() === wanted);
}

/** Creates an element. Attributes starting with "on" become listeners; children may be strings. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name in element && typeof element[name] === "boolean") {
      element[name] = Boolean(value);
    } else if (name === "value") {
      element.value = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Message text as DOM, from tokenize()'s runs: links clickable (http/https only), mentions
 * highlighted (a mention token with `self: true` names the reader), everything else text nodes.
 */
export function drawTokens(tokens) {
  const fragment = document.createDocumentFragment();
  for (const token of tokens) {
    if (token.kind === "link") {
      fragment.append(h("a", { href: token.href, target: "_blank", rel: "noopener noreferrer nofollow ugc" }, token.text));
    } else if (token.kind === "mention") {
      fragment.append(h("span", { class: token.self ? "mention mention-me" : "mention" }, token.text));
    } else {
      fragment.append(token.text);
    }
  }
  return fragment;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// Line icons (24×24, stroked with the text colour) so nothing depends on emoji fonts.
const ICONS = {
  lock: "M6 11h12a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2zM8 11V7a4 4 0 0 1 8 0v4",
  hash: "M4 9h16M4 15h16M10 3 8 21M16 3l-2 18",
  search: "M11 4a7 7 0 1 1 0 14 7 7 0 0 1 0-14zM20 20l-4-4",
  plus: "M12 5v14M5 12h14",
  menu: "M3 6h18M3 12h18M3 18h18",
  close: "M18 6 6 18M6 6l12 12",
};

/** A decorative icon; give the button around it a label. */
export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  for (const [key, value] of Object.entries({
    viewBox: "0 0 24 24", width: "1em", height: "1em", fill: "none", stroke: "currentColor",
    "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false",
  })) svg.setAttribute(key, value);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  svg.classList.add("icon");
  return svg;
}
