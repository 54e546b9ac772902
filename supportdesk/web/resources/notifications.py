"""Notifications (DESIGN.md section 12): one's own preferences, as JSON and as a page, and
following a ticket, as JSON and as the ticket page's button."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.preferences import PreferenceService, preferences_from_form
from supportdesk.tickets.following import FollowService
from supportdesk.web.resources.common import Pages, form_data, json_object

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class NotificationPreferencesResource:
    def __init__(self, preferences: PreferenceService):
        self.preferences = preferences

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.preferences.get(req.context.user)

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.preferences.replace(req.context.user, json_object(req))


class NotificationsPage:
    """The four checkboxes; a box not ticked is off (a browser sends nothing for it)."""

    def __init__(self, preferences: PreferenceService, pages: Pages):
        self.preferences = preferences
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.render(
            req,
            resp,
            "notifications.html",
            preferences=self.preferences.get(req.context.user),
            done=req.get_param("done"),
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.preferences.replace(req.context.user, preferences_from_form(form_data(req)))
        raise falcon.HTTPSeeOther("/account/notifications?done=1")


class TicketFollowResource:
    """POST follows, DELETE stops: 200 `{following}` either way, however often."""

    def __init__(self, following: FollowService):
        self.following = following

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        resp.media = {"following": self.following.set_following(req.context.user, pid, True)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        resp.media = {"following": self.following.set_following(req.context.user, pid, False)}


class TicketFollowPage:
    """The ticket page's Follow / Unfollow button (`follow`: `yes` or `no`)."""

    def __init__(self, following: FollowService):
        self.following = following

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        follow = form_data(req).get("follow") != "no"
        self.following.set_following(req.context.user, pid, follow)
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?notice={'followed' if follow else 'unfollowed'}")


def build(services: Services) -> dict[str, object]:
    return {
        "my_notifications": NotificationPreferencesResource(services.preferences),
        "notifications_page": NotificationsPage(services.preferences, services.pages),
        "ticket_follow": TicketFollowResource(services.following),
        "ticket_follow_page": TicketFollowPage(services.following),
    }
