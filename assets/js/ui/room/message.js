// Drawing one row of the message log from its model (row-model.js): a day separator, the
// "new messages" divider, or a message with its avatar or gutter time, author, time, reply
// quote, text, edited and deleted marks, send state, read receipt and actions.
//
// Must not: read anything but the model, the clock and the labels of the current language
// (a field drawn from elsewhere would be missing from the row cache's key and go stale); call
// Chat or keep state; the row's buttons only call the `on` handlers they are given.

import { drawTokens, h } from "../../dom.js";
import { relativeTime } from "../../format.js";
import { t } from "../../i18n.js";

/**
 * The element for `model`. `on` holds the handlers of the row's buttons, called with the
 * message's seq (or clientId while pending): reply, edit, remove, quote (the quoted seq),
 * retry and discard.
 */
export function drawRow(model, on, now) {
  if (model.kind === "day") {
    return h("div", { class: "day", role: "separator" }, h("span", {}, model.label));
  }
  if (model.kind === "divider") {
    return h("div", { class: "divider", role: "separator", "aria-label": t("room.newMessages") }, h("span", {}, t("room.newMessages")));
  }
  const pending = model.send !== null;
  const time = h("time", { datetime: model.at, title: model.atTitle, dataset: { at: model.at } },
    relativeTime(model.at, now, model.locale));
  const classes = ["msg", model.continued && "continued", model.mine && "mine", pending && `pending ${model.send.state}`,
    model.deleted && "deleted", model.editing && "editing"].filter(Boolean).join(" ");
  const body = h("div", { class: "msg-body" },
    !model.continued && h("div", { class: "msg-head" }, h("span", { class: "author" }, model.author), " ", time),
    model.reply && drawQuote(model.reply, on),
    model.deleted
      ? h("p", { class: "msg-text tombstone" }, t("message.deleted"))
      : h("p", { class: "msg-text" }, drawTokens(model.body),
        model.edited && h("span", { class: "edited", title: model.edited.title }, ` ${t("message.edited")}`)),
    pending && drawSendState(model, on),
    model.seen && h("p", { class: "seen muted small" }, model.seen));
  return h("article", {
    class: classes, id: model.id, tabindex: "-1",
    dataset: pending ? { clientId: model.clientId } : { seq: String(model.seq), sender: String(model.senderId) },
    "aria-label": model.label,
  },
  model.continued
    ? h("span", { class: "gutter-time", "aria-hidden": "true" }, time)
    : h("span", { class: "avatar", "aria-hidden": "true" }, model.initials),
  body,
  model.actions && drawActions(model, on));
}

function drawQuote(reply, on) {
  return h("button", { type: "button", class: "quote", onclick: () => on.quote(reply.seq) },
    h("span", { class: "quote-author" }, h("span", { class: "visually-hidden" }, `${t("message.inReplyTo")} `), reply.author),
    h("span", { class: "quote-text" }, reply.text));
}

function drawSendState(model, on) {
  if (model.send.state === "failed") {
    return h("p", { class: "send-state failed", role: "alert" },
      `${t("message.failed")} ${model.send.error} `,
      h("button", { type: "button", class: "link", onclick: () => on.retry(model.clientId) }, t("message.retry")),
      " · ",
      h("button", { type: "button", class: "link", onclick: () => on.discard(model.clientId) }, t("message.discard")));
  }
  return h("p", { class: "send-state muted small" }, t("message.pending"));
}

function drawActions(model, on) {
  return h("div", { class: "msg-actions", role: "group", "aria-label": t("message.actions") },
    h("button", { type: "button", class: "action", onclick: () => on.reply(model.seq) }, t("message.reply")),
    model.actions.edit && h("button", { type: "button", class: "action", onclick: () => on.edit(model.seq) }, t("message.edit")),
    model.actions.delete && h("button", { type: "button", class: "action danger-text", onclick: () => on.remove(model.seq) }, t("message.delete")));
}
