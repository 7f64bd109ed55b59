#!/usr/bin/python3
"""TEST IMAGE ONLY: a stand-in for the ``odoo`` server, where the host depends on it.

Runs as whatever user the container gives it (the recorded ``user: odoo``, uid 101 in
the test image). ``odoo -c CONF [-i MODULES --stop-after-init --no-http]`` like Odoo:

* reads the odoo.conf the container's entrypoint wrote (``[options]``); refuses to start
  without ``admin_passwd`` as a passlib pbkdf2-sha512 hash (Odoo would fall back to
  ``admin``) or without ``db_password``;
* connects to PostgreSQL with ``db_host``/``db_port``/``db_user``/``db_password``/``db_name``
  (psycopg2, as Odoo); ``-i`` records the modules and the ``admin`` user (password
  ``admin``, pbkdf2-sha512 hashed, as a fresh Odoo database has) and stops;
* logs to ``logfile`` in Odoo's format (``%(asctime)s %(pid)s %(levelname)s %(dbname)s
  %(name)s: %(message)s``), including ``Login failed for db:D login:L from IP`` where IP is
  the last ``X-Forwarded-For`` hop when ``proxy_mode`` is on (werkzeug's ProxyFix, as Odoo);
* serves ``http_port``: ``GET /web/health`` ({"status": "pass"}), ``GET|POST /web/login``
  (checked against the database), ``POST /jsonrpc`` service ``db`` (the master password is
  verified against ``admin_passwd`` with passlib, as Odoo's ``check_super``; ``list`` is
  refused when ``list_db = False``), and ``gevent_port``: ``/websocket`` (a WebSocket
  handshake);
* writes its filestore under ``data_dir``; stops gracefully on SIGTERM.
"""

import base64
import configparser
import hashlib
import http.server
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse

import psycopg2
from passlib.context import CryptContext
from passlib.hash import pbkdf2_sha512

CRYPT = CryptContext(["pbkdf2_sha512", "plaintext"], deprecated=["plaintext"])
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def parse_args(argv):
    conf, install, stop_after_init, no_http = None, None, False, False
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--config"):
            conf = next(args)
        elif arg in ("-i", "--init"):
            install = next(args)
        elif arg == "--stop-after-init":
            stop_after_init = True
        elif arg == "--no-http":
            no_http = True
        else:
            sys.exit(f"odoo stand-in: unknown argument {arg!r}")
    if not conf:
        sys.exit("odoo stand-in: -c CONF is required")
    return conf, install, stop_after_init, no_http


def load_options(path):
    parser = configparser.ConfigParser(interpolation=None)
    with open(path) as handle:
        parser.read_file(handle)
    options = dict(parser["options"])
    admin = options.get("admin_passwd", "")
    if not admin.startswith("$pbkdf2-sha512$") or not pbkdf2_sha512.identify(admin):
        sys.exit("odoo stand-in: admin_passwd is not a pbkdf2-sha512 hash")
    if not options.get("db_password"):
        sys.exit("odoo stand-in: no db_password")
    return options


def setup_logging(options):
    db = options.get("db_name", "?")
    handler = logging.FileHandler(options["logfile"]) if options.get("logfile") else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(process)s %(levelname)s {db} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def connect(options):
    return psycopg2.connect(host=options["db_host"], port=int(options.get("db_port", 5432)),
                            user=options["db_user"], password=options["db_password"],
                            dbname=options["db_name"], connect_timeout=5)


def connect_retrying(options, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return connect(options)
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def install(options, modules):
    with connect_retrying(options) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS ir_module_module (name text PRIMARY KEY)")
        cur.execute("CREATE TABLE IF NOT EXISTS res_users (login text PRIMARY KEY, password text NOT NULL)")
        for module in modules.split(","):
            cur.execute("INSERT INTO ir_module_module VALUES (%s) ON CONFLICT DO NOTHING", (module,))
        cur.execute("INSERT INTO res_users VALUES ('admin', %s) ON CONFLICT DO NOTHING", (CRYPT.hash("admin"),))
    logging.getLogger("odoo.modules.loading").info("modules installed: %s", modules)


class Handler(http.server.BaseHTTPRequestHandler):
    options: dict = {}
    protocol_version = "HTTP/1.1"

    def client_ip(self):
        forwarded = self.headers.get("X-Forwarded-For")
        if self.options.get("proxy_mode") == "True" and forwarded:
            return forwarded.split(",")[-1].strip()
        return self.client_address[0]

    def reply(self, status, body, content_type="text/html; charset=utf-8", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        logging.getLogger("werkzeug").info("%s - - %s", self.client_ip(), fmt % args)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if path == "/web/health":
            self.reply(200, json.dumps({"status": "pass"}), "application/json")
        elif path == "/web/login":
            # Odoo's login page reads the database (session, company, users): so does this one.
            try:
                with connect(self.options) as conn, conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM res_users")
                    users = cur.fetchone()[0]
            except psycopg2.Error as error:
                logging.getLogger("odoo.http").error("database unavailable: %s", type(error).__name__)
                self.reply(500, "Internal Server Error")
                return
            self.reply(200, f"<html><body><form method='post'>login ({users} users)</form></body></html>")
        elif path == "/":
            self.reply(303, "", headers=[("Location", "/web/login")])
        else:
            self.reply(404, "not found")

    def do_POST(self):  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if path == "/web/login":
            form = urllib.parse.parse_qs(self.body().decode())
            login, password = form.get("login", [""])[0], form.get("password", [""])[0]
            with connect(self.options) as conn, conn.cursor() as cur:
                cur.execute("SELECT password FROM res_users WHERE login = %s", (login,))
                row = cur.fetchone()
            users = logging.getLogger("odoo.addons.base.models.res_users")
            db = self.options["db_name"]
            if row and CRYPT.verify(password, row[0]):
                users.info("Login successful for db:%s login:%s from %s", db, login, self.client_ip())
                self.reply(303, "", headers=[("Location", "/odoo")])
            else:
                users.info("Login failed for db:%s login:%s from %s", db, login, self.client_ip())
                self.reply(200, "<html><body>Wrong login/password</body></html>")
        elif path == "/jsonrpc":
            request = json.loads(self.body() or b"{}")
            params = request.get("params", {})
            if params.get("service") != "db":
                self.reply(404, "not found")
                return
            method, args = params.get("method"), params.get("args", [])
            if method == "list" and self.options.get("list_db") == "False":
                error = "AccessDenied: the database manager is disabled (list_db = False)"
            elif method in ("dump", "drop", "change_admin_password") and not (
                    args and CRYPT.verify(args[0], self.options["admin_passwd"])):
                error = "AccessDenied"
            elif method in ("dump", "drop", "change_admin_password"):
                error = None
            else:
                error = f"unsupported method {method!r}"
            answer = {"jsonrpc": "2.0", "id": request.get("id")}
            answer.update({"error": {"message": error}} if error else {"result": True})
            self.reply(200, json.dumps(answer), "application/json")
        else:
            self.reply(404, "not found")


class BusHandler(Handler):
    def do_GET(self):  # noqa: N802
        if urllib.parse.urlsplit(self.path).path != "/websocket" or "Sec-WebSocket-Key" not in self.headers:
            self.reply(400, "websocket only")
            return
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(options):
    filestore = os.path.join(options["data_dir"], "filestore", options["db_name"])
    os.makedirs(filestore, exist_ok=True)
    with open(os.path.join(filestore, "started"), "w") as handle:
        handle.write(f"{time.time()}\n")
    handler = type("H", (Handler,), {"options": options})
    bus = type("B", (BusHandler,), {"options": options})
    host = options.get("http_interface") or "0.0.0.0"
    servers = [Server((host, int(options.get("http_port", 8069))), handler),
               Server((host, int(options.get("gevent_port", 8072))), bus)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    log = logging.getLogger("odoo.service.server")
    log.info("HTTP service (werkzeug) running on %s:%s", host, options.get("http_port", 8069))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    log.info("Initiating shutdown")
    for server in servers:
        server.shutdown()
        server.server_close()


def main():
    conf, modules, stop_after_init, _no_http = parse_args(sys.argv[1:])
    options = load_options(conf)
    setup_logging(options)
    connect_retrying(options).close()
    if modules:
        install(options, modules)
    if stop_after_init:
        return
    serve(options)


if __name__ == "__main__":
    main()
