// The screens before chat: first-run admin setup, sign in, register, and register from an
// invite link. Errors appear next to the field the server names.
//
// Must not: keep the session anywhere but the server's HttpOnly cookie.

import { api } from "../api.js";
import { h } from "../dom.js";
import { errorText, t } from "../i18n.js";

/**
 * Draws the form for `mode` ("setup" | "login" | "register" | "invite") into `root` and
 * resolves with the signed-in user.
 */
export function showAuth(root, { server, mode, inviteToken }) {
  return new Promise((resolve) => {
    const draw = (current) => root.replaceChildren(form(current));

    const form = (current) => {
      const withName = current !== "login";
      const errors = {};
      const field = (name, label, attributes, hint) => {
        const id = `auth-${name}`;
        errors[name] = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
        const hintId = hint ? `${id}-hint` : undefined;
        return h("div", { class: "field" },
          h("label", { for: id }, label),
          h("input", { id, name, "aria-describedby": [hintId, `${id}-error`].filter(Boolean).join(" "), ...attributes }),
          hint && h("p", { class: "field-hint", id: hintId }, hint),
          errors[name]);
      };
      errors.form = h("p", { class: "field-error", role: "alert" });
      const submit = h("button", { type: "submit", class: "primary wide" }, t(`auth.${current}.submit`));
      const element = h("form", { class: "auth-card", novalidate: true, "aria-labelledby": "auth-title" },
        h("div", { class: "brand" }, h("img", { src: "/favicon.svg", alt: "", width: 36, height: 36 }), h("span", {}, "parley")),
        h("h1", { id: "auth-title" }, t(`auth.${current}.title`)),
        h("p", { class: "lead" }, t(`auth.${current}.lead`)),
        field("username", t("auth.username"), {
          autocomplete: "username", required: true, maxlength: 32, autocapitalize: "none", spellcheck: "false",
        }, withName ? t("auth.username.hint") : null),
        withName && field("displayName", [t("auth.displayName"), " ", h("span", { class: "muted" }, t("auth.optional"))], {
          autocomplete: "nickname", maxlength: 64,
        }),
        field("password", t("auth.password"), {
          type: "password", required: true, autocomplete: withName ? "new-password" : "current-password", maxlength: 1024,
        }, withName ? t("auth.password.hint") : null),
        errors.form,
        submit,
        switcher(current),
      );

      element.addEventListener("submit", async (event) => {
        event.preventDefault();
        for (const error of Object.values(errors)) error.textContent = "";
        const values = Object.fromEntries(new FormData(element));
        let invalid = false;
        for (const name of ["username", "password"]) {
          if (!values[name]) {
            errors[name].textContent = t("error.required");
            invalid = true;
          }
        }
        if (invalid) {
          element.querySelector("[aria-invalid], input:invalid")?.focus();
          return;
        }
        const body = { username: values.username.trim(), password: values.password };
        if (withName && values.displayName?.trim()) body.displayName = values.displayName.trim();
        if (current === "invite") body.invite = inviteToken;
        submit.disabled = true;
        try {
          const { user } = current === "login" ? await api.login(body) : await api.register(body);
          if (current === "invite") history.replaceState(null, "", location.pathname);
          resolve(user);
        } catch (error) {
          const target = errors[error.field] ? error.field : "form";
          errors[target].textContent = errorText(error);
          element.querySelector(`[name="${target}"]`)?.setAttribute("aria-invalid", "true");
          element.querySelector(`[name="${target}"]`)?.focus();
        } finally {
          submit.disabled = false;
        }
      });
      for (const input of element.querySelectorAll("input")) {
        input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
      }
      queueMicrotask(() => element.querySelector("input")?.focus());
      return element;
    };

    const switcher = (current) => {
      if (current === "setup" || current === "invite") return null;
      if (current === "login") {
        if (server.registration === "open") {
          return h("button", { type: "button", class: "link", onclick: () => draw("register") }, t("auth.toRegister"));
        }
        return h("p", { class: "muted small" }, t("auth.registrationClosed"));
      }
      return h("button", { type: "button", class: "link", onclick: () => draw("login") }, t("auth.toLogin"));
    };

    draw(mode);
  });
}
