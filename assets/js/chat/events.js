// Applying the server's realtime events to Chat's state: the connection's state (and, on a
// fresh connection, catching up, restating presence and flushing the outbox), messages, rooms
// appearing and changing, members joining and leaving, read markers, typing and presence.
// Each event updates the state first and then reports a change, like every Chat method.
//
// Must not: touch the DOM or send requests of its own (it calls Chat's methods). Used by
// chat.js only.

/** Subscribes `chat` to its realtime connection's events. */
export function listen(chat) {
  const rt = chat.realtime;
  rt.on("state", (state) => chat.changed("connection", { state }));
  rt.on("connect", ({ recovered }) => {
    if (!recovered) chat.catchUp().catch((error) => console.warn("parley: catch-up failed", error));
    // A new connection starts online; tell the server again if this tab is away.
    if (chat.me.status === "away") rt.emit("presence:set", { status: "away" }).catch(() => {});
    else chat.me.status = "online";
    chat.changed("presence", { userId: chat.me.id });
    chat.outbox.flush();
  });
  rt.on("connect_error", (error) => chat.changed("connect_error", { error }));
  // The session ended elsewhere (logout in another tab, password change, disabled, expired).
  rt.on("session:ended", ({ reason }) => chat.changed("session_ended", { reason }));
  rt.on("message:new", (message) => chat.onMessage(message, true));
  rt.on("message:update", (message) => chat.onMessage(message, false));
  rt.on("message:delete", (message) => chat.onMessage(message, false));
  rt.on("room:new", (room) => {
    chat.rooms.set(room.id, room);
    if (room.peer) chat.rememberUser(room.peer);
    chat.changed("rooms");
  });
  rt.on("room:update", (room) => {
    const known = chat.rooms.get(room.id);
    if (!known) return;
    for (const key of ["name", "topic", "visibility", "memberCount"]) {
      if (key in room && !(key === "name" && known.kind === "direct")) known[key] = room[key];
    }
    chat.changed("rooms");
    chat.changed("room", { roomId: room.id });
  });
  rt.on("room:member", ({ roomId, userId, joined }) => onMember(chat, roomId, userId, joined));
  rt.on("room:read", ({ roomId, userId, seq }) => onRead(chat, roomId, userId, seq));
  rt.on("typing", ({ roomId, userId, typing }) => chat.typing.received(roomId, userId, typing));
  rt.on("presence", ({ userId, status }) => {
    const user = chat.users.get(userId);
    if (user) user.status = status;
    chat.changed("presence", { userId });
  });
}

/** Someone joined or left a room; the user leaving (or being removed) forgets it. */
function onMember(chat, roomId, userId, joined) {
  const room = chat.rooms.get(roomId);
  if (userId === chat.me.id && !joined) {
    chat.forgetRoom(roomId);
    chat.changed("rooms");
    return;
  }
  if (room) room.memberCount = Math.max(0, (room.memberCount ?? 0) + (joined ? 1 : -1));
  if (chat.members.has(roomId)) chat.loadMembers(roomId).catch(() => {});
  chat.changed("room", { roomId });
}

/** A read marker moved: the user's own (from another device) clears unread, another's is a receipt. */
function onRead(chat, roomId, userId, seq) {
  const room = chat.rooms.get(roomId);
  if (userId === chat.me.id) {
    if (!room || seq <= (room.lastReadSeq ?? 0)) return;
    room.lastReadSeq = seq;
    if (seq >= (room.lastSeq ?? 0)) room.unread = 0;
    else chat.refreshRoom(roomId);
    chat.changed("rooms");
  } else {
    const member = chat.members.get(roomId)?.find((m) => m.user.id === userId);
    if (member && seq > (member.lastReadSeq ?? 0)) {
      member.lastReadSeq = seq;
      chat.changed("members", { roomId });
    }
  }
}
