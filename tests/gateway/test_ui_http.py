"""The dashboard over plain HTTP against the real two-gateway stack: the session cookie
works on every gateway (no server-side session), forms refuse cross-site posts and
missing CSRF tokens, the SSE stream resumes after `Last-Event-ID` without gaps, and bad
input on the page gets a page that says what is wrong."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import httpx
from gateway.stack import Stack
from harness import eventually
from whoosh_shared.contract.api_keys import Role

LOGIN_TIMEOUT = 20.0


@asynccontextmanager
async def signed_in(url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=LOGIN_TIMEOUT) as client:
        answer = await client.post("/ui/login", data={"api_key": key})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


async def test_a_session_made_on_one_gateway_works_on_another(stack: Stack) -> None:
    first, second = stack.gateways[0].url, stack.gateways[1].url
    async with signed_in(first, stack.admin_key) as client:
        cookie = client.cookies.get("whoosh_ui")
        assert cookie
    async with httpx.AsyncClient(base_url=second, cookies={"whoosh_ui": cookie}) as other:
        page = await other.get("/ui/agents")
        assert page.status_code == 200 and "shell" in page.text


async def test_login_refusals_are_clear(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url) as client:
        empty = await client.post("/ui/login", data={"api_key": ""})
        assert empty.status_code == 400 and "enter an API key" in empty.text
        wrong = await client.post("/ui/login", data={"api_key": "whk_0123456789ab_" + "z" * 43})
        assert wrong.status_code == 401 and "unknown API key" in wrong.text
        assert "Traceback" not in wrong.text and "whoosh_ui" not in wrong.headers.get(
            "set-cookie", ""
        )
        client.cookies.set("whoosh_ui", "gAAAAAforged")
        tampered = await client.get("/ui/")
        client.cookies.clear()
        assert tampered.status_code == 303
        assert "session has ended" in tampered.headers["location"].replace("%20", " ")


async def test_expired_key_cannot_sign_in(stack: Stack) -> None:
    from datetime import UTC, datetime, timedelta

    key = await stack.issue_key(
        Role.VIEWER, "expires soon", expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )

    async def refused() -> bool:
        async with httpx.AsyncClient(base_url=stack.gateway.url) as client:
            answer = await client.post("/ui/login", data={"api_key": key})
            return answer.status_code == 401 and "expired" in answer.text

    await eventually(refused, timeout=40, what="the expired key's refusal")


async def test_forms_need_the_csrf_token_and_the_same_site(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with signed_in(stack.gateway.url, keys[Role.OPERATOR]) as client:
        token = csrf_of((await client.get("/ui/tasks")).text)
        no_token = await client.post("/ui/tasks", data={"prompt": "echo x"})
        assert no_token.status_code == 403 and "CSRF token" in no_token.text
        cross = await client.post(
            "/ui/tasks",
            data={"prompt": "echo x", "csrf": token},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
        )
        assert cross.status_code == 403 and "cross-site" in cross.text
        other_origin = await client.post(
            "/ui/tasks",
            data={"prompt": "echo x", "csrf": token},
            headers={"Origin": "http://127.0.0.1:1"},
        )
        assert other_origin.status_code == 403
        bad = await client.post("/ui/tasks", data={"prompt": "", "csrf": token})
        assert bad.status_code == 422 and "task not submitted" in bad.text
        ok = await client.post(
            "/ui/tasks",
            data={"prompt": "echo from the form", "capability": "shell", "csrf": token},
            headers={"Origin": stack.gateway.url},
        )
        assert ok.status_code == 303, ok.text
        UUID(ok.headers["location"].rsplit("/", 1)[1])


async def test_viewer_cookie_on_operator_actions_is_refused(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with signed_in(stack.gateway.url, keys[Role.VIEWER]) as client:
        token = csrf_of((await client.get("/ui/")).text)
        for path in ("/ui/tasks", "/ui/agents/shell/disable", "/ui/keys"):
            answer = await client.post(path, data={"prompt": "x", "csrf": token, "name": "x"})
            assert answer.status_code == 403, path
            assert "needs the" in answer.text and "your key is viewer" in answer.text
        agent = await client.get("/ui/agents/shell")
        assert "Disable" not in agent.text


async def test_stream_resumes_after_last_event_id_without_gaps(stack: Stack) -> None:
    async with signed_in(stack.gateway.url, stack.admin_key) as client:
        token = csrf_of((await client.get("/ui/tasks")).text)
        made = await client.post(
            "/ui/tasks", data={"prompt": "echo one; echo two", "capability": "shell", "csrf": token}
        )
        task_id = made.headers["location"].rsplit("/", 1)[1]
        async with stack.gateway.client(stack.admin_key) as api:

            async def done() -> bool:
                answer = await api.get(f"/api/v1/tasks/{task_id}")
                return answer.json()["status"] == "completed"

            await eventually(done, timeout=30, what="the task's end")
            stored = [
                e["notification_id"]
                for e in (await api.get(f"/api/v1/tasks/{task_id}/events")).json()["events"]
            ]
        cut = stored[1]  # as if the browser had seen the first two events, then lost the line
        ids = await read_stream(client, task_id, {"Last-Event-ID": str(cut)}, len(stored) - 2)
        assert ids == stored[2:], "exactly the events after Last-Event-ID, in order, once"
        ids = await read_stream(client, task_id, {}, len(stored), query="&last_event_id=0")
        assert ids == stored


async def read_stream(
    client: httpx.AsyncClient, task_id: str, headers: dict[str, str], count: int, query: str = ""
) -> list[int]:
    ids: list[int] = []
    url = f"/ui/stream?task={task_id}{query}"
    async with client.stream("GET", url, headers=headers, timeout=20) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            if line.startswith("data: ") and ids:
                assert json.loads(line[6:])
            if len(ids) >= count:
                break
    return ids


async def test_bad_input_on_pages(stack: Stack) -> None:
    async with signed_in(stack.gateway.url, stack.admin_key) as client:
        unknown = await client.get("/ui/tasks/00000000-0000-4000-8000-000000000000")
        assert unknown.status_code == 404 and "unknown task" in unknown.text
        malformed = await client.get("/ui/tasks/%3Cscript%3E")
        assert malformed.status_code == 404 and "<script>" not in malformed.text
        filtered = await client.get("/ui/tasks?status=nope&agent=bad%20name&cursor=x&since=1d")
        assert filtered.status_code == 200
        for notice in ("ignored status=", "ignored agent=", "ignored cursor="):
            assert notice in filtered.text.replace("&#39;", "'")
        assert 'value="1d"' in filtered.text, "a good filter stays"
        agent = await client.get("/ui/agents/no-such-agent")
        assert agent.status_code == 404
        stream = await client.get("/ui/stream?task=nope")
        assert stream.status_code == 404


async def test_pages_without_a_session_go_to_the_login(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url) as client:
        for path in ("/ui/", "/ui/tasks", "/ui/audit"):
            answer = await client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
        stream = await client.get("/ui/stream")
        assert stream.status_code == 401
        async with stack.gateway.client(None) as api_client:
            login = await api_client.post("/ui/login", data={"api_key": stack.admin_key})
            sealed = login.cookies["whoosh_ui"]
            api = await api_client.get("/api/v1/tasks", headers={"Cookie": f"whoosh_ui={sealed}"})
        assert api.status_code == 401, "the REST API stays bearer-only"


async def test_docs_use_vendored_assets_only(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url) as client:
        docs = await client.get("/docs")
        assert docs.status_code == 200
        refs = re.findall(r"""(?:src|href)=["']([^"']+)""", docs.text)
        refs += re.findall(r"""url: ?['"]([^'"]+)""", docs.text)
        assert refs and all(r.startswith("/") for r in refs), refs
        for ref in refs:
            assert (await client.get(ref)).status_code == 200, ref
        assert '"validatorUrl": null' in docs.text


async def test_a_workflow_execution_shows_its_steps(stack: Stack) -> None:
    source = (
        "whoosh: workflow/v1\nname: ui-flow\nsteps:\n"
        "  first: {type: shell, command: 'echo step one'}\n"
        "  second: {type: shell, command: 'echo step two', needs: [first]}\n"
    )
    async with stack.gateway.client(stack.admin_key) as api:
        stored = await api.post("/api/v1/workflows", json={"source": source})
        assert stored.status_code == 201, stored.text
        run = await api.post("/api/v1/workflows/ui-flow/run")
        assert run.status_code == 201, run.text
        execution_id = run.json()["execution_id"]
    async with signed_in(stack.gateway.url, stack.admin_key) as client:

        async def finished() -> str | None:
            page = await client.get(f"/ui/executions/{execution_id}")
            assert page.status_code == 200
            return page.text if 'id="execution-status">succeeded' in page.text else None

        html = await eventually(finished, timeout=60, what="the execution's end")
        assert 'data-step="first" data-status="succeeded"' in html
        assert 'data-step="second" data-status="succeeded"' in html
        assert "step two" in html and "/ui/tasks/" in html
        listing = await client.get("/ui/executions?status=succeeded&workflow=ui-flow")
        assert execution_id[:8] in listing.text
        bad = await client.get("/ui/executions?status=exploded")
        assert bad.status_code == 200 and "ignored status=" in bad.text.replace("&#39;", "'")
        missing = await client.get("/ui/executions/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404


async def test_threads_pages_render_and_refuse_bad_input(stack: Stack) -> None:
    from whoosh_shared.contract.threads import Participant, StartThread
    from whoosh_shared.runtime.bus import Bus

    bus = Bus(stack.nats.url, "test-threads")
    await bus.connect()
    try:
        reply = await bus.send(
            StartThread(topic="echo which colour?", participants=[Participant(agent="shell")])
        )
    finally:
        await bus.close()
    assert reply.accepted, reply.reason
    thread_id = next(iter(v for k, v in reply.ids.items() if "thread" in k))
    async with signed_in(stack.gateway.url, stack.admin_key) as client:
        one = await client.get(f"/ui/threads/{thread_id}")
        assert one.status_code == 200 and "echo which colour?" in one.text
        assert "shell (participant" in one.text
        everything = await client.get("/ui/threads")
        assert thread_id in everything.text
        listing = await client.get("/ui/threads?state=deliberating")
        assert listing.status_code == 200 and 'id="threads-table"' in listing.text
        bad = await client.get("/ui/threads?state=arguing")
        assert bad.status_code == 200 and "ignored state=" in bad.text.replace("&#39;", "'")
        missing = await client.get("/ui/threads/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404
        malformed = await client.get("/ui/threads/nope")
        assert malformed.status_code == 404 and "not a thread id" in malformed.text
