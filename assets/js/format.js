// Dates and times as people read them: "just now", "5 min ago", "14:03", "Yesterday",
// "Monday, 3 November 2026", and a name's avatar initials. Pure functions of (date, now,
// locale) or of a name, so they can be tested in Node.
//
// Must not: touch the DOM or read the clock itself (callers pass `now`).

import { t } from "./i18n.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Midnight (local time) of the day `date` falls in, as a number of ms. */
export function startOfDay(date) {
  const day = new Date(date);
  day.setHours(0, 0, 0, 0);
  return day.getTime();
}

/** Whether two instants fall on the same local calendar day. */
export function sameDay(a, b) {
  return startOfDay(a) === startOfDay(b);
}

/** Short relative time for a message: "just now", "5 min ago", then the clock time, then a date. */
export function relativeTime(date, now, locale) {
  const then = new Date(date);
  const age = now - then.getTime();
  if (age < MINUTE) return t("time.justNow");
  if (age < HOUR) {
    return new Intl.RelativeTimeFormat(locale, { numeric: "auto", style: "short" })
      .format(-Math.floor(age / MINUTE), "minute");
  }
  if (sameDay(then, now)) return clockTime(then, locale);
  const sameYear = then.getFullYear() === new Date(now).getFullYear();
  return new Intl.DateTimeFormat(locale, {
    month: "short", day: "numeric", ...(sameYear ? {} : { year: "numeric" }),
    hour: "2-digit", minute: "2-digit",
  }).format(then);
}

/** "14:03" (or "2:03 PM", as the locale writes it). */
export function clockTime(date, locale) {
  return new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" }).format(new Date(date));
}

/** The full date and time, for a tooltip. */
export function fullTime(date, locale) {
  return new Intl.DateTimeFormat(locale, { dateStyle: "full", timeStyle: "medium" }).format(new Date(date));
}

/** The label of a day separator: "Today", "Yesterday", or the date. */
export function dayLabel(date, now, locale) {
  const day = startOfDay(date);
  const today = startOfDay(now);
  if (day === today) return t("time.today");
  const yesterday = new Date(today);
  yesterday.setDate(yesterday.getDate() - 1);
  if (day === yesterday.getTime()) return t("time.yesterday");
  const sameYear = new Date(date).getFullYear() === new Date(now).getFullYear();
  return new Intl.DateTimeFormat(locale, {
    weekday: "long", month: "long", day: "numeric", ...(sameYear ? {} : { year: "numeric" }),
  }).format(new Date(date));
}

/** The letters on an avatar: "Ada Lovelace" → "AL", "bob" → "BO", "" → "?". */
export function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return "?";
  const letters = parts.length === 1 ? [...parts[0]].slice(0, 2) : [[...parts[0]][0], [...parts[1]][0]];
  return letters.join("").toUpperCase();
}
