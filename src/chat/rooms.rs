//! Rooms and membership: create, list, join, leave, members, rename, direct messages.

use super::views::{MemberView, RoomView, Viewer};
use super::{Chat, ChatError, validate};
use crate::ids::{RoomId, UserId};
use crate::store::Snapshot;
use crate::store::records::{RoomKind, RoomRecord, RoomRole, Visibility};

/// Who may change a room's name/topic and manage its members: its owner and admins, and
/// server admins.
fn can_manage(viewer: &Viewer, role: Option<RoomRole>) -> bool {
    viewer.user.is_admin || matches!(role, Some(RoomRole::Owner | RoomRole::Admin))
}

impl Chat {
    /// The room as `viewer` sees it: with their membership, unread count and last message
    /// when they are a member, and the peer of a direct room.
    pub fn room_view(
        &self,
        snapshot: &Snapshot,
        viewer: UserId,
        id: RoomId,
        room: &RoomRecord,
    ) -> Result<RoomView, ChatError> {
        let mut view = RoomView::base(id, room);
        if let Some(member) = snapshot.member(id, viewer)? {
            view.joined = true;
            view.role = Some(member.role);
            view.last_read_seq = Some(member.last_read);
            view.unread = Some(snapshot.unread_count(id, viewer, member.last_read)?);
            view.last_message = snapshot
                .last_message(id)?
                .map(|(seq, m)| super::views::MessageView::new(id, seq, &m));
        }
        if room.kind == RoomKind::Direct {
            let peer = snapshot
                .members(id)?
                .into_iter()
                .map(|(user, _)| user)
                .find(|user| *user != viewer);
            if let Some(peer_id) = peer
                && let Some(peer) = snapshot.user(peer_id)?
            {
                view.name = peer.display_name.clone();
                view.peer = Some(self.user_view(peer_id, &peer));
            }
        }
        Ok(view)
    }

    /// The room, if `viewer` may see it: members always, anyone for a public group room.
    fn visible_room(
        &self,
        snapshot: &Snapshot,
        viewer: &Viewer,
        id: RoomId,
    ) -> Result<RoomRecord, ChatError> {
        let room = snapshot.room(id)?.ok_or(ChatError::NotFound("room"))?;
        let public = room.kind == RoomKind::Group && room.visibility == Visibility::Public;
        if !public && snapshot.member(id, viewer.id)?.is_none() {
            return Err(ChatError::NotMember);
        }
        Ok(room)
    }

    pub async fn create_room(
        &self,
        viewer: &Viewer,
        name: &str,
        visibility: Visibility,
        topic: Option<&str>,
    ) -> Result<RoomView, ChatError> {
        let name = validate::room_name(name)?;
        let topic = topic.map(validate::topic).transpose()?.flatten();
        let (id, room) = self
            .store
            .create_room(name, visibility, topic, viewer.id)
            .await?;
        self.room_view(&self.store.snapshot()?, viewer.id, id, &room)
    }

    /// The viewer's rooms, most recent activity first.
    pub fn my_rooms(&self, viewer: &Viewer) -> Result<Vec<RoomView>, ChatError> {
        let snapshot = self.store.snapshot()?;
        let mut views = Vec::new();
        for id in snapshot.rooms_of(viewer.id)? {
            if let Some(room) = snapshot.room(id)? {
                views.push(self.room_view(&snapshot, viewer.id, id, &room)?);
            }
        }
        views.sort_by(|a, b| b.last_activity.cmp(&a.last_activity).then(b.id.cmp(&a.id)));
        Ok(views)
    }

    /// Every public group room, by name, marked with whether the viewer has joined.
    pub fn public_rooms(&self, viewer: &Viewer) -> Result<Vec<RoomView>, ChatError> {
        let snapshot = self.store.snapshot()?;
        let mut views = Vec::new();
        for (id, room) in snapshot.public_rooms()? {
            views.push(self.room_view(&snapshot, viewer.id, id, &room)?);
        }
        views.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then(a.id.cmp(&b.id))
        });
        Ok(views)
    }

    pub fn room(&self, viewer: &Viewer, id: RoomId) -> Result<RoomView, ChatError> {
        let snapshot = self.store.snapshot()?;
        let room = self.visible_room(&snapshot, viewer, id)?;
        self.room_view(&snapshot, viewer.id, id, &room)
    }

    /// `topic: Some(None)` clears it.
    pub async fn update_room(
        &self,
        viewer: &Viewer,
        id: RoomId,
        name: Option<&str>,
        topic: Option<Option<&str>>,
    ) -> Result<RoomView, ChatError> {
        {
            let snapshot = self.store.snapshot()?;
            let room = snapshot.room(id)?.ok_or(ChatError::NotFound("room"))?;
            let role = snapshot.member(id, viewer.id)?.map(|m| m.role);
            if room.kind == RoomKind::Direct {
                return Err(ChatError::Forbidden("direct rooms cannot be renamed"));
            }
            if !can_manage(viewer, role) {
                return Err(
                    if role.is_none() && room.visibility == Visibility::Private {
                        ChatError::NotMember
                    } else {
                        ChatError::Forbidden("only the room's owner and admins can change it")
                    },
                );
            }
        }
        let name = name.map(validate::room_name).transpose()?;
        let topic = match topic {
            Some(Some(t)) => Some(validate::topic(t)?),
            Some(None) => Some(None),
            None => None,
        };
        let room = self.store.update_room(id, viewer.id, name, topic).await?;
        self.room_view(&self.store.snapshot()?, viewer.id, id, &room)
    }

    /// Joins a public group room. Joining a room you are in already is not an error.
    pub async fn join(&self, viewer: &Viewer, id: RoomId) -> Result<RoomView, ChatError> {
        {
            let snapshot = self.store.snapshot()?;
            let room = snapshot.room(id)?.ok_or(ChatError::NotFound("room"))?;
            if snapshot.member(id, viewer.id)?.is_some() {
                return self.room_view(&snapshot, viewer.id, id, &room);
            }
            if room.kind != RoomKind::Group || room.visibility != Visibility::Public {
                return Err(ChatError::Forbidden(
                    "this room is private: a member has to add you",
                ));
            }
        }
        match self.store.add_member(id, viewer.id, RoomRole::Member).await {
            Ok(_) | Err(crate::store::StoreError::AlreadyMember) => {}
            Err(e) => return Err(e.into()),
        }
        self.room(viewer, id)
    }

    pub async fn leave(&self, viewer: &Viewer, id: RoomId) -> Result<(), ChatError> {
        let room = self
            .store
            .snapshot()?
            .room(id)?
            .ok_or(ChatError::NotFound("room"))?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::invalid(
                "cannot_leave_direct",
                "roomId",
                "you cannot leave a direct conversation",
            ));
        }
        Ok(self.store.remove_member(id, viewer.id).await?)
    }

    pub fn members(&self, viewer: &Viewer, id: RoomId) -> Result<Vec<MemberView>, ChatError> {
        let snapshot = self.store.snapshot()?;
        snapshot.room(id)?.ok_or(ChatError::NotFound("room"))?;
        if snapshot.member(id, viewer.id)?.is_none() {
            return Err(ChatError::NotMember);
        }
        let mut views = Vec::new();
        for (user_id, member) in snapshot.members(id)? {
            if let Some(user) = snapshot.user(user_id)? {
                views.push(self.member_view(user_id, &user, &member));
            }
        }
        Ok(views)
    }

    /// Adds someone to a group room: its owner/admins (or server admins) may; in a public room
    /// any member may.
    pub async fn add_member(
        &self,
        viewer: &Viewer,
        id: RoomId,
        user: UserId,
    ) -> Result<MemberView, ChatError> {
        {
            let snapshot = self.store.snapshot()?;
            let room = snapshot.room(id)?.ok_or(ChatError::NotFound("room"))?;
            let role = snapshot.member(id, viewer.id)?.map(|m| m.role);
            if room.kind == RoomKind::Direct {
                return Err(ChatError::Forbidden(
                    "direct rooms have exactly two members",
                ));
            }
            if role.is_none() && !viewer.user.is_admin {
                return Err(ChatError::NotMember);
            }
            if room.visibility == Visibility::Private && !can_manage(viewer, role) {
                return Err(ChatError::Forbidden(
                    "only the room's owner and admins can add people to a private room",
                ));
            }
            let target = snapshot.user(user)?.ok_or(ChatError::NotFound("user"))?;
            if target.disabled {
                return Err(ChatError::invalid(
                    "invalid_user",
                    "userId",
                    "that account is disabled",
                ));
            }
        }
        let member = self.store.add_member(id, user, RoomRole::Member).await?;
        let target = self
            .store
            .snapshot()?
            .user(user)?
            .ok_or(ChatError::NotFound("user"))?;
        Ok(self.member_view(user, &target, &member))
    }

    /// Removes a member: yourself (that is leaving), or someone of a lower role if you manage
    /// the room. Server admins may remove anyone.
    pub async fn remove_member(
        &self,
        viewer: &Viewer,
        id: RoomId,
        user: UserId,
    ) -> Result<(), ChatError> {
        if user == viewer.id {
            return self.leave(viewer, id).await;
        }
        {
            let snapshot = self.store.snapshot()?;
            let room = snapshot.room(id)?.ok_or(ChatError::NotFound("room"))?;
            if room.kind == RoomKind::Direct {
                return Err(ChatError::Forbidden(
                    "direct rooms have exactly two members",
                ));
            }
            let role = snapshot.member(id, viewer.id)?.map(|m| m.role);
            // Before the target is looked up: "not found" against "forbidden" would tell an
            // outsider who is in a private room.
            if role.is_none() && !viewer.user.is_admin && room.visibility == Visibility::Private {
                return Err(ChatError::NotMember);
            }
            let target = snapshot
                .member(id, user)?
                .ok_or(ChatError::NotFound("member"))?;
            let outranks = matches!(role, Some(r) if r > target.role);
            if !(viewer.user.is_admin || (can_manage(viewer, role) && outranks)) {
                return Err(ChatError::Forbidden(
                    "only the room's owner and admins can remove people",
                ));
            }
        }
        Ok(self.store.remove_member(id, user).await?)
    }

    /// The direct room with `peer`, created on first use. `bool` is true when created now.
    pub async fn open_dm(
        &self,
        viewer: &Viewer,
        peer: UserId,
    ) -> Result<(RoomView, bool), ChatError> {
        if peer == viewer.id {
            return Err(ChatError::invalid(
                "invalid_user",
                "userId",
                "a direct conversation needs someone else",
            ));
        }
        let target = self
            .store
            .snapshot()?
            .user(peer)?
            .ok_or(ChatError::NotFound("user"))?;
        if target.disabled {
            return Err(ChatError::invalid(
                "invalid_user",
                "userId",
                "that account is disabled",
            ));
        }
        let (id, room, created) = self.store.open_direct(viewer.id, peer).await?;
        let view = self.room_view(&self.store.snapshot()?, viewer.id, id, &room)?;
        Ok((view, created))
    }
}
