"""API keys and roles: every route checks its role (one table over all routes), keys are
shown once and stored as hashes, revoked and expired keys are refused at once on every
gateway, and every state-changing call records who made it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from gateway.calls import error_of
from gateway.stack import Stack
from harness import eventually
from whoosh_gateway.app import create_app
from whoosh_shared.contract.api_keys import Role, generate_key, hash_token
from whoosh_shared.contract.gateway_settings import GatewaySettings

# Fixed, not random: every xdist worker must collect the same test ids.
MISSING = uuid.UUID("00000000-0000-4000-8000-00000000beef")
# (method, path, least role). A route missing here fails test_the_table_covers_every_route.
ROUTES: list[tuple[str, str, Role]] = [
    ("GET", "/api/v1/agents", Role.VIEWER),
    ("GET", "/api/v1/agents/shell", Role.VIEWER),
    ("POST", "/api/v1/agents", Role.OPERATOR),
    ("PATCH", "/api/v1/agents/ghost", Role.OPERATOR),
    ("POST", "/api/v1/agents/ghost/enable", Role.OPERATOR),
    ("POST", "/api/v1/agents/ghost/disable", Role.OPERATOR),
    ("DELETE", "/api/v1/agents/ghost", Role.OPERATOR),
    ("PUT", "/api/v1/agents/ghost/weight", Role.OPERATOR),
    ("GET", "/api/v1/tasks", Role.VIEWER),
    ("POST", "/api/v1/tasks", Role.OPERATOR),
    ("GET", f"/api/v1/tasks/{MISSING}", Role.VIEWER),
    ("POST", f"/api/v1/tasks/{MISSING}/cancel", Role.OPERATOR),
    ("GET", f"/api/v1/tasks/{MISSING}/output", Role.VIEWER),
    ("GET", f"/api/v1/tasks/{MISSING}/prompt", Role.VIEWER),
    ("GET", f"/api/v1/tasks/{MISSING}/events", Role.VIEWER),
    ("GET", f"/api/v1/tasks/{MISSING}/explain", Role.VIEWER),
    ("GET", "/api/v1/keys", Role.ADMIN),
    ("POST", "/api/v1/keys", Role.ADMIN),
    ("DELETE", "/api/v1/keys/000000000000", Role.ADMIN),
    ("GET", "/api/v1/me", Role.VIEWER),
    ("GET", "/api/v1/stats", Role.VIEWER),
    ("GET", "/api/v1/alerts", Role.VIEWER),
    ("GET", "/api/v1/events", Role.ADMIN),
    ("GET", "/metrics", Role.VIEWER),  # the monitor's, proxied (404 here: not configured)
    ("GET", "/api/v1/workflows", Role.VIEWER),
    ("POST", "/api/v1/workflows", Role.OPERATOR),
    ("GET", "/api/v1/workflows/templates", Role.VIEWER),
    ("GET", "/api/v1/workflows/ghost", Role.VIEWER),
    ("POST", "/api/v1/workflows/ghost/run", Role.OPERATOR),
    ("GET", "/api/v1/executions", Role.VIEWER),
    ("GET", f"/api/v1/executions/{MISSING}", Role.VIEWER),
    ("POST", f"/api/v1/executions/{MISSING}/cancel", Role.OPERATOR),
    ("POST", f"/api/v1/executions/{MISSING}/retry", Role.OPERATOR),
    ("POST", f"/api/v1/executions/{MISSING}/approve", Role.OPERATOR),
    ("POST", f"/api/v1/executions/{MISSING}/reject", Role.OPERATOR),
    ("GET", f"/api/v1/executions/{MISSING}/events", Role.VIEWER),
    ("GET", "/api/v1/agents/ghost/card", Role.VIEWER),
    ("GET", "/api/v1/budgets", Role.VIEWER),
    ("GET", "/api/v1/usage", Role.VIEWER),
    ("GET", "/api/v1/budgets/global", Role.VIEWER),
    ("PUT", "/api/v1/budgets/global", Role.ADMIN),
    ("GET", "/api/v1/resolve", Role.VIEWER),
    ("GET", "/api/v1/threads", Role.VIEWER),
    ("POST", "/api/v1/threads", Role.OPERATOR),
    ("GET", f"/api/v1/threads/{MISSING}", Role.VIEWER),
    ("GET", f"/api/v1/threads/{MISSING}/events", Role.VIEWER),
    ("POST", f"/api/v1/threads/{MISSING}/messages", Role.OPERATOR),
    ("POST", f"/api/v1/threads/{MISSING}/decision", Role.OPERATOR),
    ("POST", f"/api/v1/threads/{MISSING}/close", Role.OPERATOR),
]
# Bodies that fail validation, so that an allowed write changes nothing.
BODIES = {
    ("POST", "/api/v1/agents"): {},
    ("POST", "/api/v1/tasks"): {},
    ("POST", "/api/v1/keys"): {},
    ("POST", "/api/v1/workflows"): {},
    ("POST", "/api/v1/threads"): {},
    ("PUT", "/api/v1/budgets/global"): {"tokens": -1},
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}


def test_the_table_covers_every_route() -> None:
    """Every operation of the OpenAPI document (all HTTP routes) is in the table."""
    document = create_app(GatewaySettings(), "nats://127.0.0.1:1").openapi()
    declared = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    tabled = {(method, _template(path)) for method, path, _ in ROUTES} | PUBLIC
    assert declared == tabled


def _template(path: str) -> str:
    replacements = {
        f"/tasks/{MISSING}": "/tasks/{task_id}",
        "/agents/shell": "/agents/{name}",
        "/agents/ghost": "/agents/{name}",
        "/workflows/ghost": "/workflows/{name}",
        f"/executions/{MISSING}": "/executions/{execution_id}",
        f"/threads/{MISSING}": "/threads/{thread_id}",
        "/budgets/global": "/budgets/{scope}",
        "/keys/000000000000": "/keys/{prefix}",
    }
    for concrete, template in replacements.items():
        path = path.replace(concrete, template)
    return path


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
async def test_each_route_refuses_lesser_roles_and_no_key(
    stack: Stack, keys: dict[Role, str], method: str, path: str, needed: Role
) -> None:
    body = BODIES.get((method, path))
    async with stack.gateway.client() as anonymous:
        error_of(await anonymous.request(method, path, json=body), 401, "unauthorized")
        bad = await anonymous.request(method, path, json=body, headers={"X-API-Key": "whk_bad"})
        error_of(bad, 401, "unauthorized")
    for role, key in keys.items():
        async with stack.gateway.client(key) as client:
            response = await client.request(method, path, json=body)
        if role.allows(needed):
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert needed.value in error_of(response, 403, "forbidden")


async def test_a_key_is_shown_once_listed_without_secrets_and_works_for_its_role(
    admin: httpx.AsyncClient, stack: Stack
) -> None:
    created = await admin.post("/api/v1/keys", json={"name": "ci bot", "role": "viewer"})
    assert created.status_code == 201, created.text
    token = created.json()["key"]
    prefix = created.json()["prefix"]
    assert token.startswith(f"whk_{prefix}_")
    listed = await admin.get("/api/v1/keys")
    assert token not in listed.text and hash_token(token) not in listed.text
    entry = next(k for k in listed.json()["keys"] if k["prefix"] == prefix)
    assert entry["role"] == "viewer" and entry["created_by"].startswith("key ")

    async with stack.gateway.client(token) as bot:
        assert (await bot.get("/api/v1/me")).json()["role"] == "viewer"
        error_of(await bot.post("/api/v1/tasks", json={"prompt": "x"}), 403, "forbidden")
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    async with stack.gateway.client(wrong_secret) as impostor:
        error_of(await impostor.get("/api/v1/me"), 401, "unauthorized")
    past = await admin.post(
        "/api/v1/keys",
        json={"name": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert "past" in error_of(past, 422, "invalid")
    error_of(await admin.post("/api/v1/keys", json={"name": "x", "role": "root"}), 422, "invalid")
    error_of(await admin.delete(f"/api/v1/keys/{generate_key().prefix}"), 404, "not_found")


REVOKED_EVERYWHERE_S = 1.0


async def _refused(client: httpx.AsyncClient) -> httpx.Response | None:
    response = await client.get("/api/v1/me")
    return response if response.status_code == 401 else None


async def test_a_revoked_key_is_refused_at_once_by_every_gateway(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    token = (await admin.post("/api/v1/keys", json={"name": "doomed", "role": "operator"})).json()
    one, two = stack.gateways[0], stack.gateways[1]
    async with one.client(token["key"]) as via_one, two.client(token["key"]) as via_two:
        assert (await via_one.get("/api/v1/me")).status_code == 200  # now cached on both
        assert (await via_two.get("/api/v1/me")).status_code == 200
        revoked = await admin.delete(f"/api/v1/keys/{token['prefix']}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_by"].startswith("key ")
        assert "revoked" in error_of(await via_one.get("/api/v1/me"), 401, "unauthorized")
        # The other gateway hears the revocation on the bus as the first one does; on a
        # loaded machine its handler may run a moment after the DELETE is answered.
        refused = await eventually(
            lambda: _refused(via_two), timeout=REVOKED_EVERYWHERE_S, what="gateway two"
        )
        assert "revoked" in error_of(refused, 401, "unauthorized")
    again = await admin.delete(f"/api/v1/keys/{token['prefix']}")
    assert "already revoked" in error_of(again, 409, "bad_state")


async def test_an_expired_key_is_refused_at_once_even_when_cached(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    body = {"name": "short", "role": "viewer", "expires_at": expires.isoformat()}
    token = (await admin.post("/api/v1/keys", json=body)).json()["key"]
    async with stack.gateway.client(token) as client:
        assert (await client.get("/api/v1/me")).status_code == 200
        await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
        assert "expired" in error_of(await client.get("/api/v1/me"), 401, "unauthorized")


async def test_state_changes_record_the_key_that_made_them(
    stack: Stack, operator: httpx.AsyncClient, admin: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    me = (await operator.get("/api/v1/me")).json()
    name = f"audited-{uuid.uuid4().hex[:6]}"
    assert (
        await operator.post("/api/v1/agents", json={"spec": {"name": name, "command": ["cat"]}})
    ).status_code == 201
    assert (await operator.post(f"/api/v1/agents/{name}/disable")).status_code == 200
    assert (await operator.delete(f"/api/v1/agents/{name}")).status_code == 200
    events, after = [], 0
    while True:
        page = (await admin.get("/api/v1/events", params={"after": after, "limit": 1000})).json()
        events += page["events"]
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    mine = [e for e in events if e["type"] in ("AgentRegistered", "AgentDisabled", "AgentRemoved")]
    assert [e["data"]["actor"] for e in mine[-3:]] == [me["actor"]] * 3
    created = [e for e in events if e["type"] == "ApiKeyCreated"]
    assert created and all("key_hash" in e["data"] for e in created)  # hash only, no secret
    assert all(keys[Role.VIEWER] not in str(e) for e in events)


async def test_auth_can_be_disabled_only_on_loopback_and_the_gateway_says_so(stack: Stack) -> None:
    with pytest.raises(ValueError, match="loopback"):
        GatewaySettings(host="0.0.0.0", insecure_no_auth=True)
    open_gateway = await stack.start_gateway(env={"WHOOSH__GATEWAY__INSECURE_NO_AUTH": "true"})
    async with open_gateway.client() as anyone:
        me = (await anyone.get("/api/v1/me")).json()
        assert me == {"actor": "anonymous (auth disabled)", "role": "admin", "key_prefix": None,
                      "auth": "disabled"}  # fmt: skip
    assert "auth DISABLED" in open_gateway.process.output()
    open_gateway.process.stop()
    stack.gateways.remove(open_gateway)
