"""The dashboard end to end, as a person uses it (issue 14, Tests): the embedded farm as
`make run` starts it (`browserfarm up`: the API under gunicorn, this desktop's agent and
a v5 runner), and headless Chromium driven by Selenium (Debian's chromedriver) that signs
in with a token, creates and finds a window, opens it on the agent, watches its live
view change and takes it over, follows a v5 worker's ``browser_url`` to its live view,
stops it and plays its video; a person not signed in and a read-only member get what
they may and no more; a form on another site is refused.

One farm for the module, a browser for the owner and one for a read-only member
(about 45 s in all, most of it the window's and the worker's Firefox). Each page is kept as a screenshot in
$BROWSERFARM_TEST_ARTIFACTS/dashboard (default test-artifacts/ in the repo), to be
looked at by a person: what the tests can't tell (cut off, overlapping, unreadable)."""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from browserfarm.browsers.handles import LocalHandle
from browserfarm_plugins.firefox import Firefox
from tests.conftest import free_port, needs_firefox, wait_until
from tests.servers import HTTPService, chromium

pytestmark = [needs_firefox(), pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent
SCALE = 0.05  # 60 s of worker time is 3 s here: a worker may be stopped after 3 s
BLUE, RED, GREEN = (0, 0, 255), (255, 0, 0), (0, 160, 0)


def _page(color: str, title: str) -> bytes:
    """A page that is one button filling the screen: a click turns it red, retitles it
    and tells the server (GET /clicked)."""
    return (f"<!doctype html><title>{title}</title><body style='margin:0'>"
            f"<button style='width:100vw;height:100vh;border:0;font-size:40px;"
            f"background:{color}' onclick=\"this.style.background='#f00';"
            f"document.title='clicked';fetch('/clicked')\">{title}</button>").encode()


class Pages(HTTPService):
    """/blue and /green: the pages the window and the worker show; counts the clicks."""

    def __init__(self):
        self.clicks = 0
        super().__init__()

    def respond(self, h):
        if h.route == "/clicked":
            self.clicks += 1
            h.reply(204)
        elif h.route == "/blue":
            h.reply(200, _page("#00f", "blue"), "text/html")
        else:
            h.reply(200, _page("#00a000", "green"), "text/html")


class ForgedSite:
    """Another site (127.0.0.2, another origin than the dashboard's): its page posts a
    form to the dashboard as soon as it loads, as a cross-site forgery would."""

    def __init__(self, action: str):
        page = (f"<!doctype html><title>Win a prize</title><body><form method='post' "
                f"action='{action}'><input name='confirm' value='yes'></form>"
                f"<script>document.forms[0].submit()</script>").encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


# ----- the farm, the browser, the screenshots -----------------------------------------

class Farm:
    """`browserfarm up` on a data dir of its own: its URL and the owner's credentials."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "BROWSERFARM_PORT": str(self.port),
               "BROWSERFARM_LOCAL_PORT": str(free_port()),
               "BROWSERFARM_WINDOW_DISPLAY": "virtual",  # the window's live view
               "BROWSERFARM_WORKER_TIME_SCALE": str(SCALE)}
        env.pop("DATABASE_URL", None)
        env.pop("BROWSERFARM_DATABASE_URL", None)
        self.log_path = data_dir.parent / "up.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cli("up"), env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._answers, 60, "`browserfarm up` to serve")
        self.credentials = json.loads((data_dir / "credentials.json").read_text())
        self.token = self.credentials["token"]

    def cli(self, *args) -> list[str]:
        return [sys.executable, "-m", "browserfarm.cli", "--data-dir", str(self.data_dir),
                *args]

    def _answers(self) -> bool:
        assert self.proc.poll() is None, f"`browserfarm up` exited: see {self.log_path}"
        try:
            return requests.get(self.base + "/signin", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def new_token(self, role: str) -> str:
        made = subprocess.run(self.cli("token", "create", "--account",
                                       str(self.credentials["account_id"]), "--role", role,
                                       "--name", role), capture_output=True, text=True,
                              check=True, timeout=60)
        return json.loads(made.stdout)["token"]

    def api(self, path: str, body: dict) -> dict:
        answer = requests.post(self.base + path, json=body, timeout=30,
                               headers={"Authorization": f"Bearer {self.token}"}).json()
        assert answer["code"] == 0, answer
        return answer["data"]

    def v5(self, method: str, path: str, **kwargs):
        return requests.request(method, self.base + path, timeout=120, **kwargs, auth=(
            self.credentials["v5_username"], self.credentials["v5_access_key"]))

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # up stops its children in order
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    farm = Farm(tmp_path_factory.mktemp("e2e") / "var")
    yield farm
    farm.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def reader(farm):
    """A read-only member, in a browser of their own."""
    with chromium() as browser:
        sign_in(browser, farm.base, farm.new_token("read-only"))
        yield browser


@pytest.fixture(scope="module")
def pages():
    pages = Pages()
    yield pages
    pages.stop()


@pytest.fixture(scope="module")
def shoot():
    """``shoot(browser, "01-name", full=False)``: the page as a PNG in the artifacts."""
    folder = Path(os.environ.get("BROWSERFARM_TEST_ARTIFACTS")
                  or REPO / "test-artifacts") / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # this run's only
        old.unlink()

    def take(browser, name: str, full: bool = False) -> Path:
        path = folder / f"{name}.png"
        if not full:
            browser.save_screenshot(str(path))
            return path
        size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
    return take


# ----- what a person sees ---------------------------------------------------------------

def sign_in(browser, base: str, token: str):
    browser.delete_all_cookies()
    browser.get(base + "/signin")
    browser.find_element(By.NAME, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_until(lambda: "/signin" not in browser.current_url, 10, "the sign-in")


# Read by scripts, not element references: htmx may swap an element meanwhile.

def text(browser) -> str:
    return " ".join(browser.execute_script("return document.body.innerText").split())


def wait_for_text(browser, words: str, timeout: float = 30) -> str:
    return wait_until(lambda: words in (seen := text(browser)) and seen, timeout,
                      f"{words!r} on {browser.current_url}")


def buttons(browser) -> set[str]:
    return set(browser.execute_script("""return [...document.querySelectorAll(
        "button, a.button")].map(b => b.innerText.trim()).filter(t => t)"""))


_SAMPLE = """
    const canvas = document.querySelector(".live-screen canvas");
    if (!canvas || !canvas.width) return {share: 0};
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width,
                                                      canvas.height).data;
    const [r, g, b] = arguments[0];
    let near = 0, seen = 0, x = 0, y = 0;
    for (let at = 0; at < data.length; at += 4 * 97) {  // a sample of the pixels
      seen++;
      if (Math.abs(data[at] - r) + Math.abs(data[at + 1] - g)
          + Math.abs(data[at + 2] - b) < 60) {
        near++;
        x += (at / 4) % canvas.width;
        y += Math.floor(at / 4 / canvas.width);
      }
    }
    const box = canvas.getBoundingClientRect();
    return {share: near / seen,  // and where they are, from the canvas's centre in CSS px
            dx: near && (x / near / canvas.width - 0.5) * box.width,
            dy: near && (y / near / canvas.height - 0.5) * box.height};"""


def on_screen(browser, color: tuple[int, int, int]) -> dict:
    """How much of the live view's screen (noVNC's canvas, its pixels read back) is
    about ``color`` (``share``, of the whole screen), and the middle of those pixels
    (``dx``, ``dy``: from the canvas's centre, in the page's pixels)."""
    return browser.execute_script(_SAMPLE, list(color))


def shows(browser, color, share: float) -> bool:
    return on_screen(browser, color)["share"] > share


def appears(browser, css: str, timeout: float) -> bool:
    """Whether an element matching ``css`` is on the page within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not browser.find_elements(By.CSS_SELECTOR, css):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def wait_live(browser):
    wait_until(lambda: browser.execute_script(
        "return document.querySelector('.live-view')?.dataset.state === 'connected'"), 30,
        "the live view to connect")


def press(browser, by: str, what: str):
    """Clicks the element, found again should a refresh (htmx) replace it meanwhile."""
    def pressed():
        try:
            browser.find_element(by, what).click()
            return True
        except StaleElementReferenceException:
            return False
    wait_until(pressed, 10, f"{what} to be clicked")


def agent_action(browser, action: str):
    """"Open or close…", then the action on the agent offered (the only one here)."""
    press(browser, By.XPATH, "//button[starts-with(text(), 'Open or close')]")
    wait_until(lambda: browser.find_elements(
        By.CSS_SELECTOR, f"button[name=action][value={action}]"), 10, "the agent's buttons")
    press(browser, By.CSS_SELECTOR, f"button[name=action][value={action}]")


def click_screen(browser, color):
    """Take over, then click the live view in the middle of what shows ``color``."""
    browser.find_element(By.CSS_SELECTOR, ".live-take-over").click()
    screen = browser.find_element(By.CSS_SELECTOR, ".live-screen canvas")
    where = on_screen(browser, color)
    ActionChains(browser).move_to_element_with_offset(
        screen, int(where["dx"]), int(where["dy"])).click().perform()


# ----- the flows ------------------------------------------------------------------------

def test_a_person_signs_in_makes_a_window_opens_it_watches_and_takes_it_over(
        farm, browser, pages, shoot):
    browser.get(farm.base + "/")
    assert "/signin" in browser.current_url
    shoot(browser, "01-signin")
    sign_in(browser, farm.base, farm.token)
    shoot(browser, "02-home")

    # Create a window from the form, then find it by searching.
    browser.get(farm.base + "/windows/new")
    browser.find_element(By.ID, "name").send_keys("e2e checkout")
    browser.find_element(By.ID, "remark").send_keys("made by a person in the dashboard")
    shoot(browser, "03-window-new", full=True)
    browser.find_element(By.XPATH, "//button[text()='Create window']").click()
    wait_for_text(browser, "e2e checkout")
    window_id = int(re.search(r"/windows/(\d+)", browser.current_url)[1])
    for n in range(3):  # others to search among
        farm.api("/browser/update", {"name": f"other {n}"})
    browser.get(farm.base + "/windows")
    search = browser.find_element(By.NAME, "q")
    search.send_keys("checkout")  # htmx swaps the results as one types
    wait_until(lambda: "1 window," in text(browser), 10, "the search's results")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.windows tbody tr a")
    assert [a.text for a in rows] == ["e2e checkout"]
    shoot(browser, "04-windows-search")

    # Open it on the agent from its page; the answer says where it runs.
    rows[0].click()
    shoot(browser, "05-window-page", full=True)
    agent_action(browser, "open")
    opened = wait_for_text(browser, "Opened on", timeout=90)
    marionette = int(re.search(r"Marionette port (\d+)", opened)[1])
    pid = int(re.search(r"Process (\d+)", opened)[1])
    shoot(browser, "06-window-opened")

    # Its live view, a click away on the same page (no reload: the open swapped it in);
    # the page the window shows changes, and so does the view.
    press(browser, By.LINK_TEXT, "Watch it live")
    assert appears(browser, ".live-view", 5), "'Watch it live' after the open showed no view"
    wait_live(browser)
    firefox = Firefox.attach(LocalHandle("firefox", pid=pid, marionette_port=marionette))
    try:
        assert not shows(browser, BLUE, 0.01)  # its start page: no blue
        firefox.navigate(pages.url + "/blue")
        wait_until(lambda: shows(browser, BLUE, 0.1), 20, "the view to turn blue")
        shoot(browser, "07-window-live-view", full=True)
        # Taken over: a click in the view reaches the page, which turns red.
        blue = on_screen(browser, BLUE)["share"]
        click_screen(browser, BLUE)
        wait_until(lambda: pages.clicks == 1, 20, "the click to reach the window's page")
        assert firefox.execute_script("return document.title") == "clicked"
        wait_until(lambda: shows(browser, RED, blue / 2), 20, "the view to turn red")
        shoot(browser, "08-window-taken-over")
    finally:
        firefox.delete_session()

    # Closed from the dashboard again.
    agent_action(browser, "close")
    wait_for_text(browser, "Closed on", timeout=60)
    assert farm.api("/browser/detail", {"id": window_id})["openStatus"] == "closed"


def test_a_workers_browser_url_leads_to_its_live_view_its_stop_button_and_its_video(
        farm, browser, reader, pages, shoot):
    flat = farm.v5("GET", "/5/browsers?flat=true").json()
    entry = next(e for e in flat if e["browser"] == "firefox")
    made = farm.v5("POST", "/5/worker", json={
        "os": entry["os"], "os_version": entry["os_version"], "browser": "firefox",
        "browser_version": entry["browser_version"], "url": pages.url + "/green",
        "name": "e2e worker", "build": "b-7", "project": "shop", "timeout": 1800,
        "browserstack.video": True}).json()
    assert made["status"] == "running", made
    running_since = time.monotonic()
    browser_url = farm.v5("GET", f"/5/worker/{made['id']}").json()["browser_url"]
    assert browser_url == f"{farm.base}/workers/{made['id']}"

    # Followed by someone not signed in: the sign-in page, then the worker's page.
    browser.delete_all_cookies()
    browser.get(browser_url)
    assert "/signin" in browser.current_url
    browser.find_element(By.NAME, "token").send_keys(farm.token)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_until(lambda: browser.current_url == browser_url, 10, "the worker's page")
    wait_live(browser)
    wait_until(lambda: shows(browser, GREEN, 0.05), 20, "the worker's page in the view")
    shown = text(browser)
    for fact in (f"Worker #{made['id']}: e2e worker", "running", "b-7", "shop",
                 pages.url + "/green"):
        assert fact in shown, fact
    shoot(browser, "09-worker-live-view", full=True)

    # A read-only member sees the worker, and neither its view nor a stop button.
    reader.get(browser_url)
    seen = wait_for_text(reader, "e2e worker")
    assert "needs the browser:open permission" in seen
    assert not reader.find_elements(By.CSS_SELECTOR, ".live-view")
    assert "Stop this worker" not in buttons(reader)
    shoot(reader, "10-worker-read-only", full=True)

    # Stopped from its page; its video then plays in the page.
    # (The spec's rule: a worker is stopped at 60 s of running at the earliest; 3 s here.)
    time.sleep(max(0.0, 60 * SCALE + 0.5 - (time.monotonic() - running_since)))
    press(browser, By.XPATH, "//button[text()='Stop this worker']")
    wait_for_text(browser, f"Worker {made['id']} stopped after")
    wait_until(lambda: farm.v5("GET", f"/5/worker/{made['id']}").json() == {}, 30,
               "the worker to end")
    # The page finds the worker ended by itself, then shows the video once finished.
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#video video"), 60,
               "the video in the page")
    played = browser.execute_script("""
        const video = document.querySelector("#video video");
        video.muted = true;
        await video.play();
        const started = video.currentTime;
        await new Promise(done => setTimeout(done, 1000));
        return {started, time: video.currentTime, ready: video.readyState,
                width: video.videoWidth, error: video.error && video.error.message};""")
    assert played["error"] is None and played["ready"] >= 2, played
    assert played["width"] > 0 and played["time"] - played["started"] > 0.3, played
    shoot(browser, "11-worker-ended-video", full=True)
    browser.get(farm.base + "/workers")
    wait_for_text(browser, "e2e worker")
    shoot(browser, "12-workers", full=True)


def test_a_person_not_signed_in_and_a_read_only_member_get_what_they_may_and_no_more(
        farm, browser, reader, shoot):
    window = farm.api("/browser/update", {"name": "e2e look only", "remark": "read me"})
    farm.api("/group/add", {"groupName": "e2e sellers"})
    farm.api("/tag/add", {"name": "e2e-eu"})
    farm.api("/proxy/add", {"proxyType": "socks5", "host": "127.66.0.1", "port": 1080,
                            "remark": "e2e pool proxy"})  # never checked: never reached

    # Not signed in: every page asks for a token first.
    browser.delete_all_cookies()
    for path in ("/", "/windows", f"/windows/{window['id']}", "/windows/new", "/agents",
                 "/workers", "/proxies", "/groups", "/tags"):
        browser.get(farm.base + path)
        assert "/signin" in browser.current_url, path
        assert "Sign in to BrowserFarm" in text(browser), path
    shoot(browser, "13-not-signed-in")

    # A read-only member sees the windows, the agents, the pools; changes nothing.
    reader.get(farm.base + "/windows")
    wait_for_text(reader, "e2e look only")
    assert "New window" not in buttons(reader)
    shoot(reader, "14-windows-read-only", full=True)
    reader.get(f"{farm.base}/windows/{window['id']}")
    assert "read me" in wait_for_text(reader, "e2e look only")
    offered = buttons(reader)
    for change in ("Edit", "Move to the recycle bin", "Open or close…"):
        assert change not in offered, change
    shoot(reader, "15-window-read-only", full=True)
    reader.get(farm.base + "/agents")
    assert "online" in wait_for_text(reader, "Agents")
    shoot(reader, "16-agents-read-only", full=True)
    for path, shown, changes in (
            ("/groups", "e2e sellers", ("Create group", "Save", "Delete")),
            ("/tags", "e2e-eu", ("Create tag", "Save", "Delete")),
            ("/proxies", "127.66.0.1", ("Add proxy", "Edit", "Delete", "Check exit IP"))):
        reader.get(farm.base + path)
        wait_for_text(reader, shown)
        offered = buttons(reader)
        assert not offered & set(changes), (path, offered)
    shoot(reader, "17-proxies-read-only", full=True)
    # What the pages don't offer, the server refuses (with the page's own CSRF token).
    refused = reader.execute_script("""
        const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
        const answer = await fetch(arguments[0], {method: "POST",
          headers: {"X-CSRFToken": token}});
        return [answer.status, await answer.text()];""",
        f"{farm.base}/windows/{window['id']}/delete")
    assert refused[0] == 403 and "requires browser:delete:recycle" in refused[1]
    assert farm.api("/browser/detail", {"id": window["id"]})["name"] == "e2e look only"
    reader.get(farm.base + "/windows/new")
    assert "requires browser:create" in wait_for_text(reader, "You can't create windows")
    shoot(reader, "18-refused-read-only")
    # Signed out, the member is a stranger again.
    reader.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait_for_text(reader, "Signed out.")
    reader.get(farm.base + "/windows")
    assert "/signin" in reader.current_url


def test_a_form_posted_from_another_site_is_refused(farm, browser, shoot):
    window = farm.api("/browser/update", {"name": "e2e keep me"})
    sign_in(browser, farm.base, farm.token)
    forged = ForgedSite(f"{farm.base}/windows/{window['id']}/delete")
    try:
        browser.get(forged.url)  # it posts the form at once
        wait_until(lambda: browser.current_url.startswith(farm.base), 10,
                   "the forged form's answer")
        assert "did not come from a page of this dashboard" in text(browser)
        shoot(browser, "19-forged-form-refused")
    finally:
        forged.stop()
    detail = farm.api("/browser/detail", {"id": window["id"]})
    assert not detail["isDelete"], detail
    # Nor did it end the person's session (its answer must not set a new cookie).
    browser.get(farm.base + "/windows")
    assert "/signin" not in browser.current_url, "the forged form signed the person out"
    wait_for_text(browser, "e2e keep me")
