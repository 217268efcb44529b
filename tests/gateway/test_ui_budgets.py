"""The budgets and usage page against the real stack: an admin sets a budget from the
page (CSRF, same site), every role sees budgets and usage per key, a viewer gets no form
and is refused on a post, a bad scope gets a page that says why; `/api/v1/usage` serves
the same report."""

from __future__ import annotations

import httpx
from gateway.stack import Stack
from gateway.test_ui_http import csrf_of, signed_in
from harness import eventually
from whoosh_shared.contract.api_keys import Role


async def test_an_admin_sets_a_budget_and_everyone_sees_budgets_and_usage(
    stack: Stack, keys: dict[Role, str]
) -> None:
    url = stack.gateway.url
    async with stack.gateway.client(keys[Role.OPERATOR]) as operator:
        made = await operator.post(
            "/api/v1/tasks", json={"prompt": "echo usage", "capabilities": ["shell"]}
        )
        assert made.status_code == 201, made.text
        actor = (await operator.get("/api/v1/me")).json()["actor"]

    async def counted() -> bool:
        async with stack.gateway.client(keys[Role.VIEWER]) as viewer:
            report = (await viewer.get("/api/v1/usage")).json()
        return any(r["name"] == actor and r["tasks"] >= 1 for r in report["by_key"])

    await eventually(counted, timeout=30, what="the operator's task in /api/v1/usage")

    async with signed_in(url, stack.admin_key) as admin:
        token = csrf_of((await admin.get("/ui/budgets")).text)
        set_ = await admin.post(
            "/ui/budgets",
            data={"scope": "project:ui-test", "tokens": "5000", "period": "day", "csrf": token},
            headers={"Origin": url},
        )
        assert set_.status_code == 303, set_.text

        async def listed() -> bool:
            html = (await admin.get("/ui/budgets")).text
            return 'data-scope="project:ui-test"' in html and "5,000" in html

        await eventually(listed, timeout=20, what="the new budget on the page")
        bad = await admin.post(
            "/ui/budgets", data={"scope": "nowhere", "tokens": "1", "csrf": token}
        )
        assert bad.status_code == 422 and "is not global, key:P" in bad.text
        no_limit = await admin.post("/ui/budgets", data={"scope": "global", "csrf": token})
        assert no_limit.status_code == 422 and "give a limit" in no_limit.text

    async with signed_in(url, keys[Role.VIEWER]) as viewer:
        html = (await viewer.get("/ui/budgets")).text
        assert 'id="set-budget"' not in html and 'data-scope="project:ui-test"' in html
        assert f'data-name="{actor}"' in html
        refused = await viewer.post(
            "/ui/budgets", data={"scope": "global", "tokens": "1", "csrf": csrf_of(html)}
        )
        assert refused.status_code == 403 and "your key is viewer" in refused.text


async def test_usage_needs_a_key(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url) as anonymous:
        assert (await anonymous.get("/api/v1/usage")).status_code == 401
