"""``/browser/profile/*``: profile archives for agents — each account's chunks, stored
once per account by their SHA-256, and the manifest of each window's latest archive."""
from __future__ import annotations

from flask import Response, g, request
from flask.views import MethodView
from marshmallow import INCLUDE, Schema, fields, validate

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import FlexibleInt, args, doc, window_ref_args
from browserfarm.services.profiles import SHA256, ProfileStore

blp = Blueprint("profiles", __name__, description="Profile archives (for agents)")


def store() -> ProfileStore:
    return ProfileStore(farm(), g.caller)


EXAMPLE_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _sha256(**kwargs):
    # The store checks hashes itself (they name files): the document shows its rule.
    return fields.String(metadata={"pattern": SHA256.pattern, **doc(
        "A chunk's SHA-256, lowercase hex", EXAMPLE_SHA256)}, **kwargs)


MissingArgs = args("ChunkMissingArgs", {"hashes": fields.List(
    _sha256(), required=True, validate=validate.Length(max=100000),
    metadata=doc("Chunks' SHA-256 to look for", [EXAMPLE_SHA256]))})
ChunkArgs = args("ChunkArgs", {"sha256": _sha256(required=True)})
CommitArgs = window_ref_args(
    "ArchiveCommitArgs",
    manifest=fields.Dict(keys=fields.String(), values=fields.Nested(
        args("ArchiveFile", {"size": FlexibleInt(metadata=doc("The file's size, bytes", 0)),
                             "chunks": fields.List(_sha256(), metadata=doc(
                                 "Its chunks' SHA-256, in order", [EXAMPLE_SHA256]))}),
        unknown=INCLUDE),
        required=True, metadata=doc("The profile's data files: path -> {size, chunks: "
                                    "[sha256, ...]}", {"places.sqlite": {
                                        "size": 0, "chunks": [EXAMPLE_SHA256]}})),
    agent=fields.String(load_default="", validate=validate.Length(max=200),
                        metadata=doc("The committing agent's name", "desk 1")))
LatestArgs = window_ref_args("ArchiveLatestArgs")


@blp.route("/browser/profile/missing")
class Missing(MethodView):
    @blp.arguments(MissingArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"missing": fields.List(fields.String(), metadata=doc(
            "Those of the hashes the account has not stored", [EXAMPLE_SHA256]))},
        name="ChunkMissing"), "MissingEnvelope"))
    def post(self, data):
        """Which of these chunks the account has not stored (browser:open)."""
        return success({"missing": store().missing(data["hashes"])})


@blp.route("/browser/profile/chunk")
class Chunk(MethodView):
    @blp.arguments(ChunkArgs, location="query")
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"sha256": fields.String(metadata=doc("The chunk's SHA-256", EXAMPLE_SHA256)),
         "size": fields.Integer(metadata=doc("Its size, bytes", 0))}, name="ChunkStored"),
        "ChunkEnvelope"))
    def post(self, args):
        """Store one chunk of the account: the raw bytes as the body (browser:open);
        code 211 naming ``body`` when the account's profile quota is full."""
        return success(store().put_chunk(args["sha256"], request.get_data()))


@blp.route("/browser/profile/chunk/get")
class ChunkGet(MethodView):
    @blp.arguments(ChunkArgs, location="query")
    @blp.response(200, {"format": "binary", "type": "string"},
                  content_type="application/octet-stream")
    def post(self, args):
        """One of the account's chunks (browser:open)."""
        return Response(store().get_chunk(args["sha256"]),
                        mimetype="application/octet-stream")


@blp.route("/browser/profile/commit")
class Commit(MethodView):
    @blp.arguments(CommitArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"id": fields.Integer(metadata=doc("The archive's ID", 1)),
         "files": fields.Integer(metadata=doc("Files in it", 1)),
         "size": fields.Integer(metadata=doc("Their size in all, bytes", 0))},
        name="ArchiveCommitted"), "CommitEnvelope"))
    def post(self, data):
        """Record an archive whose chunks the account stored (browser:open); it
        replaces the window's older one. Its files are the profile's data files only
        (code 211 naming the field otherwise)."""
        return success(store().commit(data, data["manifest"], data["agent"]))


@blp.route("/browser/profile/latest")
class Latest(MethodView):
    @blp.arguments(LatestArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"id": fields.Integer(metadata=doc("The archive's ID", 1)),
         "manifest": fields.Dict(allow_none=True, metadata=doc(
             "path -> {size, chunks}; null: the window has no archive",
             {"places.sqlite": {"size": 0, "chunks": [EXAMPLE_SHA256]}})),
         "size": fields.Integer(metadata=doc("Its size in all, bytes", 0))},
        name="ArchiveLatest"), "LatestEnvelope"))
    def post(self, data):
        """The window's latest archive manifest, or null (browser:open)."""
        return success(store().latest(data))
