"""The dashboard at / and /ui, in a real headless Chromium against a real stack (scripted
models, an admin key): it asks for the key and shows nothing without it, renders every
model, loads one from a click, streams a playground answer, cancels a request, follows a
log, and lists recent requests. Screenshots at 1280x800 and 390x844 go to the repo's
run/dashboard/."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.browser import chromium_or_skip, headless_chromium
from tests.integration.stack import REPO, Stack, base_config, running_stack, scripted_models

pytestmark = pytest.mark.slow

KEY = "sesame"
API_KEY = "open-sesame"
KEYS = {"admin": KEY, "api": API_KEY}  # by the kind of key the dialog asks for
ANSWER = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps again."
SCRIPTS: dict[str, dict[str, Any]] = {
    "hello": {"default": ANSWER, "token_delay_s": 0.04},
    "slow-load": {"default": "Loaded.", "load_delay_s": 1.5},
    "long": {"default": "tick " * 400, "token_delay_s": 0.05},
    "spare": {"default": "Spare."},
    "faulty": {"default": "one two three four five six seven", "fail_after_tokens": 2},
}
SCREENSHOTS = REPO / "run" / "dashboard"
WAIT_S = 30
RENDERED = "return document.documentElement.dataset.rendered"
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboard")
    models = scripted_models(tmp / "models", SCRIPTS)
    config = base_config(
        models,
        tmp / "models",
        routing={"aliases": {"chat": ["hello", "spare"]}},
        security={"admin_key": KEY, "api_keys": [API_KEY]},
    )
    with running_stack(tmp, config) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, chromedriver = chromium_or_skip()
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    with headless_chromium(chromium, chromedriver, profile, timeout_s=WAIT_S) as driver:
        yield driver


# --- helpers ---------------------------------------------------------------------------


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], what: str) -> T:
    """Poll `condition` until it is truthy, at most WAIT_S; a stale element is a retry."""
    try:
        return WebDriverWait(
            driver, WAIT_S, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
        ).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}") from None


def open_page(driver: WebDriver, stack: Stack, path: str = "/") -> None:
    """A fresh tab state: the page loaded with no key stored."""
    driver.get(stack.url + path)
    driver.execute_script("sessionStorage.clear()")
    driver.get(stack.url + path)


def key_dialog_open(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return document.getElementById('key-dialog').open"))


def answer_key_dialogs(
    driver: WebDriver, keys: dict[str, str], until: Callable[[WebDriver], Any], what: str
) -> None:
    """Type the key each dialog asks for (the admin or the API key, in whichever order the
    page asks) until `until` holds."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if until(driver):
            return
        if key_dialog_open(driver):
            field = driver.find_element(By.ID, "key-input")
            field.clear()
            field.send_keys(
                keys[driver.find_element(By.ID, "key-dialog").get_attribute("data-kind") or ""]
            )
            driver.find_element(By.ID, "key-submit").click()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}")


def page_ready(driver: WebDriver) -> bool:
    """Every model listed and the playground's models known, no dialog open."""
    options = driver.find_elements(By.CSS_SELECTOR, "#chat-model option")
    return set(model_rows(driver)) == set(SCRIPTS) and bool(options) and not key_dialog_open(driver)


def open_with_key(driver: WebDriver, stack: Stack) -> None:
    open_page(driver, stack)
    answer_key_dialogs(driver, KEYS, page_ready, "the page with both keys given")


def model_rows(driver: WebDriver) -> dict[str, WebElement]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#models tbody tr")
    return {row.get_attribute("data-model") or "": row for row in rows}


def model_state(driver: WebDriver, model_id: str) -> str:
    row = model_rows(driver).get(model_id)
    return row.find_element(By.CSS_SELECTOR, ".state").text if row is not None else ""


def api(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=60,
        trust_env=False,
    )


def admin(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60, trust_env=False
    )


def recent_endpoint_exists(stack: Stack) -> bool:
    with admin(stack) as client:
        # 405 before it exists: the path meets DELETE /admin/requests/{id}.
        return client.get("/admin/requests/recent?limit=1").status_code not in (404, 405)


# Records every text the newest answer bubble shows, as the page changes it: polling
# from the test would miss pieces whenever a busy machine slows the polls, and a text read
# before `data-done` could be older than the answer that was then done.
_RECORD_ANSWER_TEXTS = """
window.lmxSeen = [];
const log = document.getElementById("chat-log");
new MutationObserver(() => {
  const bubbles = log.querySelectorAll(".msg.assistant");
  const text = bubbles.length > arguments[0] ? bubbles[bubbles.length - 1].innerText : null;
  if (text !== null && window.lmxSeen[window.lmxSeen.length - 1] !== text) {
    window.lmxSeen.push(text);
  }
}).observe(log, {childList: true, subtree: true, characterData: true});
"""


def ask_in_playground(driver: WebDriver, model: str, prompt: str) -> list[str]:
    """Send `prompt` from the page; every text the answer showed on its way, in order."""
    Select(driver.find_element(By.ID, "chat-model")).select_by_value(model)
    driver.find_element(By.ID, "chat-prompt").send_keys(prompt)
    before = len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .msg.assistant"))
    driver.execute_script(_RECORD_ANSWER_TEXTS, before)
    driver.find_element(By.ID, "chat-send").click()

    def finished(d: WebDriver) -> bool:
        bubbles = d.find_elements(By.CSS_SELECTOR, "#chat-log .msg.assistant")
        return len(bubbles) > before and bubbles[-1].get_attribute("data-done") == "true"

    wait_for(driver, finished, "the playground answer to finish")
    seen: list[str] = driver.execute_script("return window.lmxSeen")
    return [text.strip() for text in seen]


def severe_console_lines(driver: WebDriver) -> list[str]:
    """Browser console errors, less the refusals the page expects and handles (a 401 that
    asks for the key; a 404 or 405 from a gateway without request history)."""
    expected = ("status of 401", "status of 404", "status of 405")
    lines = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return [line for line in lines if not any(x in line for x in expected)]


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    path.write_bytes(driver.get_screenshot_as_png())
    return path


def emulate(driver: WebDriver, width: int, height: int, mobile: bool, dark: bool = False) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
    scheme = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": scheme})


def streaming_row(driver: WebDriver, model_id: str) -> WebElement | None:
    """The in-flight row of a request to `model_id` once it shows a few tokens relayed."""
    for row in driver.find_elements(By.CSS_SELECTOR, "#in-flight tbody tr"):
        model, _, state, _, tokens = (c.text for c in row.find_elements(By.TAG_NAME, "td")[:5])
        if model == model_id and state == "running" and int(tokens or 0) >= 3:
            return row
    return None


class StreamReader(threading.Thread):
    """A streamed chat request read on a thread, its SSE lines kept."""

    def __init__(self, stack: Stack, model_id: str) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.model_id = model_id
        self.lines: list[str] = []

    def run(self) -> None:
        body = {
            "model": self.model_id,
            "stream": True,
            "messages": [{"role": "user", "content": "go"}],
        }
        with (
            api(self.stack) as client,
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            for line in response.iter_lines():
                self.lines.append(line)

    def events(self) -> list[dict[str, Any]]:
        data = [x[len("data: ") :] for x in self.lines if x.startswith("data: ")]
        return [json.loads(d) for d in data if d != "[DONE]"]


# --- the page as served ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/ui"])
def test_page_is_served_without_a_key_with_strict_headers(stack: Stack, path: str) -> None:
    with stack.client() as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    # Nothing guarded in the page itself: no model, no inline script.
    assert "slow-load" not in response.text and "<script>" not in response.text
    assert '<script type="module" src="/ui/assets/js/main.js">' in response.text


def test_assets_have_their_types_and_revalidate_with_an_etag(stack: Stack) -> None:
    with stack.client() as client:
        script = client.get("/ui/assets/js/main.js")
        again = client.get(
            "/ui/assets/js/main.js", headers={"if-none-match": script.headers["etag"]}
        )
        style = client.get("/ui/assets/dashboard.css")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["x-content-type-options"] == "nosniff"
    assert again.status_code == 304 and again.content == b""
    assert style.headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["/ui/assets/nothing.js", "/ui/assets/..%2f..%2f__init__.py", "/ui/assets/"]
)
def test_unknown_asset_is_a_404_envelope(stack: Stack, path: str) -> None:
    with stack.client() as client:
        response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_browser_guard_covers_the_page(stack: Stack) -> None:
    with stack.client() as client:
        rebound = client.get("/", headers={"host": "evil.example"})
        framed = client.get("/", headers={"origin": "http://evil.example"})
    assert rebound.status_code == 403
    assert framed.status_code == 403


# --- the page in a browser -------------------------------------------------------------


def test_asks_for_the_keys_and_shows_nothing_without_them(stack: Stack, browser: WebDriver) -> None:
    open_page(browser, stack)
    wait_for(browser, key_dialog_open, "the key dialog")
    assert model_rows(browser) == {}
    assert browser.find_element(By.ID, "log-lines").text == ""

    def admin_key_refused(d: WebDriver) -> bool:
        reason = d.find_element(By.ID, "key-reason").text
        return key_dialog_open(d) and "refused the admin key" in reason

    answer_key_dialogs(browser, {**KEYS, "admin": "wrong"}, admin_key_refused, "a refusal")
    assert model_rows(browser) == {}

    answer_key_dialogs(browser, KEYS, page_ready, "every model's row")
    # The keys live in this tab only, and never in a URL or a cookie.
    stored = browser.execute_script(
        "return [sessionStorage.getItem('lmx.adminKey'), sessionStorage.getItem('lmx.apiKey'),"
        " localStorage.length, document.cookie]"
    )
    assert stored == [KEY, API_KEY, 0, ""]
    assert KEY not in browser.current_url

    browser.find_element(By.ID, "forget-keys").click()
    wait_for(browser, key_dialog_open, "the key dialog after forgetting the keys")
    assert model_rows(browser) == {}


def test_an_action_with_a_refused_key_is_refused(stack: Stack, browser: WebDriver) -> None:
    open_with_key(browser, stack)
    # The key changed under the page (a restart with a new admin key, say).
    browser.execute_script("sessionStorage.setItem('lmx.adminKey', 'stale')")
    model_rows(browser)["spare"].find_element(By.CSS_SELECTOR, "button.action").click()
    wait_for(browser, key_dialog_open, "the key dialog")
    assert "refused" in browser.find_element(By.ID, "key-reason").text
    assert model_rows(browser) == {}
    assert stack.status("spare")["status"] == "unloaded"


def test_renders_every_model_and_a_load_clicked_turns_ready(
    stack: Stack, browser: WebDriver
) -> None:
    open_with_key(browser, stack)
    rows = wait_for(browser, lambda d: set(model_rows(d)) == set(SCRIPTS) and model_rows(d), "rows")
    assert model_state(browser, "slow-load") == "unloaded"
    assert "alias chat" in rows["hello"].text

    button = rows["slow-load"].find_element(By.CSS_SELECTOR, "button.action")
    assert button.text == "Load"
    button.click()
    wait_for(browser, lambda d: model_state(d, "slow-load") == "loading", "slow-load loading")
    wait_for(browser, lambda d: model_state(d, "slow-load") == "ready", "slow-load ready")
    port = str(stack.status("slow-load")["port"])
    wait_for(browser, lambda d: port in model_rows(d)["slow-load"].text, "its port")
    assert stack.status("slow-load")["status"] == "ready"
    action = model_rows(browser)["slow-load"].find_element(By.CSS_SELECTOR, "button.action")
    wait_for(browser, lambda d: action.text == "Unload", "an Unload button")


def test_playground_streams_an_answer_with_its_speed(stack: Stack, browser: WebDriver) -> None:
    open_with_key(browser, stack)
    wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#chat-model option[value=chat]"),
        "aliases",
    )
    seen = ask_in_playground(browser, "chat", "Say the fox line.")
    assert seen[-1] == ANSWER
    partial = [t for t in seen if t and t != ANSWER]
    assert len(partial) >= 3, f"the answer did not arrive in pieces: {seen}"
    assert all(ANSWER.startswith(t) for t in partial)
    stats = browser.find_element(By.ID, "chat-stats").text
    assert "tok/s" in stats and "first token" in stats and "hello" in stats


def test_cancel_a_request_in_flight_from_the_page(stack: Stack, browser: WebDriver) -> None:
    open_with_key(browser, stack)
    reader = StreamReader(stack, "long")
    reader.start()
    try:
        # Running, with tokens on their way (the page counts them), then cancelled.
        row = wait_for(browser, lambda d: streaming_row(d, "long"), "the request streaming")
        row.find_element(By.CSS_SELECTOR, "button.cancel").click()
        reader.join(WAIT_S)
        assert not reader.is_alive()
        errors = [e["error"] for e in reader.events() if "error" in e]
        assert [e["code"] for e in errors] == ["request_cancelled"], reader.lines[-5:]
        wait_for(
            browser,
            lambda d: not d.find_elements(By.CSS_SELECTOR, "#in-flight tbody tr"),
            "the row to go",
        )
    finally:
        reader.join(WAIT_S)


def test_log_tail_follows_the_chosen_program(stack: Stack, browser: WebDriver) -> None:
    open_with_key(browser, stack)
    with admin(stack) as client:
        client.post("/admin/models/load", json={"model": "spare"}).raise_for_status()
    programs = wait_for(
        browser,
        lambda d: (
            "worker-spare"
            in [
                o.get_attribute("value")
                for o in Select(d.find_element(By.ID, "log-program")).options
            ]
            and Select(d.find_element(By.ID, "log-program"))
        ),
        "worker-spare among the programs",
    )
    programs.select_by_value("worker-spare")
    wait_for(
        browser,
        lambda d: (
            "ready" in d.find_element(By.ID, "log-lines").text.lower()
            or "uvicorn" in d.find_element(By.ID, "log-lines").text.lower()
        ),
        "the worker's log",
    )
    before = browser.find_element(By.ID, "log-lines").text
    with api(stack) as client:
        chat = {"model": "spare", "messages": [{"role": "user", "content": "hi"}]}
        client.post("/v1/chat/completions", json=chat).raise_for_status()
    wait_for(
        browser,
        lambda d: len(d.find_element(By.ID, "log-lines").text) > len(before),
        "a new log line",
    )


def test_recent_list_shows_the_playground_request_and_errors(
    stack: Stack, browser: WebDriver
) -> None:
    """Needs GET /admin/requests/recent (the metrics branch); skipped without it."""
    if not recent_endpoint_exists(stack):
        pytest.skip("needs GET /admin/requests/recent (the metrics branch)")
    open_with_key(browser, stack)
    ask_in_playground(browser, "hello", "Once more.")

    def listed(d: WebDriver) -> list[str]:
        rows = d.find_elements(By.CSS_SELECTOR, "#recent tbody tr")
        return [r.text for r in rows if "hello" in r.text and "/v1/chat/completions" in r.text]

    row = wait_for(browser, listed, "the request in the recent list")[0]
    assert "200" in row

    # A stream that fails mid-answer: the page shows the error the history kept for it.
    failed = StreamReader(stack, "faulty")
    failed.run()
    assert any("error" in e for e in failed.events())
    with admin(stack) as client:
        history = client.get("/admin/requests/recent?limit=25").json()["data"]
    errors = [r["error"] for r in history if r["model"] == "faulty" and r["error"]]
    assert errors, f"the history kept no error for the failed stream: {history[:3]}"
    text = errors[0]["message"] if isinstance(errors[0], dict) else errors[0]
    wait_for(
        browser,
        lambda d: any(text in c.text for c in d.find_elements(By.CSS_SELECTOR, "#recent td")),
        "the error in the recent list",
    )


def test_without_request_history_the_page_says_so(stack: Stack, browser: WebDriver) -> None:
    if recent_endpoint_exists(stack):
        pytest.skip("this gateway keeps request history")
    open_with_key(browser, stack)
    wait_for(
        browser,
        lambda d: "History not available" in d.find_element(By.ID, "recent-empty").text,
        "the note that history is not available",
    )
    assert not browser.find_element(By.ID, "recent").is_displayed()


def test_loads_fast_fits_both_screens_and_follows_the_system_theme(
    stack: Stack, browser: WebDriver
) -> None:
    with admin(stack) as client:
        client.post("/admin/models/load", json={"model": "hello"}).raise_for_status()
    browser.get_log("browser")  # start the console check from here
    emulate(browser, 1280, 800, mobile=False)
    open_with_key(browser, stack)
    # From navigation to the first live data on screen, measured by the page.
    browser.refresh()
    rendered = wait_for(browser, lambda d: d.execute_script(RENDERED), "the first render")
    assert int(rendered) < 1000, f"first live render {rendered} ms after navigation"
    ask_in_playground(browser, "chat", "Say the fox line.")
    Select(browser.find_element(By.ID, "log-program")).select_by_value("worker-hello")
    wait_for(browser, lambda d: d.find_element(By.ID, "log-lines").text, "log lines")
    wait_for(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "#in-flight tbody tr"), "idle")
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "dashboard-1280x800.png")

    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    emulate(browser, 1280, 800, mobile=False, dark=True)
    dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert light != dark
    screenshot(browser, "dashboard-1280x800-dark.png")

    emulate(browser, 390, 844, mobile=True)
    browser.execute_script("window.scrollTo(0, 0)")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    screenshot(browser, "dashboard-390x844.png")
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert severe_console_lines(browser) == []
