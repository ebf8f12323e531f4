//! The handlers: one arm per endpoint, each parsing its input, calling one `chat` function and
//! shaping the answer. No rules live here.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Deserializer};

use super::request::{client_address, foreign_origin, json_body, query_number, query_pairs};
use super::response::{ApiError, Body, clear_session_cookie, empty, json, set_session_cookie};
use super::routes::{Access, Endpoint, Params, RouteSpec};
use crate::app::App;
use crate::auth::{TokenSource, session_token};
use crate::chat::views::{SignedIn, Viewer};
use crate::chat::{ChatError, HistoryQuery, RegisterInput, SendMessage};
use crate::ids::{MessageSeq, RoomId, UserId};
use crate::store::records::Visibility;

/// Tells "absent" (`None`) from "null" (`Some(None)`) for fields that can be cleared.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    username: String,
    password: String,
    display_name: Option<String>,
    invite: Option<String>,
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateMeRequest {
    display_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    avatar: Option<Option<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InviteRequest {
    max_uses: Option<u32>,
    expires_in_hours: Option<u32>,
}

#[derive(Deserialize)]
struct CreateRoomRequest {
    name: String,
    visibility: Option<Visibility>,
    topic: Option<String>,
}

#[derive(Deserialize)]
struct UpdateRoomRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    topic: Option<Option<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRef {
    user_id: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessageRequest {
    content: String,
    client_id: Option<String>,
    reply_to: Option<u64>,
}

#[derive(Deserialize)]
struct EditMessageRequest {
    content: String,
}

#[derive(Deserialize)]
struct MarkReadRequest {
    seq: u64,
}

/// The signed-in user, or 401. A cookie-borne session on an unsafe method must come from a
/// page of this same origin (a second line of defence after SameSite=Lax).
async fn viewer(app: &App, request: &Request<Incoming>) -> Result<Viewer, ApiError> {
    let (token, source) =
        session_token(request.headers()).ok_or(ApiError::from(ChatError::Unauthenticated))?;
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD);
    if matches!(source, TokenSource::Cookie) && unsafe_method && foreign_origin(request.headers()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "cross-origin requests cannot use the session cookie",
        ));
    }
    Ok(app.chat().authenticate(&token).await?)
}

fn signed_in(app: &App, status: StatusCode, signed_in: &SignedIn) -> Response<Body> {
    let mut response = json(status, signed_in);
    let max_age = i64::from(app.config().session_days) * 24 * 60 * 60;
    set_session_cookie(&mut response, &signed_in.token, max_age);
    response
}

pub async fn handle(
    app: &App,
    route: &'static RouteSpec,
    params: Params,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let chat = app.chat();
    let address = client_address(request.headers(), peer, app.config().trust_proxy);
    let viewer = match route.access {
        Access::Public => None,
        Access::Session => Some(viewer(app, &request).await?),
    };
    let me = || {
        viewer
            .as_ref()
            .ok_or(ApiError::from(ChatError::Unauthenticated))
    };
    let room = RoomId(params[0]);
    let ok = |value: &dyn erased::Json| value.respond(StatusCode::OK);

    Ok(match route.endpoint {
        Endpoint::Healthz => match app.chat().store().snapshot().and_then(|s| s.ping()) {
            Ok(_) => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
            Err(e) => {
                tracing::error!(error = %e, "health check failed");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store does not answer",
                ));
            }
        },
        Endpoint::Metrics => super::metrics::respond(app, &request, peer)?,
        Endpoint::OpenApi => json(StatusCode::OK, super::openapi::document()),
        Endpoint::ServerInfo => ok(&chat.server_info()?),
        Endpoint::Register => {
            let body: RegisterRequest = json_body(request).await?;
            let result = chat
                .register(
                    RegisterInput {
                        username: body.username,
                        password: body.password,
                        display_name: body.display_name,
                        invite: body.invite,
                    },
                    address,
                )
                .await?;
            signed_in(app, StatusCode::CREATED, &result)
        }
        Endpoint::Login => {
            let body: LoginRequest = json_body(request).await?;
            let result = chat.login(&body.username, body.password, address).await?;
            signed_in(app, StatusCode::OK, &result)
        }
        Endpoint::Logout => {
            chat.logout(me()?).await?;
            let mut response = empty(StatusCode::NO_CONTENT);
            clear_session_cookie(&mut response);
            response
        }
        Endpoint::Me => ok(&chat.me(me()?)),
        Endpoint::UpdateMe => {
            let body: UpdateMeRequest = json_body(request).await?;
            ok(&chat
                .update_me(me()?, body.display_name, body.avatar)
                .await?)
        }
        Endpoint::ChangePassword => {
            let body: ChangePasswordRequest = json_body(request).await?;
            chat.change_password(me()?, body.current_password, body.new_password)
                .await?;
            empty(StatusCode::NO_CONTENT)
        }
        Endpoint::SearchUsers => {
            let pairs = query_pairs(request.uri().query());
            let q = pairs
                .iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let limit = query_number(&pairs, "limit")?;
            ok(&chat.search_users(q, limit)?)
        }
        Endpoint::GetUser => ok(&chat.user(UserId(params[0]))?),
        Endpoint::CreateInvite => {
            let body: InviteRequest = json_body(request).await?;
            let invite = chat
                .create_invite(me()?, body.max_uses, body.expires_in_hours)
                .await?;
            json(StatusCode::CREATED, &invite)
        }
        Endpoint::MyRooms => ok(&chat.my_rooms(me()?)?),
        Endpoint::CreateRoom => {
            let body: CreateRoomRequest = json_body(request).await?;
            let created = chat
                .create_room(
                    me()?,
                    &body.name,
                    body.visibility.unwrap_or(Visibility::Public),
                    body.topic.as_deref(),
                )
                .await?;
            json(StatusCode::CREATED, &created)
        }
        Endpoint::PublicRooms => ok(&chat.public_rooms(me()?)?),
        Endpoint::GetRoom => ok(&chat.room(me()?, room)?),
        Endpoint::UpdateRoom => {
            let body: UpdateRoomRequest = json_body(request).await?;
            let topic = body.topic.as_ref().map(|t| t.as_deref());
            ok(&chat
                .update_room(me()?, room, body.name.as_deref(), topic)
                .await?)
        }
        Endpoint::JoinRoom => ok(&chat.join(me()?, room).await?),
        Endpoint::LeaveRoom => {
            chat.leave(me()?, room).await?;
            empty(StatusCode::NO_CONTENT)
        }
        Endpoint::Members => ok(&chat.members(me()?, room)?),
        Endpoint::AddMember => {
            let body: UserRef = json_body(request).await?;
            let member = chat.add_member(me()?, room, UserId(body.user_id)).await?;
            json(StatusCode::CREATED, &member)
        }
        Endpoint::RemoveMember => {
            chat.remove_member(me()?, room, UserId(params[1])).await?;
            empty(StatusCode::NO_CONTENT)
        }
        Endpoint::History => {
            let pairs = query_pairs(request.uri().query());
            let query = HistoryQuery {
                cursor: query_number(&pairs, "cursor")?,
                after: query_number(&pairs, "after")?,
                limit: query_number(&pairs, "limit")?,
            };
            ok(&chat.history(me()?, room, query)?)
        }
        Endpoint::SendMessage => {
            let body: SendMessageRequest = json_body(request).await?;
            let input = SendMessage {
                room,
                content: body.content,
                client_id: body.client_id,
                reply_to: body.reply_to,
            };
            let (message, replayed) = chat.send_message(me()?, input).await?;
            let status = if replayed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            json(status, &message)
        }
        Endpoint::GetMessage => ok(&chat.message(me()?, room, MessageSeq(params[1]))?),
        Endpoint::EditMessage => {
            let body: EditMessageRequest = json_body(request).await?;
            ok(&chat
                .edit_message(me()?, room, MessageSeq(params[1]), &body.content)
                .await?)
        }
        Endpoint::DeleteMessage => ok(&chat
            .delete_message(me()?, room, MessageSeq(params[1]))
            .await?),
        Endpoint::MarkRead => {
            let body: MarkReadRequest = json_body(request).await?;
            ok(&chat.mark_read(me()?, room, MessageSeq(body.seq)).await?)
        }
        Endpoint::OpenDm => {
            let body: UserRef = json_body(request).await?;
            let (dm, created) = chat.open_dm(me()?, UserId(body.user_id)).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json(status, &dm)
        }
    })
}

/// Lets one `ok(&value)` helper serialize any response type without a generic closure.
mod erased {
    use super::{Body, Response, StatusCode};

    pub trait Json {
        fn respond(&self, status: StatusCode) -> Response<Body>;
    }

    impl<T: serde::Serialize> Json for T {
        fn respond(&self, status: StatusCode) -> Response<Body> {
            super::json(status, self)
        }
    }
}
