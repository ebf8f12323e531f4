// Modal dialogs on the native <dialog> element (focus trapping, Escape and inertness come free):
// confirmation, create a room, browse public rooms, start a direct message, invite people.
//
// Must not: change chat state or talk to the server except through the Chat object it is given.

import { h, icon } from "../dom.js";
import { initials } from "../format.js";
import { errorText, t } from "../i18n.js";

let dialogCount = 0;

/** Opens a modal; `build(close)` returns its body. Resolves with the value passed to close(). */
export function modal(title, build, { className = "" } = {}) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${++dialogCount}`;
    const dialog = h("dialog", { class: `modal ${className}`, "aria-labelledby": titleId });
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    dialog.append(
      h("div", { class: "modal-head" },
        h("h2", { id: titleId }, title),
        h("button", { type: "button", class: "icon-button", "aria-label": t("dialog.close"), onclick: () => close(undefined) }, icon("close"))),
      build(close),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) close(undefined); // a click on the backdrop
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("[autofocus]")?.focus();
  });
}

/** Asks a yes/no question; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = t("dialog.confirm"), { danger = false } = {}) {
  return modal(title, (close) => h("div", { class: "modal-body" },
    h("p", {}, text),
    h("div", { class: "modal-actions" },
      h("button", { type: "button", class: "secondary", onclick: () => close(false) }, t("dialog.cancel")),
      h("button", { type: "button", class: danger ? "danger" : "primary", autofocus: true, onclick: () => close(true) }, confirmLabel))))
    .then(Boolean);
}

/** The "create a room" form; resolves with the new room. */
export function createRoomDialog(chat) {
  return modal(t("createRoom.title"), (close) => {
    const nameError = h("p", { class: "field-error", id: "room-name-error", role: "alert" });
    const topicError = h("p", { class: "field-error", id: "room-topic-error", role: "alert" });
    const form = h("form", { class: "modal-body", novalidate: true },
      h("div", { class: "field" },
        h("label", { for: "room-name" }, t("createRoom.name")),
        h("input", { id: "room-name", name: "name", required: true, maxlength: 80, autofocus: true, "aria-describedby": "room-name-error" }),
        nameError),
      h("div", { class: "field" },
        h("label", { for: "room-topic" }, [t("createRoom.topic"), " ", h("span", { class: "muted" }, t("auth.optional"))]),
        h("input", { id: "room-topic", name: "topic", maxlength: 500, "aria-describedby": "room-topic-error" }),
        topicError),
      h("fieldset", { class: "field" },
        h("legend", {}, t("createRoom.visibility")),
        h("label", { class: "choice" }, h("input", { type: "radio", name: "visibility", value: "public", checked: true }), t("createRoom.public")),
        h("label", { class: "choice" }, h("input", { type: "radio", name: "visibility", value: "private" }), t("createRoom.private"))),
      h("div", { class: "modal-actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(undefined) }, t("dialog.cancel")),
        h("button", { type: "submit", class: "primary" }, t("createRoom.submit"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      nameError.textContent = topicError.textContent = "";
      const values = Object.fromEntries(new FormData(form));
      const body = { name: values.name.trim(), visibility: values.visibility };
      if (!body.name) {
        nameError.textContent = t("error.required");
        form.elements.name.focus();
        return;
      }
      if (values.topic.trim()) body.topic = values.topic.trim();
      try {
        close(await chat.createRoom(body));
      } catch (error) {
        (error.field === "topic" ? topicError : nameError).textContent = errorText(error);
      }
    });
    return form;
  });
}

/** Lists public rooms with Join/Open; resolves with the room to open. */
export function browseRoomsDialog(chat) {
  return modal(t("browse.title"), (close) => {
    const list = h("ul", { class: "pick-list", "aria-busy": "true" }, h("li", { class: "muted" }, t("app.loading")));
    chat.publicRooms().then((rooms) => {
      list.removeAttribute("aria-busy");
      if (rooms.length === 0) {
        list.replaceChildren(h("li", { class: "muted" }, t("browse.none")));
        return;
      }
      list.replaceChildren(...rooms.map((room) => {
        const error = h("p", { class: "field-error", role: "alert" });
        const joined = chat.rooms.has(room.id);
        return h("li", { class: "pick-row" },
          h("div", { class: "pick-main" },
            h("strong", {}, `# ${room.name}`),
            room.topic && h("span", { class: "muted small" }, room.topic),
            h("span", { class: "muted small" }, t("browse.members", { count: room.memberCount })),
            error),
          h("button", {
            type: "button", class: joined ? "secondary" : "primary",
            "aria-label": `${joined ? t("browse.open") : t("browse.join")} ${room.name}`,
            onclick: async () => {
              try {
                close(joined ? chat.rooms.get(room.id) : await chat.joinRoom(room.id));
              } catch (e) {
                error.textContent = errorText(e);
              }
            },
          }, joined ? t("browse.open") : t("browse.join")));
      }));
    }, (error) => list.replaceChildren(h("li", { class: "field-error" }, errorText(error))));
    return h("div", { class: "modal-body" }, list);
  });
}

/**
 * A user search box (searching through `chat`); `onPick(user, errorElement)` runs when a
 * result is chosen. Used for new direct messages and for adding members.
 */
export function userPicker({ chat, label, placeholder, exclude = () => false, onPick }) {
  const input = h("input", { id: `user-search-${++dialogCount}`, type: "search", placeholder, autocomplete: "off", autofocus: true, maxlength: 32 });
  const results = h("ul", { class: "pick-list", "aria-live": "polite" });
  const error = h("p", { class: "field-error", role: "alert" });
  let generation = 0;
  const search = async () => {
    const mine = ++generation;
    const q = input.value.trim();
    if (!q) {
      results.replaceChildren();
      return;
    }
    try {
      const users = (await chat.searchUsers(q, 20)).filter((user) => !exclude(user) && !user.disabled);
      if (mine !== generation) return;
      results.replaceChildren(...(users.length === 0
        ? [h("li", { class: "muted" }, t("dm.none"))]
        : users.map((user) => h("li", {},
          h("button", { type: "button", class: "pick-user", onclick: () => onPick(user, error) },
            h("span", { class: "avatar small", "aria-hidden": "true" }, initials(user.displayName)),
            h("span", {}, user.displayName, " ", h("span", { class: "muted" }, `@${user.username}`)))))));
    } catch (e) {
      error.textContent = errorText(e);
    }
  };
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  return h("div", { class: "user-picker" },
    h("label", { for: input.id }, label), input, error, results);
}

export function newDmDialog(chat) {
  return modal(t("dm.title"), (close) => h("div", { class: "modal-body" }, userPicker({
    chat,
    label: t("dm.search"),
    placeholder: t("dm.placeholder"),
    exclude: (user) => user.id === chat.me.id,
    onPick: async (user, error) => {
      try {
        close(await chat.openDm(user.id));
      } catch (e) {
        error.textContent = errorText(e);
      }
    },
  })));
}

export function inviteDialog(chat) {
  return modal(t("invite.title"), () => {
    const output = h("input", { id: "invite-link", readonly: true, value: t("app.loading") });
    const copy = h("button", { type: "button", class: "primary", disabled: true }, t("invite.copy"));
    const error = h("p", { class: "field-error", role: "alert" });
    chat.createInvite().then(({ token }) => {
      output.value = `${location.origin}/#invite/${token}`;
      copy.disabled = false;
      output.select();
    }, (e) => {
      error.textContent = errorText(e);
    });
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(output.value);
      } catch {
        output.select();
        document.execCommand?.("copy");
      }
      copy.textContent = t("invite.copied");
    });
    return h("div", { class: "modal-body" },
      h("p", {}, t("invite.lead")),
      h("div", { class: "field" }, h("label", { for: "invite-link" }, t("invite.link")), h("div", { class: "row" }, output, copy)),
      error);
  });
}
