// The web client's entry point: picks the language, asks the server whether it needs setup,
// shows the sign-in screens or starts the chat, and goes back to sign-in when the session ends.
//
// Must not: hold chat state (chat.js) or draw chat screens (ui/).

import { api } from "./api.js";
import { h } from "./dom.js";
import { currentLocale, setLocale, t } from "./i18n.js";
import { showAuth } from "./ui/auth.js";
import { startChat } from "./ui/shell.js";

setLocale(currentLocale());
const root = document.getElementById("app");

/** `#invite/<token>` links come from an admin's "Invite people". */
function inviteFromUrl() {
  const match = /^#\/?invite\/([A-Za-z0-9_-]{8,200})$/.exec(location.hash);
  return match ? match[1] : null;
}

async function boot() {
  root.replaceChildren(h("p", { class: "boot", role: "status" }, t("app.loading")));
  let server;
  try {
    server = await api.server();
  } catch {
    root.replaceChildren(h("p", { class: "boot", role: "alert" }, t("error.network")));
    setTimeout(boot, 3000);
    return;
  }
  let me = null;
  try {
    me = await api.me();
  } catch {
    // Not signed in.
  }
  if (!me) {
    const invite = inviteFromUrl();
    const mode = server.needsSetup ? "setup" : invite ? "invite" : "login";
    document.title = "parley";
    root.className = "app app-auth";
    // Opening an invite link in a tab that already shows the sign-in form changes only the hash.
    const onHash = () => {
      if (inviteFromUrl() !== invite) {
        removeEventListener("hashchange", onHash);
        boot();
      }
    };
    addEventListener("hashchange", onHash);
    await showAuth(root, { server, mode, inviteToken: invite });
    removeEventListener("hashchange", onHash);
    me = await api.me();
  }
  root.className = "app app-chat";
  startChat(root, { me, server, onSignedOut: boot });
}

boot();
