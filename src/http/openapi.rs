//! The OpenAPI 3.1 document served at `/api/openapi.json`, built from the route table plus
//! the schema definitions below. Built once, on first request.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;

use super::routes::{Access, ROUTES};

pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true,
                       "schema": {"type": "integer", "minimum": 1}})
            })
            .collect();
        parameters.extend(route.query.iter().map(|name| {
            let schema = if *name == "q" {
                json!({"type": "string"})
            } else {
                json!({"type": "integer", "minimum": 0})
            };
            json!({"name": name, "in": "query", "required": false, "schema": schema})
        }));
        let (status, schema) = route.success;
        let mut success = json!({"description": route.summary});
        if let Some(schema) = schema {
            success["content"] = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
        } else if route.path == "/api/openapi.json" {
            success["content"] = json!({"application/json": {"schema": {"type": "object"}}});
        }
        let mut responses = Map::new();
        responses.insert(status.to_string(), success);
        responses.insert(
            "default".into(),
            json!({"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
        let mut operation = json!({
            "summary": route.summary,
            "operationId": format!("{:?}", route.endpoint),
            "parameters": parameters,
            "responses": responses,
        });
        if route.access == Access::Session {
            operation["security"] = json!([{"bearer": []}, {"cookie": []}]);
        } else {
            operation["security"] = json!([]);
        }
        if let Some(body) = route.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[route.method.as_str().to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "parley", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Self-hosted team chat. Errors are {error:{code,message,field?}}."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "parley_session"}
            },
            "schemas": schemas(),
        }
    })
}

fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let id = json!({"type": "integer", "minimum": 1});
    let nullable_string = json!({"type": ["string", "null"]});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
        "Health": {"type": "object", "properties": {"status": {"const": "ok"}}},
        "ServerInfo": {"type": "object", "required": ["name", "version", "registration", "needsSetup"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "registration": {"enum": ["open", "invite", "closed"]}, "needsSetup": {"type": "boolean"}}},
        "User": {"type": "object", "required": ["id", "username", "displayName", "status", "isAdmin", "disabled"], "properties": {
            "id": id, "username": {"type": "string"}, "displayName": {"type": "string"},
            "avatar": nullable_string, "status": {"enum": ["online", "away", "offline"]},
            "isAdmin": {"type": "boolean"}, "disabled": {"type": "boolean"}}},
        "UserList": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
        "SignedIn": {"type": "object", "required": ["user", "token"], "properties": {
            "user": {"$ref": "#/components/schemas/User"}, "token": {"type": "string"}}},
        "RegisterRequest": {"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string", "minLength": 3, "maxLength": 32, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "password": {"type": "string", "minLength": 8}, "displayName": {"type": "string", "maxLength": 64},
            "invite": {"type": "string"}}},
        "LoginRequest": {"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string"}, "password": {"type": "string"}}},
        "UpdateMeRequest": {"type": "object", "properties": {
            "displayName": {"type": "string", "maxLength": 64}, "avatar": nullable_string}},
        "ChangePasswordRequest": {"type": "object", "required": ["currentPassword", "newPassword"], "properties": {
            "currentPassword": {"type": "string"}, "newPassword": {"type": "string", "minLength": 8}}},
        "InviteRequest": {"type": "object", "properties": {
            "maxUses": {"type": "integer", "minimum": 1, "maximum": 1000},
            "expiresInHours": {"type": "integer", "minimum": 1, "maximum": 8760}}},
        "Invite": {"type": "object", "required": ["token", "expiresAt", "maxUses"], "properties": {
            "token": {"type": "string"}, "expiresAt": time, "maxUses": {"type": "integer"}}},
        "Room": {"type": "object", "required": ["id", "name", "kind", "visibility", "createdAt", "lastSeq", "memberCount", "joined"], "properties": {
            "id": id, "name": {"type": "string"}, "kind": {"enum": ["group", "direct"]},
            "visibility": {"enum": ["public", "private"]}, "topic": nullable_string, "createdAt": time,
            "lastSeq": {"type": "integer", "minimum": 0}, "memberCount": {"type": "integer"},
            "joined": {"type": "boolean"}, "role": {"enum": ["owner", "admin", "member", null]},
            "unread": {"type": ["integer", "null"]}, "lastReadSeq": {"type": ["integer", "null"]},
            "lastMessage": {"oneOf": [{"$ref": "#/components/schemas/Message"}, {"type": "null"}]},
            "peer": {"oneOf": [{"$ref": "#/components/schemas/User"}, {"type": "null"}]}}},
        "RoomList": {"type": "array", "items": {"$ref": "#/components/schemas/Room"}},
        "CreateRoomRequest": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 80}, "visibility": {"enum": ["public", "private"]},
            "topic": {"type": "string", "maxLength": 500}}},
        "UpdateRoomRequest": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 80}, "topic": nullable_string}},
        "AddMemberRequest": {"type": "object", "required": ["userId"], "properties": {"userId": id}},
        "OpenDmRequest": {"type": "object", "required": ["userId"], "properties": {"userId": id}},
        "Member": {"type": "object", "required": ["user", "role", "joinedAt", "lastReadSeq"], "properties": {
            "user": {"$ref": "#/components/schemas/User"}, "role": {"enum": ["owner", "admin", "member"]},
            "joinedAt": time, "lastReadSeq": {"type": "integer"}}},
        "MemberList": {"type": "array", "items": {"$ref": "#/components/schemas/Member"}},
        "Message": {"type": "object", "required": ["roomId", "seq", "senderId", "content", "createdAt", "deleted"], "properties": {
            "roomId": id, "seq": id, "senderId": id, "content": {"type": "string"}, "createdAt": time,
            "editedAt": {"type": ["string", "null"], "format": "date-time"}, "deleted": {"type": "boolean"},
            "replyTo": {"type": ["integer", "null"]}, "attachments": {"type": "array"},
            "clientId": nullable_string}},
        "Page": {"type": "object", "required": ["items", "nextCursor"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "nextCursor": {"type": ["integer", "null"]}}},
        "SendMessageRequest": {"type": "object", "required": ["content"], "properties": {
            "content": {"type": "string", "minLength": 1, "maxLength": 8000},
            "clientId": {"type": "string", "format": "uuid"}, "replyTo": id}},
        "EditMessageRequest": {"type": "object", "required": ["content"], "properties": {
            "content": {"type": "string", "minLength": 1, "maxLength": 8000}}},
        "MarkReadRequest": {"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer", "minimum": 0}}},
        "ReadState": {"type": "object", "required": ["roomId", "lastReadSeq"], "properties": {
            "roomId": id, "lastReadSeq": {"type": "integer"}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_ref_resolves() {
        let doc = document();
        for route in ROUTES {
            let method = route.method.as_str().to_lowercase();
            assert!(
                doc["paths"][route.path][&method].is_object(),
                "{} {} missing",
                route.method,
                route.path
            );
        }
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                doc["components"]["schemas"][&name].is_object(),
                "dangling $ref {name}"
            );
        }
    }
}
