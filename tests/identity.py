"""What a page sees: a loopback page that runs open-source detectors from npm
(FingerprintJS and BotD, fetched into .cache/ by scripts/ensure-npm-packages) and reports
what the page, a dedicated worker and the HTTP request headers show.

Open a window at ``page.url_for(key)``; the page POSTs its report back, and
``page.report(key)`` returns it (the n-th for the n-th load under that key). Nothing
drives the page: it runs as for any visitor.

Used as a fixture: ``identity_page`` (tests/conftest.py loads this module as a plugin).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.servers import HTTPService

DETECTORS = Path(__file__).resolve().parent.parent / ".cache/detectors/node_modules/@fingerprintjs"
SCRIPTS = {"/fp.esm.js": DETECTORS / "fingerprintjs/dist/fp.esm.js",
           "/botd.esm.js": DETECTORS / "botd/dist/botd.esm.js"}
HEADERS = ("User-Agent", "Accept-Language", "DNT", "Sec-GPC")

# What both the page and its worker read (the worker has no DOM: no screen, no canvas
# element; an OffscreenCanvas for WebGL).
COMMON_JS = r"""
function navigatorReport() {
  const n = navigator;
  return {userAgent: n.userAgent, platform: n.platform, oscpu: n.oscpu ?? null,
          language: n.language, languages: [...n.languages],
          hardwareConcurrency: n.hardwareConcurrency,
          deviceMemory: n.deviceMemory ?? null,
          timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
          timezoneOffset: new Date(2024, 0, 15).getTimezoneOffset()};
}
function webglReport(canvas) {
  const gl = canvas.getContext("webgl");
  if (!gl) return null;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  return {vendor: gl.getParameter(gl.VENDOR), renderer: gl.getParameter(gl.RENDERER),
          unmaskedVendor: info ? gl.getParameter(info.UNMASKED_VENDOR_WEBGL) : null,
          unmaskedRenderer: info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : null};
}
async function sha256(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("");
}
"""

WORKER_JS = COMMON_JS + r"""
onmessage = () => postMessage({...navigatorReport(),
                               webgl: webglReport(new OffscreenCanvas(16, 16))});
"""

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>identity</title></head>
<body><p id="text" style="font: 16px serif; display: inline">Identity &#9786; page</p>
<script>
""" + COMMON_JS + r"""
async function canvasHash() {
  const canvas = document.createElement("canvas");
  canvas.width = 240; canvas.height = 60;
  const c = canvas.getContext("2d");
  c.fillStyle = "#f60"; c.fillRect(100, 1, 62, 20);
  c.fillStyle = "#069"; c.font = "14px Arial"; c.fillText("Cwm fjordbank glyphs vext quiz", 2, 15);
  c.fillStyle = "rgba(102, 204, 0, 0.7)"; c.font = "18px serif";
  c.fillText("Cwm fjordbank, Sphinx of black quartz", 4, 45);  // no emoji: its font
  // fallback is looked up asynchronously, so a first drawing may lack it
  const data = c.getImageData(0, 0, canvas.width, canvas.height).data;
  return sha256(data);
}
async function webglImageHash() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 32;
  const gl = canvas.getContext("webgl", {preserveDrawingBuffer: true});
  if (!gl) return null;
  // two colours: Firefox adds no noise to an image of one colour
  gl.clearColor(0.2, 0.4, 0.6, 1); gl.clear(gl.COLOR_BUFFER_BIT);
  gl.enable(gl.SCISSOR_TEST); gl.scissor(4, 4, 12, 20);
  gl.clearColor(0.9, 0.5, 0.1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
  const pixels = new Uint8Array(32 * 32 * 4);
  gl.readPixels(0, 0, 32, 32, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
  return sha256(pixels);
}
async function audioHash() {
  const context = new OfflineAudioContext(1, 5000, 44100);
  const oscillator = context.createOscillator();
  oscillator.type = "triangle"; oscillator.frequency.value = 10000;
  const compressor = context.createDynamicsCompressor();
  oscillator.connect(compressor); compressor.connect(context.destination);
  oscillator.start(0);
  const samples = (await context.startRendering()).getChannelData(0);
  return sha256(samples.slice(4500).buffer);
}
function workerReport() {
  return new Promise((resolve, reject) => {
    const worker = new Worker("/worker.js");
    worker.onmessage = event => { resolve(event.data); worker.terminate(); };
    worker.onerror = event => reject(new Error("worker: " + event.message));
    worker.postMessage("report");
  });
}
</script>
<script type="module">
import FingerprintJS from "/fp.esm.js";
import {load as loadBotd} from "/botd.esm.js";

const report = {errors: []};
async function step(name, fn) {
  try { report[name] = await fn(); } catch (e) { report.errors.push(`${name}: ${e}`); }
}
await step("page", async () => ({
  ...navigatorReport(), webdriver: navigator.webdriver,
  doNotTrack: navigator.doNotTrack,
  screen: {width: screen.width, height: screen.height, availWidth: screen.availWidth,
           availHeight: screen.availHeight, colorDepth: screen.colorDepth,
           pixelDepth: screen.pixelDepth},
  devicePixelRatio: window.devicePixelRatio,
  window: {innerWidth: innerWidth, innerHeight: innerHeight,
           outerWidth: outerWidth, outerHeight: outerHeight},
  webgl: webglReport(document.createElement("canvas")),
}));
await step("canvas", canvasHash);
await step("canvasAgain", canvasHash);  // the same in one page (the noise is keyed)
await step("webglImage", webglImageHash);
await step("audio", audioHash);
await step("clientRect", async () => {
  const r = document.getElementById("text").getBoundingClientRect();
  return [r.x, r.y, r.width, r.height];
});
await step("worker", workerReport);
await step("botd", async () => (await (await loadBotd({monitoring: false})).detect()));
await step("fingerprintjs", async () => {
  const result = await (await FingerprintJS.load({monitoring: false})).get();
  const c = result.components;
  return {visitorId: result.visitorId, fonts: c.fonts.value ?? null,
          canvas: c.canvas.value ?? null,
          webGlBasics: c.webGlBasics.value ?? null};
});
await fetch("/report" + location.search, {method: "POST", body: JSON.stringify(report),
                                          headers: {"Content-Type": "application/json"}});
document.title = "reported";
</script></body></html>
"""


class IdentityPage(HTTPService):
    """``GET /?w=key``: the page; ``POST /report?w=key``: its report, kept with the
    headers its page request came with."""

    def __init__(self):
        self._reports: dict[str, list[dict]] = {}
        self._headers: dict[str, list[dict]] = {}
        self._changed = threading.Condition()
        super().__init__()

    def url_for(self, key: str) -> str:
        return f"{self.url}/?w={key}"

    def respond(self, h):
        key = parse_qs(urlsplit(h.path).query).get("w", [""])[0]
        if h.command == "GET" and h.route == "/":
            with self._changed:
                self._headers.setdefault(key, []).append(
                    {name: h.headers.get(name) for name in HEADERS})
            h.reply(200, PAGE.encode(), "text/html; charset=utf-8")
        elif h.command == "GET" and h.route == "/worker.js":
            h.reply(200, WORKER_JS.encode(), "text/javascript")
        elif h.command == "GET" and h.route in SCRIPTS:
            h.reply(200, SCRIPTS[h.route].read_bytes(), "text/javascript")
        elif h.command == "POST" and h.route == "/report":
            report = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
            with self._changed:
                loads = self._reports.setdefault(key, [])
                report["headers"] = self._headers[key][len(loads)]
                loads.append(report)
                self._changed.notify_all()
            h.reply(204)
        else:
            h.reply(404, b"not found")

    def report(self, key: str, n: int = 1, timeout: float = 90.0) -> dict:
        """The report of the n-th load of ``url_for(key)``, once it has come."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._reports.get(key, [])) >= n,
                                          timeout):
                pytest.fail(f"no report {n} for {key!r} from the identity page in "
                            f"{timeout} s (seen: {len(self._reports.get(key, []))})")
            return self._reports[key][n - 1]


@pytest.fixture
def identity_page():
    missing = [str(path) for path in SCRIPTS.values() if not path.is_file()]
    if missing:
        pytest.fail(f"the detectors are not fetched ({', '.join(missing)}): `make test` "
                    "fetches them (scripts/ensure-npm-packages)", pytrace=False)
    page = IdentityPage()
    yield page
    page.stop()
