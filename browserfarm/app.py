"""The app factory: settings -> farm (database, plugins, secrets) -> API blueprints and
the dashboard."""
from __future__ import annotations

import logging

from flask import Flask, g, request
from flask_swagger_ui import get_swaggerui_blueprint
from werkzeug.exceptions import InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from browserfarm import __version__
from browserfarm.api import (agent_tunnel, agents, collections, errors, profiles, proxies,
                             v5, windows)
from browserfarm.api.base import Api
from browserfarm.api.docs import introduction
from browserfarm.api.fields import document as document_fields
from browserfarm.config import load_settings
from browserfarm.dashboard import create_blueprint as dashboard_blueprint
from browserfarm.datadir import keep_files_private
from browserfarm.errors import FarmError
from browserfarm.farm import Farm
from browserfarm.services.accounts import authenticate_bearer

log = logging.getLogger(__name__)

CLOUD_BLUEPRINTS = (windows.blp, collections.blp, proxies.blp, profiles.blp, agents.blp)
CLOUD_BLUEPRINT_NAMES = {b.name for b in CLOUD_BLUEPRINTS}


def create_app(config: dict | None = None, farm: Farm | None = None) -> Flask:
    """``config`` overrides settings (see ``browserfarm.config.Settings``)."""
    keep_files_private()  # also when a WSGI server (wsgi.py) starts the farm, not the CLI
    farm = farm or Farm.assemble(load_settings(config))
    app = Flask("browserfarm")
    app.config.update(
        MAX_CONTENT_LENGTH=farm.settings.max_body_bytes,
        API_TITLE="BrowserFarm",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"security": [{"bearerAuth": []}],
                          "info": {"description": introduction()}},
    )
    app.json.sort_keys = False
    app.extensions["browserfarm"] = farm

    @app.before_request
    def _connect():
        farm.db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc):
        if not farm.db.is_closed():
            farm.db.close()

    @app.before_request
    def _authenticate():
        if request.blueprint in CLOUD_BLUEPRINT_NAMES:
            g.caller = authenticate_bearer(request.headers.get("Authorization"))

    api = Api(app)
    document_fields(api, farm.plugins)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for blueprint in CLOUD_BLUEPRINTS:
        api.register_blueprint(blueprint)

    v5.init_app(app, api, farm.settings)
    app.register_blueprint(get_swaggerui_blueprint("/docs", "/openapi.json",
                                                   config={"app_name": "BrowserFarm"}))
    app.register_blueprint(dashboard_blueprint())  # the pages for people, at /
    app.register_blueprint(agent_tunnel.create_blueprint())  # agents' live views
    app.register_error_handler(FarmError, errors.render)
    app.register_error_handler(Exception, _internal_error)
    if farm.settings.trusted_proxies:  # behind a TLS-terminating proxy: its scheme and host
        hops = farm.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app


def _internal_error(error):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return errors.render(InternalServerError())
