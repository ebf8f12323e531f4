// What one row of the message log shows, as plain data: `rowModel(row, ctx)` turns a layout row
// (timeline.js) and the reader's context into every field the drawing (message.js) uses, and
// `rowKey(model)` turns that into the string the log's row cache compares. The drawing takes
// only the model, so nothing can be drawn that the key does not cover: a row whose key is
// unchanged looks exactly as it did, and any change of what it shows gives a new key.
//
// The one thing drawn from outside the model is the clock: a message's relative time ("5 min
// ago") is worked out from `at` when drawn and refreshed in place by the log's timer.
//
// Must not: touch the DOM, the network or chat state; read the clock (ctx.now is given).

import { tokenize } from "../../dom.js";
import { dayLabel, fullTime, initials } from "../../format.js";
import { errorText, t } from "../../i18n.js";
import { seenBy } from "../../timeline.js";

/** How much of a message an aria-label and a reply quote repeat. */
const LABEL_CHARS = 200;
const QUOTE_CHARS = 160;

/**
 * The model of a layout row. `ctx`:
 *   me           { id, username, displayName } — the signed-in user
 *   userName(id) a user's display name
 *   quote(seq)   the message a reply points at, or null while unknown
 *   members      the room's members with their read markers, or null while not loaded
 *   lastMineSeq  seq of the user's own newest message that is not deleted (receipts go there)
 *   editingSeq   seq of the message the composer is editing, or null
 *   canModerate  whether the user may delete other people's messages here
 *   now, locale  the clock and the UI language
 */
export function rowModel(row, ctx) {
  if (row.kind === "day") {
    return { kind: "day", key: row.key, locale: ctx.locale, label: dayLabel(row.at, ctx.now, ctx.locale) };
  }
  if (row.kind === "divider") {
    return { kind: "divider", key: row.key, locale: ctx.locale };
  }
  const m = row.message;
  const mine = m.senderId === ctx.me.id;
  const pending = m.seq === undefined;
  const author = mine ? ctx.me.displayName : ctx.userName(m.senderId);
  return {
    kind: "message",
    key: row.key,
    locale: ctx.locale,
    id: pending ? `p-${m.clientId}` : `m-${m.seq}`,
    seq: pending ? null : m.seq,
    clientId: pending ? m.clientId : null,
    senderId: m.senderId,
    mine,
    author,
    initials: initials(author),
    at: m.createdAt,
    atTitle: fullTime(m.createdAt, ctx.locale),
    continued: Boolean(row.continued),
    deleted: Boolean(m.deleted),
    label: `${author}: ${m.deleted ? t("message.deleted") : m.content.slice(0, LABEL_CHARS)}`,
    body: m.deleted ? null : bodyTokens(m.content, ctx.me.username),
    edited: !m.deleted && m.editedAt ? { at: m.editedAt, title: fullTime(m.editedAt, ctx.locale) } : null,
    reply: m.replyTo ? replySummary(m.replyTo, ctx) : null,
    send: pending ? { state: m.state, error: m.state === "failed" ? errorText(m.error) : null } : null,
    seen: !pending && m.seq === ctx.lastMineSeq ? seenText(ctx.members, m.seq, ctx.me.id) : "",
    editing: !pending && ctx.editingSeq === m.seq,
    actions: pending || m.deleted ? null : { edit: mine, delete: mine || Boolean(ctx.canModerate) },
  };
}

/** The cache key of a model: equal exactly when the models are. */
export function rowKey(model) {
  return JSON.stringify(model);
}

/** Message text as runs of plain text, links and mentions, mentions of the reader marked. */
function bodyTokens(content, username) {
  const me = username?.toLowerCase();
  return tokenize(content).map((token) => (token.kind === "mention"
    ? { ...token, self: Boolean(me) && token.username.toLowerCase() === me }
    : token));
}

function replySummary(seq, ctx) {
  const original = ctx.quote(seq);
  if (!original) return { seq, author: t("message.replyUnknown"), text: "" };
  return {
    seq,
    author: ctx.userName(original.senderId),
    text: original.deleted ? t("message.deleted") : original.content.slice(0, QUOTE_CHARS),
  };
}

/** "Seen by Bo, Cy" under the user's latest message, from the members' read markers. */
function seenText(members, seq, meId) {
  if (!members) return "";
  const readers = seenBy(members, seq, meId).map((member) => member.user.displayName);
  if (readers.length === 0) return "";
  if (readers.length <= 3) return t("message.seenBy", { names: readers.join(", ") });
  return t("message.seenByMany", { names: readers.slice(0, 3).join(", "), count: readers.length - 3 });
}
