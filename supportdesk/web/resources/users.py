"""Staff management: the JSON API and the admin pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.staff import StaffService, public_user
from supportdesk.accounts.two_factor import TwoFactorService
from supportdesk.core.errors import AppError
from supportdesk.core.vocabulary import ROLES
from supportdesk.web.resources.common import (
    Pages,
    form_data,
    form_failed,
    json_object,
    origin_of,
)

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class UsersResource:
    def __init__(self, staff: StaffService):
        self.staff = staff

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [public_user(u) for u in self.staff.list_users()]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.staff.create_user(req.context.user, json_object(req), origin_of(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/users/{user['id']}"
        resp.media = {"user": public_user(user)}


class UserResource:
    def __init__(self, staff: StaffService):
        self.staff = staff

    def on_patch(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        user = self.staff.update_user(req.context.user, user_id, json_object(req), origin_of(req))
        resp.media = {"user": public_user(user)}


def _manageable_roles(actor_role: str) -> tuple[str, ...]:
    return ROLES if actor_role == "ADMIN" else ("AGENT",)


class UsersPage:
    """The staff list with a form to add someone."""

    def __init__(self, staff: StaffService, pages: Pages):
        self.staff = staff
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._render(req, resp, form={}, errors={}, message=None, notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        fields = {k: form.get(k, "") for k in ("email", "name", "role", "password")}
        try:
            user = self.staff.create_user(req.context.user, fields, origin_of(req))
        except AppError as error:
            form_failed(req, resp, error, self._render, form=fields)
            return
        raise falcon.HTTPSeeOther(f"/users?notice=created-{user['id']}")

    def _render(self, req, resp, *, form, errors, message, notice=None, status=200) -> None:
        users = self.staff.list_users()
        inactive = [user["id"] for user in users if not user["is_active"]]
        self.pages.render(
            req,
            resp,
            "users.html",
            status=status,
            users=users,
            open_tickets=self.staff.open_tickets(inactive),
            form=form,
            errors=errors,
            message=message,
            roles=_manageable_roles(req.context.user["role"]),
            notice=notice,
        )


class UserPage:
    """Edit one staff member: name, role, active, password; an ADMIN resets their two-factor."""

    def __init__(self, staff: StaffService, pages: Pages, two_factor: TwoFactorService):
        self.staff = staff
        self.pages = pages
        self.two_factor = two_factor

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        target = self.staff.get_user(user_id)
        self._render(req, resp, target, errors={}, message=None, saved=req.get_param("saved"))

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        target = self.staff.get_user(user_id)
        form = form_data(req)
        changes: dict[str, object] = {"name": form.get("name", "")}
        if "role" in form and form["role"] != target["role"]:
            changes["role"] = form["role"]
        active = form.get("is_active") == "on"
        if active != target["is_active"]:
            changes["is_active"] = active
        if form.get("password"):
            changes["password"] = form["password"]
        try:
            self.staff.update_user(req.context.user, user_id, changes, origin_of(req))
        except AppError as error:
            # The name is shown as typed; role and active as they are stored.
            typed = target | {"name": changes["name"]}
            form_failed(req, resp, error, self._render, target=typed)
            return
        raise falcon.HTTPSeeOther(f"/users/{user_id}?saved=1")

    def _render(self, req, resp, target, *, errors, message, saved=False, status=200) -> None:
        actor = req.context.user
        self.pages.render(
            req,
            resp,
            "user_edit.html",
            status=status,
            target=target,
            errors=errors,
            message=message,
            saved=saved,
            open_tickets=self.staff.open_tickets([target["id"]]).get(target["id"], 0),
            roles=ROLES,
            can_change_role=actor["role"] == "ADMIN" and actor["id"] != target["id"],
            two_factor=self.two_factor.status(target),
            can_reset_two_factor=actor["role"] == "ADMIN" and actor["id"] != target["id"],
        )


def build(services: Services) -> dict[str, object]:
    staff = services.staff
    return {
        "users": UsersResource(staff),
        "user": UserResource(staff),
        "users_page": UsersPage(staff, services.pages),
        "user_page": UserPage(staff, services.pages, services.two_factor),
    }
