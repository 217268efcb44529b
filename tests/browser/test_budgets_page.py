"""The budgets and usage page in Chromium against a real `whoosh up`: an admin sets a
budget from the form, the usage tables update live (no reload) when a task ends, and the
page references no other host. Leaves tests/browser/output/budgets.png."""

from __future__ import annotations

import re

from browser.conftest import Stack, screenshot, sign_in

EXPECT_S = 30_000  # ms: live updates on a loaded 2-core machine


def test_budgets_page_sets_a_budget_and_updates_usage_live(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.admin_key)
    page.goto(f"{stack.url}/ui/budgets")
    page.fill("#set-budget input[name=scope]", "global")
    page.fill("#set-budget input[name=tokens]", "250000")
    page.select_option("#set-budget select[name=period]", "day")
    page.click("#set-budget button[type=submit]")
    page.wait_for_url(f"{stack.url}/ui/budgets")
    page.locator('#budgets-table tr[data-scope="global"]').wait_for(timeout=EXPECT_S)
    assert "250,000" in page.locator('#budgets-table tr[data-scope="global"]').inner_text()

    before = page.locator("#usage-total").inner_text()
    page.evaluate("window.__same_page = true")  # a reload would drop this marker
    done = stack.env.run("task", "submit", "count", "--capability", "quick", "--wait")
    assert done.returncode == 0, done.stderr
    page.wait_for_function(
        "before => document.querySelector('#usage-total').innerText !== before",
        arg=before,
        timeout=EXPECT_S,
    )
    assert page.evaluate("window.__same_page === true"), "updated live, not by a reload"
    agents = page.locator("#usage-by-agent").inner_text()
    assert "quick" in agents
    refs = page.evaluate(
        "() => [...document.querySelectorAll('[src],[href],[action]')]"
        ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('action'))"
    )
    assert not [r for r in refs if re.match(r"^(https?:)?//", r)], refs
    screenshot(page, "budgets")


def test_a_viewer_sees_budgets_without_the_form(stack: Stack, new_context) -> None:  # type: ignore[no-untyped-def]
    page = sign_in(new_context(), stack, stack.key("viewer"))
    page.goto(f"{stack.url}/ui/budgets")
    page.locator("#usage-total").wait_for(timeout=EXPECT_S)
    assert page.locator("#set-budget").count() == 0
    assert page.locator("nav a[href='/ui/budgets']").count() == 1
