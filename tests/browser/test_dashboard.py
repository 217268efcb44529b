"""The dashboard in a real headless Chromium against a real `whoosh up`: sign-in and
roles, submitting and watching output arrive live, cancel, filters kept in the URL,
resume without gaps, two tabs, revocation, cross-site posts, /docs, and no request to
another host. Each journey leaves a screenshot in tests/browser/output/."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator

import pytest
from browser.conftest import LOOPBACK, Requests, Stack, screenshot, sign_in
from harness import free_port
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

EXPECT_S = 20_000  # ms: live updates on a loaded 2-core machine


def wait_until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


def submit_from_page(page, stack: Stack, prompt: str, capability: str) -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{stack.url}/ui/tasks")
    page.fill("#prompt", prompt)
    page.fill("#submit-form input[name=capability]", capability)
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/tasks/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def expect_status(page, stack: Stack, task_id: str, status: str) -> None:  # type: ignore[no-untyped-def]
    """The task page shows `status`; if it does not in time, say what the page and the API
    showed (a page that missed an update, or a task that did not get there)."""
    try:
        page.locator(f"#task-status[data-status={status}]").wait_for(timeout=EXPECT_S)
    except PlaywrightTimeoutError:
        shown = page.locator("#task-status").get_attribute("data-status", timeout=1000)
        stored = stack.api(f"/tasks/{task_id}")["status"]
        raise AssertionError(
            f"the page shows {shown!r} after {EXPECT_S} ms, the API says {stored!r}, "
            f"waiting for {status!r}"
        ) from None


def test_sign_in_with_a_wrong_key_says_why(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = new_context().new_page()
    page.goto(f"{stack.url}/ui/")
    assert page.url.endswith("/ui/login"), "no session: the login form"
    page.fill("#api_key", "whk_000000000000_" + "x" * 43)
    page.click("button[type=submit]")
    message = page.locator("#login-error").inner_text()
    assert "unknown API key" in message
    page.fill("#api_key", "not a key")
    page.click("button[type=submit]")
    assert "malformed API key" in page.locator("#login-error").inner_text()
    assert "Traceback" not in page.content()
    screenshot(page, "login-refused")


def test_admin_and_viewer_see_different_pages(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    admin = sign_in(new_context(), stack, stack.admin_key)
    assert admin.locator("#submit-form").count() == 1
    assert admin.locator("nav >> text=Keys").count() == 1
    assert admin.locator("#agents-table >> text=counter").count() == 1
    cookie = next(c for c in admin.context.cookies() if c["name"] == "whoosh_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert stack.admin_key not in cookie["value"], "the key is sealed, not readable"
    screenshot(admin, "overview-admin")
    task_id = submit_from_page(admin, stack, "for the viewer", "quick")

    viewer = sign_in(new_context(), stack, stack.key("viewer"))
    assert viewer.locator("#submit-form").count() == 0, "viewers get no submit form"
    assert viewer.locator("nav >> text=Keys").count() == 0
    viewer.goto(f"{stack.url}/ui/tasks/{task_id}")
    no_buttons = "viewers see no buttons that change state"
    assert viewer.locator("#cancel, #rerun").count() == 0, no_buttons
    viewer.goto(f"{stack.url}/ui/agents/counter")
    assert viewer.locator("#toggle-agent").count() == 0
    viewer.goto(f"{stack.url}/ui/keys")
    assert viewer.locator("#error-message").inner_text().startswith("this page is for admins")
    screenshot(viewer, "keys-refused-viewer")

    # A viewer's cookie on an operator action, with a valid CSRF token of its own: refused.
    token = viewer.locator("input[name=csrf]").first.get_attribute("value")
    answer = viewer.request.post(
        f"{stack.url}/ui/tasks/{task_id}/rerun",
        form={"csrf": token},
        headers={"Origin": stack.url},
        max_redirects=0,
    )
    assert answer.status == 403 and "needs the operator role" in answer.text()


def test_submit_from_the_page_and_watch_output_arrive_live(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    task_id = submit_from_page(page, stack, "count for me", "count")
    output = page.locator("#output")
    output.filter(has_text="line 3").wait_for(timeout=EXPECT_S)
    status_then = page.locator("#task-status").get_attribute("data-status")
    assert status_then in ("assigned", "running"), "line 3 arrived while the task still ran"
    page.locator("#task-status[data-status=completed]").wait_for(timeout=EXPECT_S)
    stored = stack.api(f"/tasks/{task_id}/output")["output"]
    wait_until(lambda: output.inner_text().strip() == stored.strip(), 10, "the stored output")
    assert stored.splitlines() == [f"line {i}" for i in range(1, 9)]
    page.locator("#timeline .outcome-completed").wait_for(timeout=EXPECT_S)
    screenshot(page, "task-completed")


@pytest.mark.timeout(300)  # 50,000 lines through executor, bus, gateway and browser: on a
# loaded 2-core machine this took over the suite's 120 s
def test_fifty_thousand_lines_keep_the_page_responsive(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    task_id = submit_from_page(page, stack, "flood me", "flood")
    started = time.monotonic()
    while stack.api(f"/tasks/{task_id}")["status"] != "completed":
        t0 = time.monotonic()
        page.evaluate("() => document.getElementById('output').childNodes.length")
        assert time.monotonic() - t0 < 2.0, "the page answers while output floods in"
        assert time.monotonic() - started < 240, "the task's end"
        time.sleep(0.2)
    page.locator("#task-status[data-status=completed]").wait_for(timeout=EXPECT_S)
    shown = page.locator("#output").evaluate("el => el.textContent.split('\\n').length")
    assert shown <= 2001, f"the DOM keeps at most the cap ({shown} lines)"
    assert "earlier lines not shown" in page.locator("#output-note").inner_text()
    assert page.locator("#output").inner_text().rstrip().endswith("50000")
    full = page.request.get(f"{stack.url}/ui/tasks/{task_id}/output.txt")
    assert full.status == 200 and full.text() == stack.api(f"/tasks/{task_id}/output")["output"]
    screenshot(page, "task-50k-lines", full_page=False)


def test_cancel_from_the_page(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    task_id = submit_from_page(page, stack, "sleep please", "sleep")
    page.locator("#task-status[data-status=running]").wait_for(timeout=EXPECT_S)
    page.click("#cancel")
    page.locator("#task-status[data-status=cancelled]").wait_for(timeout=EXPECT_S)
    assert stack.api(f"/tasks/{task_id}")["status"] == "cancelled"
    assert page.locator("#cancel").count() == 0
    screenshot(page, "task-cancelled")


def test_filters_survive_reload_and_back_and_bad_ones_are_noticed(
    stack: Stack, new_context
) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    task_id = submit_from_page(page, stack, "one more", "quick")
    expect_status(page, stack, task_id, "completed")
    page.goto(f"{stack.url}/ui/tasks")
    page.select_option("select[name=status]", "completed")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*status=completed"))
    page.reload()
    assert page.locator("select[name=status]").input_value() == "completed"
    statuses = page.locator("#tasks-table tbody tr[data-status]").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses and set(statuses) == {"completed"}
    page.click(".chips a[data-status=failed]")
    page.wait_for_url(re.compile(r".*status=failed"))
    page.go_back()
    page.wait_for_url(re.compile(r".*status=completed"))
    assert page.locator("select[name=status]").input_value() == "completed"

    page.goto(f"{stack.url}/ui/tasks?status=finished&since=yesterday-ish&agent=quick")
    notices = page.locator(".notice").all_inner_texts()
    assert any("ignored status='finished'" in n for n in notices)
    assert any("ignored since='yesterday-ish'" in n for n in notices)
    assert page.locator("#filters input[name=agent]").input_value() == "quick", "good filters stay"
    screenshot(page, "tasks-filtered")


def test_unknown_task_is_a_404_page(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    answer = page.goto(f"{stack.url}/ui/tasks/00000000-0000-4000-8000-000000000000")
    assert answer is not None and answer.status == 404
    assert "unknown task" in page.locator("#error-message").inner_text()
    answer = page.goto(f"{stack.url}/ui/tasks/not-a-task")
    assert answer is not None and answer.status == 404
    screenshot(page, "task-404")


def test_a_hidden_tab_resumes_without_gaps_or_duplicates(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    task_id = submit_from_page(page, stack, "count while hidden", "count")
    page.locator("#output").filter(has_text="line 1").wait_for(timeout=EXPECT_S)
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    assert page.locator("#live-dot").get_attribute("data-state") == "off", "hidden: stream closed"
    wait_until(
        lambda: stack.api(f"/tasks/{task_id}")["status"] == "completed", 30, "the task's end"
    )
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.locator("#task-status[data-status=completed]").wait_for(timeout=EXPECT_S)
    stored = stack.api(f"/tasks/{task_id}/events")["events"]
    shown = page.locator("#history tr[data-event-id]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.eventId))"
    )
    assert len(shown) == len(set(shown)), "no event shown twice"
    missing = [e["type"] for e in stored if e["notification_id"] not in set(shown)]
    assert not missing, f"events missed while the tab was hidden: {missing}"
    assert "TaskCompleted" in page.locator("#history").inner_text()


def test_two_tabs_update_together(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    context = new_context()
    tab_a = sign_in(context, stack, stack.admin_key)
    tab_b = context.new_page()
    tab_b.goto(f"{stack.url}/ui/")
    row_b = tab_b.locator("#agents-table tr[data-agent=quick] .state")
    assert row_b.inner_text() == "healthy"
    tab_a.goto(f"{stack.url}/ui/agents/quick")
    tab_a.click("#toggle-agent")
    tab_a.locator("#agent-state", has_text="disabled").wait_for(timeout=EXPECT_S)
    tab_b.locator("#agents-table tr[data-agent=quick] .state", has_text="disabled").wait_for(
        timeout=EXPECT_S
    )
    screenshot(tab_b, "overview-agent-disabled")
    tab_a.click("#toggle-agent")
    tab_b.locator("#agents-table tr[data-agent=quick] .state", has_text="healthy").wait_for(
        timeout=EXPECT_S
    )
    tab_a.goto(f"{stack.url}/ui/agents/counter")
    screenshot(tab_a, "agent-detail")


def test_a_revoked_keys_session_ends(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    made = stack.env.run("key", "create", "short-lived", "--role", "operator", "--json")
    key = __import__("json").loads(made.stdout)
    page = sign_in(new_context(), stack, key["key"])
    revoked = stack.env.run("key", "revoke", key["prefix"])
    assert revoked.returncode == 0, revoked.stderr
    page.goto(f"{stack.url}/ui/tasks")
    assert page.url.startswith(f"{stack.url}/ui/login")
    assert "no longer works" in page.locator("#login-error").inner_text()


@pytest.fixture
def other_site(stack: Stack) -> Iterator[tuple[str, list[str]]]:
    """A page on another loopback port (another origin) that auto-posts to the dashboard."""
    target: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                f'<form id="f" method="post" action="{target[0]}">'
                '<input name="csrf" value="guessed"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}/", target
    finally:
        server.shutdown()


def test_a_cross_site_form_post_is_refused(stack: Stack, new_context, other_site) -> None:  # type: ignore[no-untyped-def]
    url, target = other_site
    page = sign_in(new_context(), stack, stack.admin_key)
    task_id = submit_from_page(page, stack, "sleep while attacked", "sleep")
    target.append(f"{stack.url}/ui/tasks/{task_id}/cancel")
    with page.expect_response(lambda r: r.url == target[0]) as posted:
        page.goto(url)
    assert posted.value.status == 403
    assert stack.api(f"/tasks/{task_id}")["status"] in ("assigned", "running", "queued")
    page.goto(f"{stack.url}/ui/tasks/{task_id}")
    page.click("#cancel")  # the same action from the dashboard itself works
    page.locator("#task-status[data-status=cancelled]").wait_for(timeout=EXPECT_S)


def test_docs_render_offline(stack: Stack, new_context, requests_seen: Requests) -> None:  # type: ignore[no-untyped-def]
    page = new_context().new_page()
    page.goto(f"{stack.url}/docs")
    page.locator(".swagger-ui .title", has_text="WHOOSH gateway").wait_for(timeout=EXPECT_S)
    page.get_by_text("/api/v1/tasks").first.wait_for(timeout=EXPECT_S)
    screenshot(page, "docs")


def test_no_page_references_or_requests_another_host(
    stack: Stack, new_context, requests_seen: Requests
) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    task = stack.api("/tasks?limit=1")["items"][0]["id"]
    for path in ("/ui/", "/ui/agents", "/ui/agents/counter", "/ui/tasks", f"/ui/tasks/{task}",
                 "/ui/alerts", "/ui/keys", "/ui/audit", "/docs"):  # fmt: skip
        page.goto(f"{stack.url}{path}")
        page.wait_for_load_state("networkidle") if path == "/docs" else None
        refs = page.evaluate(
            "() => [...document.querySelectorAll('[src],[href],[action]')]"
            ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('action'))"
        )
        foreign = [r for r in refs if re.match(r"^(https?:)?//", r) and not r.startswith(stack.url)]
        assert not foreign, f"{path} references another host: {foreign}"
        if path in ("/ui/alerts", "/ui/audit"):
            screenshot(page, path.strip("/").replace("/", "-"))
    assert requests_seen.hosts and requests_seen.hosts <= LOOPBACK, requests_seen.hosts
    assert not requests_seen.elsewhere, requests_seen.elsewhere
