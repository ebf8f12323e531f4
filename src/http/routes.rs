//! The route table: every endpoint the API serves, with the facts the OpenAPI document is built
//! from. The router and the document both read this one table, so they cannot drift apart.
//!
//! Must not: handle requests (that is `api`).

use hyper::Method;

use crate::ids::MAX_WIRE_ID;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Metrics,
    OpenApi,
    ServerInfo,
    Register,
    Login,
    Logout,
    Me,
    UpdateMe,
    ChangePassword,
    SearchUsers,
    GetUser,
    CreateInvite,
    MyRooms,
    CreateRoom,
    PublicRooms,
    GetRoom,
    UpdateRoom,
    JoinRoom,
    LeaveRoom,
    Members,
    AddMember,
    RemoveMember,
    History,
    SendMessage,
    GetMessage,
    EditMessage,
    DeleteMessage,
    MarkRead,
    OpenDm,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    Session,
}

pub struct RouteSpec {
    pub method: Method,
    /// `{name}` segments are positive integer ids.
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
    pub summary: &'static str,
    /// Request body schema (a name under `components.schemas` in the OpenAPI document).
    pub body: Option<&'static str>,
    /// Query parameters, all optional.
    pub query: &'static [&'static str],
    /// Success status and response schema (`None` for an empty body).
    pub success: (u16, Option<&'static str>),
}

macro_rules! route {
    ($method:ident $path:literal => $endpoint:ident, $access:ident, $summary:literal,
     body: $body:expr, query: $query:expr, ok: ($status:literal, $schema:expr)) => {
        RouteSpec {
            method: Method::$method,
            path: $path,
            endpoint: Endpoint::$endpoint,
            access: Access::$access,
            summary: $summary,
            body: $body,
            query: $query,
            success: ($status, $schema),
        }
    };
}

pub static ROUTES: &[RouteSpec] = &[
    route!(GET "/healthz" => Healthz, Public, "Liveness: 200 when the store answers",
        body: None, query: &[], ok: (200, Some("Health"))),
    route!(GET "/metrics" => Metrics, Public, "Prometheus metrics (Bearer metrics token, or loopback clients when none is set)",
        body: None, query: &[], ok: (200, None)),
    route!(GET "/api/openapi.json" => OpenApi, Public, "This OpenAPI document",
        body: None, query: &[], ok: (200, None)),
    route!(GET "/api/server" => ServerInfo, Public, "Server name, version, registration mode, whether setup is needed",
        body: None, query: &[], ok: (200, Some("ServerInfo"))),
    route!(POST "/api/auth/register" => Register, Public, "Create an account (the first one is the admin) and sign in",
        body: Some("RegisterRequest"), query: &[], ok: (201, Some("SignedIn"))),
    route!(POST "/api/auth/login" => Login, Public, "Sign in",
        body: Some("LoginRequest"), query: &[], ok: (200, Some("SignedIn"))),
    route!(POST "/api/auth/logout" => Logout, Session, "End this session",
        body: None, query: &[], ok: (204, None)),
    route!(GET "/api/me" => Me, Session, "The signed-in user",
        body: None, query: &[], ok: (200, Some("User"))),
    route!(PATCH "/api/me" => UpdateMe, Session, "Change display name or avatar",
        body: Some("UpdateMeRequest"), query: &[], ok: (200, Some("User"))),
    route!(POST "/api/me/password" => ChangePassword, Session, "Change password; ends every other session",
        body: Some("ChangePasswordRequest"), query: &[], ok: (204, None)),
    route!(GET "/api/users" => SearchUsers, Session, "Find users by username prefix",
        body: None, query: &["q", "limit"], ok: (200, Some("UserList"))),
    route!(GET "/api/users/{userId}" => GetUser, Session, "One user",
        body: None, query: &[], ok: (200, Some("User"))),
    route!(POST "/api/invites" => CreateInvite, Session, "Create an invite token (server admins)",
        body: Some("InviteRequest"), query: &[], ok: (201, Some("Invite"))),
    route!(GET "/api/rooms" => MyRooms, Session, "My rooms, most recent activity first",
        body: None, query: &[], ok: (200, Some("RoomList"))),
    route!(POST "/api/rooms" => CreateRoom, Session, "Create a group room",
        body: Some("CreateRoomRequest"), query: &[], ok: (201, Some("Room"))),
    route!(GET "/api/rooms/public" => PublicRooms, Session, "Every public room",
        body: None, query: &[], ok: (200, Some("RoomList"))),
    route!(GET "/api/rooms/{roomId}" => GetRoom, Session, "One room",
        body: None, query: &[], ok: (200, Some("Room"))),
    route!(PATCH "/api/rooms/{roomId}" => UpdateRoom, Session, "Rename a room or change its topic",
        body: Some("UpdateRoomRequest"), query: &[], ok: (200, Some("Room"))),
    route!(POST "/api/rooms/{roomId}/join" => JoinRoom, Session, "Join a public room",
        body: None, query: &[], ok: (200, Some("Room"))),
    route!(POST "/api/rooms/{roomId}/leave" => LeaveRoom, Session, "Leave a room",
        body: None, query: &[], ok: (204, None)),
    route!(GET "/api/rooms/{roomId}/members" => Members, Session, "Members of a room",
        body: None, query: &[], ok: (200, Some("MemberList"))),
    route!(POST "/api/rooms/{roomId}/members" => AddMember, Session, "Add someone to a room",
        body: Some("AddMemberRequest"), query: &[], ok: (201, Some("Member"))),
    route!(DELETE "/api/rooms/{roomId}/members/{userId}" => RemoveMember, Session, "Remove someone from a room",
        body: None, query: &[], ok: (204, None)),
    route!(GET "/api/rooms/{roomId}/messages" => History, Session, "A page of history: older with cursor, newer with after",
        body: None, query: &["cursor", "after", "limit"], ok: (200, Some("Page"))),
    route!(POST "/api/rooms/{roomId}/messages" => SendMessage, Session, "Send a message (idempotent on clientId: a repeat returns 200 and the first result)",
        body: Some("SendMessageRequest"), query: &[], ok: (201, Some("Message"))),
    route!(GET "/api/rooms/{roomId}/messages/{seq}" => GetMessage, Session, "One message",
        body: None, query: &[], ok: (200, Some("Message"))),
    route!(PATCH "/api/rooms/{roomId}/messages/{seq}" => EditMessage, Session, "Edit your message",
        body: Some("EditMessageRequest"), query: &[], ok: (200, Some("Message"))),
    route!(DELETE "/api/rooms/{roomId}/messages/{seq}" => DeleteMessage, Session, "Delete a message (it stays as a tombstone)",
        body: None, query: &[], ok: (200, Some("Message"))),
    route!(POST "/api/rooms/{roomId}/read" => MarkRead, Session, "Move my read position forward",
        body: Some("MarkReadRequest"), query: &[], ok: (200, Some("ReadState"))),
    route!(POST "/api/dm" => OpenDm, Session, "The direct room with a user (201 when created, 200 when it existed)",
        body: Some("OpenDmRequest"), query: &[], ok: (201, Some("Room"))),
];

/// Path parameters in the order they appear.
pub type Params = [u64; 2];

pub enum RouteMatch {
    Found(&'static RouteSpec, Params),
    /// The path exists with other methods.
    MethodNotAllowed(Vec<Method>),
    /// The path has the right shape but a parameter is not a valid id.
    BadParam(&'static str),
    NotFound,
}

pub fn resolve(method: &Method, path: &str) -> RouteMatch {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    let mut bad_param = None;
    for route in ROUTES {
        match match_path(route.path, &segments) {
            PathMatch::No => {}
            PathMatch::BadParam(name) => bad_param = bad_param.or(Some(name)),
            PathMatch::Yes(params) if route.method == *method => {
                return RouteMatch::Found(route, params);
            }
            PathMatch::Yes(_) => allowed.push(route.method.clone()),
        }
    }
    if !allowed.is_empty() {
        RouteMatch::MethodNotAllowed(allowed)
    } else if let Some(name) = bad_param {
        RouteMatch::BadParam(name)
    } else {
        RouteMatch::NotFound
    }
}

enum PathMatch {
    Yes(Params),
    BadParam(&'static str),
    No,
}

fn match_path(pattern: &'static str, segments: &[&str]) -> PathMatch {
    let wanted = pattern.trim_end_matches('/').split('/');
    if wanted.clone().count() != segments.len() {
        return PathMatch::No;
    }
    let mut params = [0u64; 2];
    let mut next = 0;
    let mut bad = None;
    for (want, got) in wanted.zip(segments) {
        if let Some(name) = want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            match got.parse::<u64>() {
                Ok(id) if (1..=MAX_WIRE_ID).contains(&id) && next < params.len() => {
                    params[next] = id;
                    next += 1;
                }
                _ => bad = bad.or(Some(name)),
            }
        } else if want != *got {
            return PathMatch::No;
        }
    }
    match bad {
        Some(name) => PathMatch::BadParam(name),
        None => PathMatch::Yes(params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: Method, path: &str) -> Option<(Endpoint, Params)> {
        match resolve(&method, path) {
            RouteMatch::Found(route, params) => Some((route.endpoint, params)),
            _ => None,
        }
    }

    #[test]
    fn resolves_static_and_parameter_routes() {
        assert_eq!(
            found(Method::GET, "/api/rooms").map(|f| f.0),
            Some(Endpoint::MyRooms)
        );
        assert_eq!(
            found(Method::GET, "/api/rooms/public").map(|f| f.0),
            Some(Endpoint::PublicRooms)
        );
        assert_eq!(
            found(Method::PATCH, "/api/rooms/7/messages/42"),
            Some((Endpoint::EditMessage, [7, 42]))
        );
        assert_eq!(found(Method::GET, "/api/me/"), Some((Endpoint::Me, [0, 0])));
    }

    #[test]
    fn reports_wrong_method_bad_ids_and_unknown_paths() {
        assert!(matches!(
            resolve(&Method::PUT, "/api/rooms"),
            RouteMatch::MethodNotAllowed(m) if m.contains(&Method::GET) && m.contains(&Method::POST)
        ));
        assert!(matches!(
            resolve(&Method::GET, "/api/rooms/abc/members"),
            RouteMatch::BadParam("roomId")
        ));
        assert!(matches!(
            resolve(&Method::GET, "/api/rooms/0/members"),
            RouteMatch::BadParam("roomId")
        ));
        assert!(matches!(
            resolve(&Method::GET, "/api/rooms/9007199254740992"),
            RouteMatch::BadParam("roomId")
        ));
        assert!(matches!(
            resolve(&Method::GET, "/api/nope"),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn every_route_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
