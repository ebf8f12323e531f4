// The REST API, as promises. Authentication is the HttpOnly session cookie the server sets on
// sign-in, so no token ever sits in page storage where a script could read it.
//
// Failures reject with an `ApiError` carrying the server's `{code, message, field}`.
//
// Must not: keep state or touch the DOM.

export class ApiError extends Error {
  constructor({ code, message, field }, status) {
    super(message);
    this.code = code;
    this.field = field;
    this.status = status;
  }
}

async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError({ code: "network", message: "cannot reach the server" }, 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // A proxy's HTML error page, for instance.
  }
  if (!response.ok) {
    throw new ApiError(data?.error ?? { code: "http_" + response.status, message: response.statusText }, response.status);
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  server: () => request("GET", "/api/server"),
  me: () => request("GET", "/api/me"),
  register: (body) => request("POST", "/api/auth/register", body),
  login: (body) => request("POST", "/api/auth/login", body),
  logout: () => request("POST", "/api/auth/logout"),
  users: (q, limit = 20) => request("GET", `/api/users?q=${enc(q)}&limit=${limit}`),
  user: (userId) => request("GET", `/api/users/${userId}`),
  createInvite: () => request("POST", "/api/invites", {}),
  rooms: () => request("GET", "/api/rooms"),
  room: (roomId) => request("GET", `/api/rooms/${roomId}`),
  publicRooms: () => request("GET", "/api/rooms/public"),
  createRoom: (body) => request("POST", "/api/rooms", body),
  joinRoom: (roomId) => request("POST", `/api/rooms/${roomId}/join`),
  leaveRoom: (roomId) => request("POST", `/api/rooms/${roomId}/leave`),
  members: (roomId) => request("GET", `/api/rooms/${roomId}/members`),
  addMember: (roomId, userId) => request("POST", `/api/rooms/${roomId}/members`, { userId }),
  olderMessages: (roomId, cursor, limit = 50) =>
    request("GET", `/api/rooms/${roomId}/messages?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`),
  newerMessages: (roomId, after, limit = 200) =>
    request("GET", `/api/rooms/${roomId}/messages?limit=${limit}&after=${after}`),
  message: (roomId, seq) => request("GET", `/api/rooms/${roomId}/messages/${seq}`),
  openDm: (userId) => request("POST", "/api/dm", { userId }),
};
