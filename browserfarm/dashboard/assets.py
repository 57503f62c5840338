"""The npm packages the dashboard's pages load, served from the folder
scripts/ensure-npm-packages fetches them into (``Settings.dashboard_assets_dir``):
nothing loads from the internet, and there is no build step."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, send_from_directory

# URL name -> the package folder (in node_modules) whose files are served.
PACKAGES = {
    "htmx": "htmx.org/dist",
    "novnc": "@novnc/novnc",  # its ES modules (core/rfb.js imports the rest), as shipped
}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/assets/npm/<name>/<path:filename>", "npm", _npm_file)


def _npm_file(name: str, filename: str):
    if name not in PACKAGES:
        abort(404)
    farm = current_app.extensions["browserfarm"]
    # send_from_directory refuses paths that leave the folder.
    return send_from_directory(farm.settings.dashboard_assets_dir / PACKAGES[name], filename,
                               max_age=3600)
