"""Permission strings, role presets, and the caller a request acts as."""
from __future__ import annotations

from dataclasses import dataclass

from browserfarm.errors import Forbidden

BROWSER_LIST = "browser:list"
BROWSER_CREATE = "browser:create:single"
BROWSER_UPDATE_SINGLE = "browser:update:single"
BROWSER_UPDATE_BATCH = "browser:update:batch"
BROWSER_DELETE_RECYCLE = "browser:delete:recycle"
BROWSER_RESTORE = "browser:recycle:restore"
BROWSER_DELETE_PERMANENT = "browser:delete:permanent"
BROWSER_PROXY_REVEAL = "browser:proxy:reveal"  # see proxy passwords in answers
# See windows' stored cookies (logged-in sessions) in answers. An agent gets them
# with browser:open alone: opening a window puts them into its browser anyway.
BROWSER_COOKIE_REVEAL = "browser:cookie:reveal"
BROWSER_OPEN = "browser:open"  # what a Local API agent does: launch configs, open status
GROUP_LIST = "group:list"
GROUP_MANAGE = "group:manage"
TAG_LIST = "tag:list"
TAG_MANAGE = "tag:manage"
PROXY_LIST = "proxy:list"
PROXY_MANAGE = "proxy:manage"
PROXY_CHECK = "proxy:check"  # checks reach out through proxies to IP-check services
ACCOUNT_MANAGE = "account:manage"

ALL = (BROWSER_LIST, BROWSER_CREATE, BROWSER_UPDATE_SINGLE, BROWSER_UPDATE_BATCH,
       BROWSER_DELETE_RECYCLE, BROWSER_RESTORE, BROWSER_DELETE_PERMANENT, BROWSER_PROXY_REVEAL,
       BROWSER_COOKIE_REVEAL, BROWSER_OPEN,
       GROUP_LIST, GROUP_MANAGE, TAG_LIST, TAG_MANAGE, PROXY_LIST, PROXY_MANAGE, PROXY_CHECK,
       ACCOUNT_MANAGE)

READ_ONLY = (BROWSER_LIST, GROUP_LIST, TAG_LIST, PROXY_LIST)
MEMBER = READ_ONLY + (BROWSER_CREATE, BROWSER_UPDATE_SINGLE, BROWSER_UPDATE_BATCH,
                      BROWSER_DELETE_RECYCLE, BROWSER_RESTORE, BROWSER_PROXY_REVEAL,
                      BROWSER_COOKIE_REVEAL, PROXY_CHECK, BROWSER_OPEN)
ADMIN = MEMBER + (BROWSER_DELETE_PERMANENT, GROUP_MANAGE, TAG_MANAGE, PROXY_MANAGE)
OWNER = ALL
# A desktop's Local API agent: open windows (launch configurations hold the proxy's
# password), report their status, sync cookies and profiles, and the window calls its
# Local API forwards for scripts (BitBrowser scripts create and edit windows there).
# No proxy pool, groups, tags, permanent deletion or account: a script on the desktop
# reaches no more than windows.
# Cookies too: it puts them into the browser anyway (launch configurations, profiles),
# and BitBrowser scripts read them in /browser/detail.
AGENT = (BROWSER_LIST, BROWSER_CREATE, BROWSER_UPDATE_SINGLE, BROWSER_UPDATE_BATCH,
         BROWSER_DELETE_RECYCLE, BROWSER_OPEN, BROWSER_PROXY_REVEAL, BROWSER_COOKIE_REVEAL)

ROLES = {"owner": OWNER, "admin": ADMIN, "member": MEMBER, "read-only": READ_ONLY,
         "agent": AGENT}


def for_ids(ids, single: str, batch: str) -> str:
    """The spec's rule for batch endpoints: one window needs ``single``, more need
    ``batch`` (the same id twice is still one window)."""
    return single if len({str(i) for i in ids}) <= 1 else batch


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: an account, and what the token lets it do."""
    account_id: int
    permissions: frozenset[str]
    token_id: int | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"Permission denied: requires {permission}",
                            {"permission": permission})
