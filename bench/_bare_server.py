"""The baseline server: a bare Flask app, one POST route answering a fixed envelope,
under gunicorn with the settings of ``browserfarm.cli._serve`` (keep them in step).

    python -m bench._bare_server PORT WORKERS ENVELOPE.json
"""
from __future__ import annotations

import json
import sys

from flask import Flask, jsonify
from gunicorn.app.base import BaseApplication


def create_bare_app(envelope: dict) -> Flask:
    app = Flask("bare")
    app.json.sort_keys = False  # as browserfarm.app does

    @app.post("/browser/list")
    def browser_list():
        return jsonify(envelope)  # serialised on every request, as a real answer is

    return app


class Server(BaseApplication):
    def __init__(self, port: int, workers: int, envelope: dict):
        self.port, self.workers, self.envelope = port, workers, envelope
        super().__init__()

    def load_config(self):
        self.cfg.set("bind", f"127.0.0.1:{self.port}")
        self.cfg.set("workers", self.workers)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", 8)
        self.cfg.set("accesslog", None)
        self.cfg.set("timeout", 60)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("control_socket_disable", True)

    def load(self):
        return create_bare_app(self.envelope)


if __name__ == "__main__":
    port, workers, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(path) as handle:
        Server(port, workers, json.load(handle)).run()
