"""`etl-assets api`: a read-only HTTP API over the file history.

    GET /files?table=<db>.<table>[&landed_since=<ISO time>][&limit=N][&cursor=...]
        -> {"files": [...], "next": <cursor or null>}
    GET /health -> {"ok": true, "user": <database role>, "read_only": true}

Served by the standard library's threading HTTP server; the database session is read-only and
runs as a role that may only read the ledger.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg2

from etl_assets.history import PAGE, BadRequest, file_history
from etl_assets.resources.warehouse import WarehouseResource


def serve(warehouse: WarehouseResource, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound to (host, port); call `serve_forever()` on it."""

    class Handler(BaseHTTPRequestHandler):
        server_version, sys_version = "etl-assets", ""  # no Python version in `Server`
        timeout = 30  # a client that sends nothing does not hold a thread for ever

        def version_string(self) -> str:
            return self.server_version

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self._reply(*_answer(warehouse, self.path))

        def do_POST(self) -> None:  # noqa: N802
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "read-only API: GET only"})

        do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

        def send_error(self, code: int, message: str | None = None, explain: str | None = None):
            """The standard library's own refusals (a request line over 64 KB, a malformed
            request, an unknown method) in JSON like every other answer."""
            self.close_connection = True
            self._reply(HTTPStatus(code), {"error": message or HTTPStatus(code).phrase})

        def _reply(self, status: HTTPStatus, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Content-Type-Options", "nosniff")  # it echoes what it refuses
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            """Silenced: a line per request on stderr helps no one; the ledger is the log."""

    return ThreadingHTTPServer((host, port), Handler)


def _answer(warehouse: WarehouseResource, path: str) -> tuple[HTTPStatus, dict]:
    url = urlparse(path)
    params = {k: v[-1] for k, v in parse_qs(url.query).items()}
    try:
        if url.path == "/files":
            return HTTPStatus.OK, _files(warehouse, params)
        if url.path == "/health":
            return HTTPStatus.OK, _health(warehouse)
        return HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"}
    except BadRequest as error:
        return HTTPStatus.BAD_REQUEST, {"error": str(error)}
    except psycopg2.OperationalError:  # unreachable, out of connections, timed out
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the warehouse did not answer; retry"}
    except Exception as error:  # noqa: BLE001 - one request's failure, not the server's
        print(f"etl-assets api: {type(error).__name__} on {url.path}", file=sys.stderr)
        return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}


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
