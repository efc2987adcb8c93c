"""Upload routes of the simulator (protocol §5.5): token, apply, upload, commit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from . import imagex
from .png import image_dimensions
from .settings import SimSettings
from .sites import SITES
from .state import SimState, Upload
from .wire import Ctx, Reply, json_response

SERVICE_ID = "tb4s082cfz"


class UploadRoutes:
    """Mixin of :class:`SimulatorApp` for the upload endpoints."""

    state: SimState
    settings: SimSettings
    reject: Callable[..., Reply]
    body_json: Callable[[Ctx], Any]
    guarded: Callable[..., Response]

    def upload_token(self, ctx: Ctx) -> Reply:
        body = self.body_json(ctx)
        if not isinstance(body, dict) or body.get("scene") not in (1, 2):
            return self.reject(ctx, "1000", "invalid parameter", "scene must be 1|2")
        state = self.state
        access_key = "AKTP" + state.hex_token(28).upper()
        secret = base64.b64encode(os.urandom(30)).decode("ascii")
        token = "STS2" + state.hex_token(60)
        now = int(state.clock.now())
        with state.lock:
            state.upload_tokens[access_key] = (secret, token)
        site = SITES[self.settings.site]
        data: dict[str, Any] = {
            "access_key_id": access_key,
            "secret_access_key": secret,
            "session_token": token,
            "service_id": SERVICE_ID,
            "space_name": "dreamina",
            "current_time": now,
            "expired_time": now + 3600,
        }
        if site.dreamina:  # Dreamina names its service in space_name (§7)
            del data["service_id"]
            data["space_name"] = site.service_id
        return Reply(data=data)

    def imagex(self, request: Request) -> Response:
        action = request.args.get("Action", "")
        endpoint = {
            "ApplyImageUpload": "imagex_apply",
            "CommitImageUpload": "imagex_commit",
        }.get(action)
        if endpoint is None:
            self.state.count_call("unknown")
            return self.imagex_error(action, "InvalidAction", f"unknown {action}", 400)
        method = "GET" if endpoint == "imagex_apply" else "POST"
        if request.method != method:
            return self.imagex_error(action, "InvalidMethod", "wrong method", 405)
        handler = self.imagex_apply if method == "GET" else self.imagex_commit
        return self.guarded(request, endpoint, handler)

    def imagex_meta(self, action: str) -> dict[str, Any]:
        return {
            "RequestId": self.state.hex_token(32).upper(),
            "Action": action,
            "Version": "2018-08-01",
            "Service": "imagex",
            "Region": SITES[self.settings.site].imagex_region,
        }

    def imagex_error(
        self, action: str, code: str, message: str, status: int
    ) -> Response:
        meta = self.imagex_meta(action)
        meta["Error"] = {"CodeN": 100000 + status, "Code": code, "Message": message}
        return json_response({"ResponseMetadata": meta}, status)

    def imagex_auth(self, request: Request, endpoint: str) -> str | None:
        """Verify SigV4 + token; return the error message or None."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            access_key = imagex.parse_authorization(
                headers.get("authorization", "")
            ).access_key
        except ValueError as exc:
            reason = f"authorization: {exc}"
        else:
            reason = self._imagex_reason(request, headers, access_key)
        if reason:
            self.state.record_violation(endpoint, reason, "")
        return reason

    def _imagex_reason(
        self, request: Request, headers: dict[str, str], access_key: str
    ) -> str | None:
        with self.state.lock:
            creds = self.state.upload_tokens.get(access_key)
        if creds is None:
            return f"unknown access key {access_key}"
        secret, token = creds
        if headers.get("x-amz-security-token") != token:
            return "x-amz-security-token does not match the access key"
        if self.settings.strict:
            try:
                stamp = datetime.strptime(
                    headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ"
                )
            except ValueError:
                return "x-amz-date missing or malformed"
            if abs(stamp.replace(tzinfo=UTC).timestamp() - time.time()) > 900:
                return "x-amz-date too far from now"
        raw_query = request.environ.get("QUERY_STRING", "")
        return imagex.verify(
            request.method,
            raw_query,
            headers,
            request.get_data(),
            secret,
            region=SITES[self.settings.site].imagex_region,
        )

    def imagex_apply(self, request: Request) -> Response:
        action = "ApplyImageUpload"
        reason = self.imagex_auth(request, "imagex_apply")
        if reason:
            return self.imagex_error(action, "SignatureDoesNotMatch", reason, 401)
        size = request.args.get("FileSize", "")
        site = SITES[self.settings.site]
        if request.args.get("ServiceId") != site.service_id or not size.isdigit():
            return self.imagex_error(
                action, "InvalidParameter", "ServiceId/FileSize", 400
            )
        state = self.state
        store_uri = f"{site.store_prefix}{site.service_id}/{state.hex_token(32)}"
        upload = Upload(
            store_uri=store_uri,
            auth="SpaceKey/" + state.hex_token(40),
            session_key=state.hex_token(64),
            file_size=int(size),
        )
        with state.lock:
            state.uploads[store_uri] = upload
            state.uploads[upload.session_key] = upload
        return json_response(
            {
                "ResponseMetadata": self.imagex_meta(action),
                "Result": {
                    "UploadAddress": {
                        "StoreInfos": [{"StoreUri": store_uri, "Auth": upload.auth}],
                        "UploadHosts": [request.host],
                        "SessionKey": upload.session_key,
                    }
                },
            }
        )

    def imagex_upload(self, request: Request) -> Response:
        store_uri = request.path[len("/upload/v1/") :]
        with self.state.lock:
            upload = self.state.uploads.get(store_uri)
        data = request.get_data()
        error = None
        if request.method != "POST":
            error = (405, "method not allowed")
        elif upload is None or upload.store_uri != store_uri:
            error = (404, "unknown StoreUri")
        elif request.headers.get("Authorization") != upload.auth:
            error = (401, "Authorization does not match the StoreInfos Auth")
        elif not imagex.crc32_matches(request.headers.get("Content-CRC32", ""), data):
            error = (400, "Content-CRC32 missing or wrong")
        elif len(data) != upload.file_size:
            error = (400, f"size {len(data)} != FileSize {upload.file_size}")
        if error:
            self.state.record_rejection("imagex_upload", str(error[0]), error[1])
            return json_response(
                {
                    "code": 4000 + error[0] % 100,
                    "apiversion": "v1",
                    "message": error[1],
                    "data": {},
                },
                error[0],
            )
        upload.data = data
        return json_response(
            {
                "code": 2000,
                "apiversion": "v1",
                "message": "Success",
                "data": {"crc32": imagex.crc32_hex(data)},
            }
        )

    def imagex_commit(self, request: Request) -> Response:
        action = "CommitImageUpload"
        reason = self.imagex_auth(request, "imagex_commit")
        if reason:
            return self.imagex_error(action, "SignatureDoesNotMatch", reason, 401)
        try:
            session_key = json.loads(request.get_data()).get("SessionKey")
        except (ValueError, AttributeError):
            session_key = None
        with self.state.lock:
            upload = self.state.uploads.get(session_key or "")
        if upload is None or upload.session_key != session_key:
            return self.imagex_error(action, "InvalidParameter", "SessionKey", 400)
        meta = self.imagex_meta(action)
        if upload.data is None:
            results = [{"Uri": upload.store_uri, "UriStatus": 2001}]
            return json_response(
                {
                    "ResponseMetadata": meta,
                    "Result": {
                        "RequestId": meta["RequestId"],
                        "Results": results,
                        "PluginResult": [],
                    },
                }
            )
        with self.state.lock:
            upload.committed = True
            self.state.committed_uris.add(upload.store_uri)
        width, height, fmt = image_dimensions(upload.data)
        plugin = {
            "FileName": upload.store_uri.rsplit("/", 1)[-1],
            "SourceUri": upload.store_uri,
            "ImageUri": upload.store_uri,
            "ImageWidth": width,
            "ImageHeight": height,
            "ImageMd5": hashlib.md5(upload.data).hexdigest(),
            "ImageFormat": fmt,
            "ImageSize": len(upload.data),
            "FrameCnt": 1,
        }
        return json_response(
            {
                "ResponseMetadata": meta,
                "Result": {
                    "RequestId": meta["RequestId"],
                    "Results": [{"Uri": upload.store_uri, "UriStatus": 2000}],
                    "PluginResult": [plugin],
                },
            }
        )
