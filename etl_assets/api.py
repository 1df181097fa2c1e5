"""`etl-assets api`: a read-only HTTP API over the file history.

    GET /files?table=<db>.<table>[&landed_since=<ISO time>][&limit=N][&cursor=...]
        -> {"files": [...], "next": <cursor or null>}
    GET /health -> {"ok": true, "user": <database role>, "read_only": true}

Served by the standard library's threading HTTP server; the database session is read-only and
runs as a role that may only read the ledger.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from etl_assets.history import PAGE, BadRequest, file_history
from etl_assets.resources.warehouse import WarehouseResource


def serve(warehouse: WarehouseResource, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound to (host, port); call `serve_forever()` on it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            url = urlparse(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/files":
                    self._reply(HTTPStatus.OK, _files(warehouse, params))
                elif url.path == "/health":
                    self._reply(HTTPStatus.OK, _health(warehouse))
                else:
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
            except BadRequest as error:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})

        def do_POST(self) -> None:  # noqa: N802
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "read-only API: GET only"})

        do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

        def _reply(self, status: HTTPStatus, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            """Silenced: a line per request on stderr helps no one; the ledger is the log."""

    return ThreadingHTTPServer((host, port), Handler)


def _files(warehouse: WarehouseResource, params: dict[str, str]) -> dict:
    if "table" not in params:
        raise BadRequest("table is required: /files?table=<db>.<table>")
    try:
        limit = int(params.get("limit", PAGE))
    except ValueError:
        raise BadRequest("limit must be a whole number") from None
    files, token = file_history(
        warehouse, params["table"], params.get("landed_since"), params.get("cursor"), limit
    )
    return {"files": files, "next": token}


def _health(warehouse: WarehouseResource) -> dict:
    ((user,),) = warehouse.query("select current_user")
    read_only = None
    if not warehouse.is_redshift:
        ((setting,),) = warehouse.query("select current_setting('transaction_read_only')")
        read_only = setting == "on"
    return {"ok": True, "user": user, "read_only": read_only}
