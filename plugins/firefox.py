"""The Firefox browser backend (Debian's firefox-esr), on Mozilla's own libraries:
mozprofile writes the profile's prefs, mozrunner starts and stops Firefox, and
marionette_driver drives it (the protocol geckodriver itself speaks)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from browserfarm.pluginapi import (Launched, LaunchSpec, LocalHandle, VirtualDisplay,
                                   WindowBackend, WorkerBackend, WorkerSpec, free_port,
                                   hookimpl, host_os_version, major_version, processes,
                                   stop_display)
from browserfarm_plugins import firefox_automation
from browserfarm_plugins.firefox_prefs import (QUIET_ENV, firefox_prefs, not_applied,
                                               window_size)

WORKER_PREFIX = "browserfarm-firefox-"  # a worker's throw-away profile in TMPDIR

class Firefox(WindowBackend, WorkerBackend):
    name = "firefox"
    executables = ("firefox-esr", "firefox")

    @classmethod
    def unavailable_reason(cls):
        reason = super().unavailable_reason()
        if reason:
            return reason
        try:
            import marionette_driver  # noqa: F401
            import mozprofile  # noqa: F401
            import mozrunner  # noqa: F401
        except ImportError as exc:
            return f"Mozilla's Python libraries are missing ({exc})"
        return None

    @classmethod
    def not_applied(cls, window: dict) -> dict[str, str]:
        version = "" if cls.unavailable_reason() else cls.version()
        return not_applied(window, os.cpu_count(), version)

    @classmethod
    def launch(cls, spec: LaunchSpec, user: processes.User | None = None) -> Launched:
        """``spec.keep_session``: return the start's Marionette session as ``session``
        (a runner's worker) rather than leave Marionette free (a user's window).
        ``user``: run Firefox as that user (a worker's), its profile made over to it."""
        from marionette_driver.marionette import Marionette
        from mozprofile import FirefoxProfile
        from mozrunner import FirefoxRunner

        if cls.executable() is None:
            raise RuntimeError(cls.unavailable_reason())
        marionette_port, bidi_port = free_port(), free_port()
        # A plugin's prefs (extra_prefs) win over the add-on's: an operator may turn it off.
        prefs = firefox_prefs(spec) | firefox_automation.PREFS | (spec.extra_prefs or {}) \
            | {"marionette.port": marionette_port}
        profile = FirefoxProfile(profile=str(spec.profile_dir), preferences=prefs,
                                 restore=False)
        firefox_automation.install(Path(profile.profile))  # navigator.webdriver false
        width, height = window_size(spec.fingerprint or {})
        env = processes.popen_as(user, QUIET_ENV | spec.env)["env"]
        if spec.fingerprint.get("timeZone"):
            env["TZ"] = spec.fingerprint["timeZone"]
        if user:  # mozprofile wrote it as us
            _make_over(Path(profile.profile), user)
        # Headless when asked; else on the desktop's display ("auto", if there is one)
        # or on a virtual display of its own (from here on, stopped if the start fails).
        headless, display = spec.headless, None
        if not headless and (spec.display == "virtual"
                             or not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))):
            display = _virtual_display(spec.fingerprint or {}, user, spec.log_path, spec.env)
            env.pop("WAYLAND_DISPLAY", None)
            env |= display.env()
        if headless:
            env["MOZ_HEADLESS"] = "1"
        else:
            env.pop("MOZ_HEADLESS", None)
        # No --remote-allow-system-access: Marionette and BiDi listen on loopback without
        # authentication, so any local user could drive Firefox; without system access
        # they get no chrome context (no code run with the browser's privileges).
        # Nothing of ours needs it: cookies go through BiDi's storage module.
        args = ["--marionette",
                "--remote-debugging-port", str(bidi_port), "--no-remote",
                "--width", str(width), "--height", str(height)]
        # explicit_cleanup: the window outlives this call (mozrunner would otherwise
        # stop Firefox when the runner object is collected).
        # mozrunner cannot change user: setpriv, first on the command line, does.
        command = processes.as_user_command(user, [cls.executable()])
        runner = FirefoxRunner(binary=command[0], profile=profile, env=env,
                               explicit_cleanup=True,
                               cmdargs=command[1:] + args + (["--headless"] if headless else []),
                               process_args={"stream": open(spec.log_path, "ab")}
                               if spec.log_path else None)
        client = Marionette(host="127.0.0.1", port=marionette_port,
                            socket_timeout=spec.timeout + 10)  # the page load's own first
        try:
            runner.start()
            client.start_session(timeout=spec.timeout)
            warnings = [] if _await_webdriver_false(client) else [
                "navigator.webdriver stays true in this window: this Firefox build does "
                "not load the farm's unsigned add-on (Mozilla's own builds require "
                "signed add-ons; Debian's firefox-esr does not)"]
            if spec.start_url:
                _load(client, spec.start_url, spec.timeout)
        except BaseException:
            _quietly(client.delete_session)
            _quietly(runner.stop)
            if display is not None:
                display.stop()
            raise
        if not spec.keep_session:
            _quietly(client.delete_session)
        return Launched(pid=runner.process_handler.pid, warnings=warnings,
                        session=HeldSession(client) if spec.keep_session else None,
                        handle=LocalHandle(
                            backend=cls.name, pid=runner.process_handler.pid,
                            marionette_port=marionette_port,
                            ws=f"ws://127.0.0.1:{bidi_port}/session",
                            profile_dir=profile.profile,  # absolute, as on its command line
                            display=display and display.name,
                            display_pid=display and display.pid,
                            xauthority=display and display.xauthority))


    @classmethod
    def attach(cls, handle: LocalHandle, timeout: float = 60.0):
        """A Marionette client with a session on the running window; no answer waits
        longer than ``timeout`` (Marionette's own default is 6 minutes)."""
        from marionette_driver.marionette import Marionette
        client = Marionette(host="127.0.0.1", port=handle.marionette_port,
                            socket_timeout=timeout)
        client.start_session(timeout=min(timeout, 30))
        return client

    @classmethod
    def adoptable(cls, handle: LocalHandle) -> bool:
        """A window a dead agent left can be taken over: it runs and Marionette
        greets on its port (no session is started: a user's may be open)."""
        if not cls.alive(handle):
            return False
        try:
            with socket.create_connection(("127.0.0.1", handle.marionette_port),
                                          timeout=5) as sock:
                greeting = b""
                while b"}" not in greeting and len(greeting) < 1024:
                    chunk = sock.recv(1024)
                    if not chunk:
                        break
                    greeting += chunk
        except OSError:
            return False
        return b"marionetteProtocol" in greeting

    @classmethod
    def set_cookies(cls, handle: LocalHandle, cookies: list[dict]) -> list[str]:
        """Add cookies (BitBrowser's shape: name, value, domain, path, secure,
        httpOnly, expirationDate, sameSite) for any site; the reasons of refusals."""
        refused = []
        with _Bidi(handle) as bidi:
            for cookie in cookies:
                try:
                    bidi.call("storage.setCookie", {"cookie": _bidi_cookie(cookie)})
                except _BidiError as exc:
                    refused.append(f"{cookie.get('name')}: {exc}")
        return refused

    @classmethod
    def get_cookies(cls, handle: LocalHandle) -> list[dict]:
        """Every cookie of the window (of every site, not only the page shown), in
        the same shape."""
        with _Bidi(handle) as bidi:
            return [_bitbrowser_cookie(c) for c in bidi.call("storage.getCookies", {})["cookies"]]

    @classmethod
    def stop(cls, handle: LocalHandle, timeout: float = 20.0) -> bool:
        """Quit Firefox the way a user does (profile written to disk), or kill it.
        Returns True when it had to be killed. A Firefox already gone, or a pid now
        of another process (reused, or a handle from another host), is left alone.
        A worker's throw-away profile goes with it, its own display too (also when
        Firefox is gone already)."""
        try:
            return cls._stop(handle, timeout)
        finally:
            if handle.display_pid:
                stop_display(handle.display_pid, handle.xauthority, handle.display)
            if _is_worker_profile(handle.profile_dir):
                shutil.rmtree(handle.profile_dir, ignore_errors=True)

    @classmethod
    def _stop(cls, handle: LocalHandle, timeout: float) -> bool:
        pid = handle.pid
        if not cls.alive(handle):
            processes.wait_gone([pid], 0)  # reaped, if it was our child
            return False
        try:
            client = cls.attach(handle)
            client._send_message("Marionette:Quit", {"flags": ["eAttemptQuit"]})
        except Exception:  # noqa: BLE001 - not answering: signals below
            processes.send(pid, 15)
        if not processes.wait_gone([pid], timeout):
            return False
        processes.send(pid, 9)
        processes.wait_gone([pid], 5)
        return True

    @classmethod
    def alive(cls, handle: LocalHandle) -> bool:
        """Running, and (when the handle names its profile) that profile's Firefox:
        a pid the kernel reused for another process is not the window."""
        return processes.alive(handle.pid) and _runs_profile(handle.pid, handle.profile_dir)


    # ----- v5 workers ---------------------------------------------------------------

    @classmethod
    def catalogue(cls, settings) -> list[dict]:
        return [{"os": "Linux", "os_version": host_os_version(), "browser": "firefox",
                 "browser_version": major_version(cls.version()), "device": None,
                 "real_mobile": None}]

    @classmethod
    def start_worker(cls, spec: WorkerSpec, settings) -> Launched:
        """Run as the browser user (settings.browser_user) when we are root: Marionette
        takes anyone local who connects, so Firefox must read no more than that user
        may (not our data dir, secret.key). Its profile is a throw-away 0700 directory
        of that user's, also its HOME, removed by stop(); not spec.profile_dir, in our
        data dir, which the user cannot enter."""
        user = processes.browser_user(settings.browser_user)
        profile_dir = tempfile.mkdtemp(prefix=WORKER_PREFIX)
        try:
            if user:
                os.chown(profile_dir, user.uid, user.gid)
            return cls.launch(cls._worker_launch(spec, Path(profile_dir)), user)
        except BaseException:
            shutil.rmtree(profile_dir, ignore_errors=True)
            raise

    @staticmethod
    def _worker_launch(spec: WorkerSpec, profile_dir: Path) -> LaunchSpec:
        """On a display of its own (with the runner's mark, in ``env``) whose screen is
        the worker's size, or a bound window's resolution."""
        return LaunchSpec(profile_dir=profile_dir,
                            fingerprint=dict(spec.fingerprint)
                            | {"openWidth": spec.width, "openHeight": spec.height},
                            relay_port=spec.relay_port, headless=False, display="virtual",
                            extra_prefs=spec.extra_prefs, timeout=spec.timeout,
                            log_path=spec.log_path, start_url=spec.url,
                            env=spec.env | {"HOME": str(profile_dir),
                                            "TMPDIR": str(profile_dir)},
                            keep_session=spec.keep_session)

    @classmethod
    def navigate(cls, handle: LocalHandle, url: str, timeout: float = 60.0) -> None:
        """Load ``url``. A page that fails to load (refused, unknown name) is what the
        worker shows, as a browser would: not an error of the worker."""
        held = cls.hold(handle, timeout + 10)  # the page load's own timeout first
        try:
            held.navigate(url, timeout)
        finally:
            held.close()

    @classmethod
    def hold(cls, handle: LocalHandle, timeout: float = 60.0):
        return HeldSession(cls.attach(handle, timeout))

    @classmethod
    def screenshot(cls, handle: LocalHandle, timeout: float = 30.0) -> bytes:
        held = cls.hold(handle, timeout)
        try:
            return held.screenshot()
        finally:
            held.close()


class HeldSession:
    """A Marionette session kept open by a runner (see browserfarm.browsers.keeper)."""

    def __init__(self, client):
        self.client = client

    def screenshot(self) -> bytes:
        return self.client.screenshot(format="binary", full=False)

    def navigate(self, url: str, timeout: float = 60.0) -> None:
        _load(self.client, url, timeout)

    def close(self) -> None:
        _quietly(self.client.delete_session)


def _load(client, url: str, timeout: float) -> None:
    """Load ``url`` within ``timeout``. A page that fails to load (refused, unknown
    name) is what the browser shows, as for a user: not an error."""
    from marionette_driver.errors import MarionetteException
    client.timeout.page_load = timeout
    try:
        client.navigate(url)
    except MarionetteException as exc:
        if "Reached error page" not in str(exc):
            raise


def _await_webdriver_false(client, timeout: float = 5.0) -> bool:
    """Until firefox_automation's add-on has cleared the flags (it starts about when
    the servers do), so that the first page already reads navigator.webdriver false.
    A Firefox that will not load the add-on (signed builds) is not held up longer:
    False then."""
    deadline = time.monotonic() + timeout
    while client.execute_script("return navigator.webdriver"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


class _BidiError(Exception):
    """An error Firefox answered to a WebDriver BiDi command (its message)."""


class _Bidi:
    """A WebDriver BiDi session of its own on a running Firefox (its handle's ``ws``),
    for the storage module: it reaches the cookies of every site without system
    access. Like Marionette's, one session at a time: not while a client holds one."""

    def __init__(self, handle: LocalHandle, timeout: float = 30.0):
        self.handle, self.timeout, self.ws, self.ids = handle, timeout, None, 0

    def __enter__(self):
        import websocket
        # Firefox refuses a handshake carrying an Origin that is not its own.
        self.ws = websocket.create_connection(self.handle.ws, timeout=self.timeout,
                                              suppress_origin=True)
        try:
            self.call("session.new", {"capabilities": {}})
        except BaseException:
            self.ws.close()
            raise
        return self

    def __exit__(self, *exc_info):
        try:
            _quietly(lambda: self.call("session.end", {}))
        finally:
            self.ws.close()

    def call(self, method: str, params: dict) -> dict:
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:  # events, if any, are not ours
            answer = json.loads(self.ws.recv())
            if answer.get("id") == self.ids:
                break
        if answer.get("type") == "error":
            raise _BidiError(f"{answer.get('error')}: {answer.get('message')}")
        return answer["result"]


def _bidi_cookie(c: dict) -> dict:
    """A BitBrowser cookie as BiDi's storage.setCookie takes it: sameSite lax unless
    said (none only for a secure cookie: Firefox refuses it otherwise); no
    expirationDate: 400 days, unless it is a session cookie."""
    secure = bool(c.get("secure"))
    same_site = str(c.get("sameSite") or "lax").lower()
    if same_site not in ("strict", "lax", "none") or (same_site == "none" and not secure):
        same_site = "lax"
    cookie = {"name": str(c.get("name")), "domain": str(c.get("domain") or ""),
              "value": {"type": "string", "value": "" if c.get("value") is None
                        else str(c["value"])},
              "path": str(c.get("path") or "/"), "secure": secure,
              "httpOnly": bool(c.get("httpOnly")), "sameSite": same_site}
    if c.get("expirationDate"):
        cookie["expiry"] = int(c["expirationDate"])
    elif not c.get("session"):
        cookie["expiry"] = int(time.time()) + 400 * 86400
    return cookie


def _bitbrowser_cookie(c: dict) -> dict:
    """A cookie storage.getCookies answers, in BitBrowser's shape. A cookie set with
    no SameSite (Firefox's "default"; Marionette calls it "None") is stored as lax,
    as it always was: what set_cookies gives it back."""
    value = c["value"]
    text = value["value"] if value["type"] == "string" \
        else base64.b64decode(value["value"]).decode("utf-8", "replace")
    return {"name": c["name"], "value": text, "domain": c["domain"], "path": c["path"],
            "secure": c["secure"], "httpOnly": c["httpOnly"], "session": "expiry" not in c,
            "expirationDate": c.get("expiry"),
            "sameSite": c["sameSite"] if c["sameSite"] in ("strict", "lax", "none") else "lax"}


def _virtual_display(fingerprint: dict, user: processes.User | None,
                     log_path: Path | None, env: dict | None = None) -> VirtualDisplay:
    """A display of the window's own, colour depth 24: its screen is the window's
    resolution (else as large as its window) in CSS pixels, so in device pixels that
    times devicePixelRatio (which the prefs apply)."""
    resolution = fingerprint.get("resolution")
    width, height = window_size({"resolution": resolution} if resolution else fingerprint)
    try:
        ratio = float(fingerprint.get("devicePixelRatio") or 1)
    except ValueError:
        ratio = 1.0
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed (Debian's xvfb), so this window has no "
                           "display to show on: install it, or set "
                           "BROWSERFARM_WINDOW_DISPLAY=headless")
    return VirtualDisplay.start(round(width * ratio), round(height * ratio), 24,
                                user=user, log_path=log_path, env=env)


def _make_over(tree: Path, user: processes.User) -> None:
    """``tree`` and everything in it become ``user``'s."""
    for path in (tree, *tree.rglob("*")):
        os.chown(path, user.uid, user.gid, follow_symlinks=False)


def _is_worker_profile(profile_dir: str | None) -> bool:
    """One of start_worker's temporary profiles (a window's, in the data dir, stays)."""
    return bool(profile_dir) and Path(profile_dir).parent == Path(tempfile.gettempdir()) \
        and Path(profile_dir).name.startswith(WORKER_PREFIX)


def _runs_profile(pid: int, profile_dir: str | None) -> bool:
    return not profile_dir or profile_dir in (processes.cmdline(pid) or ())


def _quietly(call):
    try:
        call()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass



@hookimpl
def browserfarm_register_browser_backends(register):
    register(Firefox)
