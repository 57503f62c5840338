"""The Local API agent: opens and closes real browser windows on this desktop for the
account it is logged into, following the spec's "Execution Behavior".

One agent per desktop, one process. It is a client of the cloud: it reads launch
configurations and reports open status there. Flask-free: ``browserfarm.api.local``
puts HTTP in front of it. Its modules, one job each:

- ``cloud``: the login (``agent.json``) and the HTTP client to the cloud API;
- ``registry``: the open windows, in memory and on disk, under one lock; the per-window
  locks; the claim on the data dir;
- ``relays``: each window's relay, the exit-IP check and the proxy probe;
- ``launch``: starting one window's browser from its launch configuration;
- ``uploads``: the profile ZIPs and the profiles waiting for the cloud;
- ``profile_sync``: profile archives as content-addressed chunks;
- ``windows``: ``Agent``, the open/close flows and the rest of the Local API's calls.
"""
from browserfarm.agent.cloud import Cloud, Login
from browserfarm.agent.windows import Agent

__all__ = ["Agent", "Cloud", "Login"]
