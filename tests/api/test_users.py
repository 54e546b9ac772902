"""Staff management within the hierarchy: ADMIN > SUB_ADMIN > AGENT."""

from __future__ import annotations

import threading

import pytest
import webtest

from tests.conftest import shared_app

NEW = {"email": "new@example.com", "name": "New Person", "password": "long enough pw"}


def create(client, actor_headers, role, status, **over):
    return client.post_json(
        "/api/users", NEW | {"role": role} | over, headers=actor_headers, status=status
    )


@pytest.mark.parametrize(
    ("actor_role", "new_role", "status"),
    [
        ("ADMIN", "ADMIN", 201),
        ("ADMIN", "SUB_ADMIN", 201),
        ("ADMIN", "AGENT", 201),
        ("SUB_ADMIN", "AGENT", 201),
        ("SUB_ADMIN", "SUB_ADMIN", 403),
        ("SUB_ADMIN", "ADMIN", 403),
        ("AGENT", "AGENT", 403),
    ],
)
def test_who_creates_whom(client, make_staff, bearer, db, actor_role, new_role, status):
    actor = make_staff(actor_role)
    resp = create(client, bearer(actor), new_role, status)
    with db.transaction() as conn:
        stored = conn.execute("SELECT role FROM users WHERE email = %s", (NEW["email"],))
        row = stored.fetchone()
    if status == 201:
        assert resp.json["user"]["role"] == new_role
        assert resp.headers["Location"] == f"/api/users/{resp.json['user']['id']}"
        assert row == (new_role,)
    else:
        assert resp.json["error"]["code"] == "forbidden"
        assert row is None


def test_created_user_can_log_in(client, make_staff, bearer):
    create(client, bearer(make_staff("ADMIN")), "AGENT", 201)
    client.post_json("/api/auth/login", {"email": NEW["email"], "password": NEW["password"]})


def test_duplicate_email_is_a_conflict_regardless_of_case(client, make_staff, bearer):
    headers = bearer(make_staff("ADMIN"))
    create(client, headers, "AGENT", 201)
    resp = create(client, headers, "AGENT", 409, email="NEW@Example.com")
    assert resp.json["error"]["details"] == {"email": "Already in use."}


@pytest.mark.parametrize(
    ("over", "fields"),
    [
        ({"email": "not-an-email"}, {"email"}),
        ({"email": ""}, {"email"}),
        ({"name": "   "}, {"name"}),
        ({"name": "x" * 201}, {"name"}),
        ({"role": "OWNER"}, {"role"}),
        ({"password": "short"}, {"password"}),
        ({"password": "password123"}, {"password"}),
        ({"password": "new@example.com"}, {"password"}),
        ({"password": None}, {"password"}),
        ({"nickname": "x"}, {"nickname"}),
        (
            {"email": 1, "name": None, "role": None, "password": 2},
            {"email", "name", "role", "password"},
        ),
    ],
)
def test_create_validation_names_each_field(client, make_staff, bearer, over, fields):
    over = dict(over)
    resp = create(client, bearer(make_staff("ADMIN")), over.pop("role", "AGENT"), 422, **over)
    assert resp.json["error"]["code"] == "validation_error"
    assert set(resp.json["error"]["details"]) == fields


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null"])
def test_body_must_be_a_json_object(client, make_staff, bearer, body):
    resp = client.post(
        "/api/users",
        body,
        headers=bearer(make_staff("ADMIN")),
        content_type="application/json",
        status=400,
    )
    assert resp.json["error"]["code"] == "bad_request"


def test_list_users(client, make_staff, bearer):
    admin = make_staff("ADMIN", name="Ana")
    make_staff("AGENT", name="Bo", is_active=False)
    make_staff("SUB_ADMIN", name="Cy")
    items = client.get("/api/users", headers=bearer(admin)).json["items"]
    assert [(u["name"], u["is_active"]) for u in items] == [
        ("Ana", True),
        ("Cy", True),
        ("Bo", False),
    ]


# --- PATCH ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor_role", "target_role", "change", "status"),
    [
        ("ADMIN", "AGENT", {"name": "Renamed"}, 200),
        ("ADMIN", "SUB_ADMIN", {"is_active": False}, 200),
        ("ADMIN", "ADMIN", {"role": "AGENT"}, 200),  # another admin remains (the actor)
        ("ADMIN", "AGENT", {"role": "SUB_ADMIN"}, 200),
        ("SUB_ADMIN", "AGENT", {"name": "Renamed", "is_active": False}, 200),
        ("SUB_ADMIN", "AGENT", {"password": "another long one"}, 200),
        ("SUB_ADMIN", "AGENT", {"role": "SUB_ADMIN"}, 403),  # only ADMIN changes roles
        ("SUB_ADMIN", "SUB_ADMIN", {"name": "Renamed"}, 403),
        ("SUB_ADMIN", "ADMIN", {"is_active": False}, 403),
        ("AGENT", "AGENT", {"name": "Renamed"}, 403),
    ],
)
def test_who_manages_whom(client, make_staff, bearer, actor_role, target_role, change, status):
    actor = make_staff(actor_role)
    target = make_staff(target_role, name="Target")
    resp = client.patch_json(
        f"/api/users/{target['id']}", change, headers=bearer(actor), status=status
    )
    if status == 200:
        user = resp.json["user"]
        for field, value in change.items():
            if field != "password":
                assert user[field] == value
    else:
        assert resp.json["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("change", "message"),
    [({"is_active": False}, "deactivate yourself"), ({"role": "AGENT"}, "your own role")],
)
def test_nobody_deactivates_or_demotes_themselves(client, make_staff, bearer, change, message):
    admin = make_staff("ADMIN")
    make_staff("ADMIN")  # so the last-admin rule is not what stops it
    resp = client.patch_json(f"/api/users/{admin['id']}", change, headers=bearer(admin), status=403)
    assert message in resp.json["error"]["message"]


def test_admin_may_rename_themselves_and_change_own_password(client, make_staff, bearer, db):
    from supportdesk.accounts.auth import verify_password

    admin = make_staff("ADMIN", email="ana@example.com")
    resp = client.patch_json(
        f"/api/users/{admin['id']}",
        {"name": "Ana B", "password": "my new passphrase"},
        headers=bearer(admin),
    )
    assert resp.json["user"]["name"] == "Ana B"
    with db.transaction() as conn:
        name, password_hash, version = conn.execute(
            "SELECT name, password_hash, token_version FROM users WHERE id = %s", (admin["id"],)
        ).fetchone()
    assert name == "Ana B"
    assert verify_password("my new passphrase", password_hash)
    assert version == admin["token_version"] + 1  # every session of the old password ends
    client.post_json(
        "/api/auth/login", {"email": "ana@example.com", "password": "my new passphrase"}
    )


def test_last_active_admin_survives_two_admins_demoting_each_other(
    settings, db, make_staff, tokens
):
    """Each admin may demote the other, but not both at once: one request wins, the other
    sees that it would remove the last active ADMIN."""

    first, second = make_staff("ADMIN"), make_staff("ADMIN")
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def demote(actor, target, change):
        client = webtest.TestApp(shared_app(settings, db))
        token, _ = tokens.issue(actor)
        barrier.wait()
        resp = client.patch_json(
            f"/api/users/{target['id']}",
            change,
            headers={"Authorization": f"Bearer {token}"},
            expect_errors=True,
        )
        results[actor["email"]] = resp.status_int

    threads = [
        threading.Thread(target=demote, args=(first, second, {"role": "AGENT"})),
        threading.Thread(target=demote, args=(second, first, {"is_active": False})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The loser is refused because of the rule (409), or because the winner's change already
    # ended its session / role (401 / 403); never both succeed.
    assert sorted(results.values())[0] == 200
    assert sorted(results.values())[1] in (401, 403, 409)
    with db.transaction() as conn:
        active_admins = conn.execute(
            "SELECT count(*) FROM users WHERE role = 'ADMIN' AND is_active"
        ).fetchone()[0]
    assert active_admins == 1


def _accounts(db, tokens, settings):
    from supportdesk.accounts.staff import StaffService

    return StaffService(db, settings.bcrypt_rounds)


def test_the_actor_is_read_again_inside_the_change(db, make_staff, settings, tokens):
    """A SUB_ADMIN deactivated (or demoted) after its request was authenticated cannot act."""
    from supportdesk.accounts.audit import SYSTEM
    from supportdesk.core.errors import Forbidden, Unauthenticated

    accounts = _accounts(db, tokens, settings)
    sub = make_staff("SUB_ADMIN")
    agent = make_staff("AGENT", name="Agent")
    with db.transaction() as conn:
        conn.execute("UPDATE users SET is_active = false WHERE id = %s", (sub["id"],))
    with pytest.raises(Unauthenticated):
        accounts.update_user(sub, agent["id"], {"name": "Renamed"}, SYSTEM)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE users SET is_active = true, role = 'AGENT' WHERE id = %s", (sub["id"],)
        )
    with pytest.raises(Forbidden):
        accounts.update_user(sub, agent["id"], {"name": "Renamed"}, SYSTEM)


def test_last_admin_rule_holds_even_for_a_stale_actor(db, make_staff, settings, tokens):
    """Defence in depth: with the self-rules and the actor read again, only a stale actor
    record could reach this rule; it still refuses to leave no active ADMIN."""
    from supportdesk.core.errors import Conflict

    accounts = _accounts(db, tokens, settings)
    admin = make_staff("ADMIN")
    gone = make_staff("ADMIN", is_active=False)
    with db.transaction() as conn, pytest.raises(Conflict, match="last active ADMIN"):
        accounts._authorized_changes(conn, gone | {"is_active": True}, admin, {"role": "AGENT"})
    with db.transaction() as conn, pytest.raises(Conflict):
        accounts._authorized_changes(conn, gone | {"is_active": True}, admin, {"is_active": False})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "KING"}, "role"),
        ({"is_active": "no"}, "is_active"),
        ({"name": ""}, "name"),
        ({"password": "short"}, "password"),
        ({"email": "x@example.com"}, "email"),
    ],
)
def test_patch_validation(client, make_staff, bearer, change, field):
    target = make_staff("AGENT")
    resp = client.patch_json(
        f"/api/users/{target['id']}", change, headers=bearer(make_staff("ADMIN")), status=422
    )
    assert set(resp.json["error"]["details"]) == {field}


def test_patch_unknown_user_is_404(client, make_staff, bearer):
    resp = client.patch_json(
        "/api/users/999999", {"name": "X"}, headers=bearer(make_staff("ADMIN")), status=404
    )
    assert resp.json["error"]["code"] == "not_found"


def test_patch_non_numeric_id_is_404(client, make_staff, bearer):
    client.patch_json(
        "/api/users/abc", {"name": "X"}, headers=bearer(make_staff("ADMIN")), status=404
    )
