"""What ``/docs`` says before the endpoints: the introduction (OpenAPI
``info.description``, Markdown the docs UI renders). How to get a token, how each API
authenticates, the Local API's calls and how to attach Selenium or Puppeteer to a
window it opened. The Local API's forwarded calls are listed from ``FORWARDED``, so the
page names what the agent really forwards."""
from __future__ import annotations

from browserfarm.api.local import FORWARDED

LOCAL_PORT = 54345  # BROWSERFARM_LOCAL_PORT's default

_TOKENS = """\
[Back to the dashboard](/) · [The OpenAPI document](/openapi.json)

This farm has three APIs: the **window API** (BitBrowser's dialect, below), the
**worker API v5** (BrowserStack's REST API v5 for browser workers, under `/5`, below
too) and the **Local API**, served by an agent on the desktop where windows open (not
on this server: described here). The [dashboard](/) does everything by hand, signed in
with a token.

## Getting a token

* `make run` (or `browserfarm up`) creates an owner account on first start and writes
  `var/credentials.json` (mode 0600): `token` (a bearer token with every permission),
  `v5_username` and `v5_access_key` (the v5 credentials), and, for the agent it starts,
  `local_url` and `local_token`. Secrets are shown once: the database keeps only their
  SHA-256; if you lose the file, the next `make run` issues new ones.
* More tokens, each with a role or a list of permissions (printed once):

  ```sh
  browserfarm account create "Team A"       # prints the owner token and v5 key
  browserfarm token create --account "Team A" --role read-only --name dashboard
  browserfarm token create --account "Team A" --permission browser:list
  browserfarm token list --account "Team A"; browserfarm token revoke 7
  ```

  Roles: `owner` (everything), `admin` (windows, groups, tags, the pool), `member`
  (create, edit, recycle, open, see proxy passwords and cookies; reads groups, tags
  and the pool), `read-only` (lists only; no proxy passwords, no cookies), `agent` (a
  desktop agent's login: what its Local API forwards, and opening windows).
* **The dashboard** at [/](/) signs in with such a token and can do exactly what the
  token may do through the API.

## Authentication, API by API

| API | where | how |
|---|---|---|
| window API | this server: `/browser/*`, `/group/*`, `/tag/*`, `/proxy/*`, `/agent/*` | `Authorization: Bearer <token>` on every call (the **Authorize** button, *bearerAuth*); every call is `POST` with a JSON body; every answer is `{"code": 0, "msg": "success", "data": ...}`, errors too (`code` 211 for bad input, `data.field` naming the field; 401, 403 with `data.permission`, 404) |
| worker API v5 | this server: `/5/*` | HTTP Basic: `v5_username` as user, `v5_access_key` as password (*basicAuth*); errors are v5's `{"message", "errors"}` |
| Local API | the agent: `http://127.0.0.1:{port}` on the desktop | header `X-Cos-Local-Token: <local_token>` (`browserfarm local info` shows it); loopback only: a `Host` that is not a loopback name, or a request from a web page (an `Origin` header), is refused (403). No bearer token: the agent calls the cloud with its own login (the `agent` role) |

```sh
TOKEN=$(python3 -c 'import json; print(json.load(open("var/credentials.json"))["token"])')
curl -s http://127.0.0.1:8000/browser/list -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json' -d '{"page": 0, "pageSize": 20}'
U="$(jq -r .v5_username var/credentials.json):$(jq -r .v5_access_key var/credentials.json)"
curl -s -u "$U" http://127.0.0.1:8000/5/status
```
"""

_LOCAL = """\
## The Local API (the desktop agent)

`make run` starts an agent next to the farm; on another desktop, log one in with a
token of the `agent` role and serve it:

```sh
browserfarm token create --account ACCOUNT --role agent --name "desk 1"   # on the cloud
browserfarm login --server http://cloud:8000 --token-file token.txt
browserfarm local          # serves 127.0.0.1:{port} (BROWSERFARM_LOCAL_PORT)
browserfarm local info     # {"local_url": ..., "local_token": ...}
```

Every call is `POST` to `http://127.0.0.1:{port}` with `X-Cos-Local-Token` and a JSON
body; answers are the window API's `{code, msg, data}`. A window is named by `uuid` (or
`id`, `browserId`; `open` also takes `config_uuid`, `browserUuid`, `browser_uuid`,
`browser_id`), one window per call.

```sh
L=http://127.0.0.1:{port}
LT=$(python3 -c 'import json; print(json.load(open("var/credentials.json"))["local_token"])')
lapi() { curl -s "$L$1" -H "X-Cos-Local-Token: $LT" -H 'Content-Type: application/json' -d "$2"; }
```

| call | what it does | example |
|---|---|---|
| `/browser/open` | starts the window's browser with its fingerprint, through a local relay to its proxy; answers `pid`, `alreadyStarted`, `profileDir`, `configPath`, `openedStatus`, `warnings`, and the automation addresses `marionettePort` (Marionette, for Selenium) and `ws` (WebDriver BiDi, for Puppeteer) | `lapi /browser/open '{"uuid": "<uuid>"}'` |
| `/browser/close` | quits the browser, zips the profile (`close.profileZipPath`) and syncs it to the cloud | `lapi /browser/close '{"uuid": "<uuid>"}'` |
| `/browser/pids` | the windows running here: uuid to pid | `lapi /browser/pids` |
| `/browser/ports` | uuid to `marionettePort`, `ws` and `relayPort` | `lapi /browser/ports` |
| `/browser/cookies` | a running window's cookies | `lapi /browser/cookies '{"uuid": "<uuid>"}'` |
| `/browser/close/all` | closes every window open here | `lapi /browser/close/all` |
| `/browser/closing/reset` | un-sticks a window left "opening" or "closing" | `lapi /browser/closing/reset '{"uuid": "<uuid>"}'` |

Forwarded to the cloud with the agent's login (so only what its token may do), the
answer unchanged; every other path is 404:

{forwarded}

```sh
lapi /browser/list '{"page": 0, "pageSize": 10}'
```

## Attaching Selenium or Puppeteer to an opened window

Open a window through the Local API and take the automation addresses from its
answer (`data.marionettePort`, `data.ws`, e.g. `ws://127.0.0.1:40123/session`). They
listen on 127.0.0.1 of the desktop. A client on `ws` must not send an `Origin` header
(the browser refuses those, so web pages can't attach; Selenium and Puppeteer send none).

**Selenium (Python)**: geckodriver attaches to the running browser's Marionette port
(`--connect-existing`); Selenium then talks to geckodriver:

```python
import json, subprocess, urllib.request
from selenium import webdriver

def local(path, body):
    request = urllib.request.Request(
        "http://127.0.0.1:{port}" + path, data=json.dumps(body).encode(),
        headers={"X-Cos-Local-Token": LOCAL_TOKEN, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request))["data"]

opened = local("/browser/open", {"uuid": WINDOW_UUID})
geckodriver = subprocess.Popen(["geckodriver", "--port", "4444", "--connect-existing",
                                "--marionette-port", str(opened["marionettePort"])])
driver = webdriver.Remote("http://127.0.0.1:4444", options=webdriver.FirefoxOptions())
driver.get("https://example.org/")
print(driver.title)
driver.quit()                 # ends the session; the window stays open
geckodriver.terminate()
local("/browser/close", {"uuid": WINDOW_UUID})   # syncs the profile
```

Without geckodriver, Mozilla's Marionette client (`marionette_driver`, what the farm
itself uses) attaches directly: `Marionette(host="127.0.0.1",
port=opened["marionettePort"]).start_session()`.

**Puppeteer (Node), over WebDriver BiDi**:

```js
import puppeteer from "puppeteer-core";

const local = async (path, body) => (await (await fetch(`http://127.0.0.1:{port}${path}`, {
  method: "POST", body: JSON.stringify(body),
  headers: {"X-Cos-Local-Token": LOCAL_TOKEN, "Content-Type": "application/json"},
})).json()).data;

const opened = await local("/browser/open", {uuid: WINDOW_UUID});
const browser = await puppeteer.connect({browserWSEndpoint: opened.ws,
                                         protocol: "webDriverBiDi"});
const [page] = await browser.pages();
await page.goto("https://example.org/");
console.log(await page.title());
await browser.disconnect();   // the window stays open
await local("/browser/close", {uuid: WINDOW_UUID});
```

Any WebDriver BiDi client works the same way: connect to `ws` and send
`session.new`.
"""


def introduction() -> str:
    """The Markdown shown at the top of ``/docs``."""
    forwarded = "\n".join(f"* `{path}`" for path in FORWARDED)
    text = _TOKENS + "\n" + _LOCAL.replace("{forwarded}", forwarded)
    return text.replace("{port}", str(LOCAL_PORT))
