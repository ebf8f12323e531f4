// Catching up: after a fresh (not recovered) connection, reload the room list and fetch, for
// every loaded timeline, whatever arrived while the client was away (one `sync` request for
// all rooms, then pages forward where a room had more); and filling a gap in one room when a
// live message shows that some were missed. Seqs make all of it free of duplicates.
//
// Must not: touch the DOM; change state except through the timelines and Chat methods it is
// given. Called by chat.js only.

import { api } from "../api.js";

const SYNC_MAX_ROOMS = 200;
const MAX_FORWARD_PAGES = 50;

/** After a fresh connection: the room list, every loaded timeline's news, the open room's members. */
export async function catchUp(chat) {
  await chat.loadRooms();
  const wanted = {};
  for (const [roomId, timeline] of chat.timelines) {
    if (chat.rooms.has(roomId) && timeline.size > 0) wanted[roomId] = timeline.newestSeq();
  }
  const ids = Object.keys(wanted).slice(0, SYNC_MAX_ROOMS);
  if (ids.length > 0) {
    const ack = await chat.realtime.emit("sync", { rooms: Object.fromEntries(ids.map((id) => [id, wanted[id]])) });
    if (ack?.ok) {
      for (const [roomId, result] of Object.entries(ack.rooms)) {
        const timeline = chat.timelines.get(Number(roomId));
        if (!timeline || !result.items) continue;
        for (const message of result.items) {
          timeline.upsert(message);
          chat.ensureUser(message.senderId);
        }
        if (result.hasMore) await catchUpRoom(chat, Number(roomId));
        chat.changed("timeline", { roomId: Number(roomId) });
      }
    }
  }
  if (chat.activeRoomId && chat.rooms.has(chat.activeRoomId)) await chat.loadMembers(chat.activeRoomId).catch(() => {});
  chat.changed("rooms");
}

/** Pages forward from a timeline's newest message until the room's latest. */
export async function catchUpRoom(chat, roomId) {
  const timeline = chat.timelines.get(roomId);
  if (!timeline) return;
  let after = timeline.newestSeq();
  for (let pages = 0; pages < MAX_FORWARD_PAGES; pages++) {
    const page = await api.newerMessages(roomId, after);
    for (const message of page.items) timeline.upsert(message);
    chat.changed("timeline", { roomId });
    if (page.nextCursor === null || page.items.length === 0) break;
    after = page.nextCursor;
  }
}
