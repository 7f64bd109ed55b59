#!/usr/bin/python3
"""@SCRIPT_PATH@ NAME: print one boot secret of this host, fetched from Vault.

Managed by odoo-hosting (SEC-01, SEC-02). Python standard library only.

Reads the non-secret Vault coordinates from @BOOT_CONFIG_PATH@. Without a
cached client token it waits (bounded) for the response-wrapped, single-use
AppRole secret-id at the delivery path (wrapped_secret_id_path, on tmpfs),
unwraps it once, deletes the file, logs in with AppRole and caches the client
token on tmpfs (0600). Then it reads the KV v2 secret and prints the value of
NAME on stdout. Errors go to stderr and never include a secret value.

ODOO_HOSTING_BOOT_CONFIG overrides the config path (tests only).
"""

import fcntl
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.request

CONFIG_PATH = os.environ.get("ODOO_HOSTING_BOOT_CONFIG", "@BOOT_CONFIG_PATH@")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PROG = "odoo-hosting-secret"


class Failure(Exception):
    """An error whose message is safe to print (no secret in it)."""


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def load_config():
    try:
        with open(CONFIG_PATH, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read {CONFIG_PATH}: {error}") from None
    for key in ("vault_address", "role_id", "kv_mount", "kv_path",
                "wrapped_secret_id_path", "token_cache_path"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise Failure(f"{CONFIG_PATH}: missing {key}")
    return config


def vault(config, method, path, token=None, body=None, wrap_ttl=None):
    """One Vault API call; returns the decoded JSON (or {} for no content).

    Connection errors are retried for network_wait_seconds (the network may
    still be coming up at boot); an HTTP error answer is final.
    """
    url = config["vault_address"].rstrip("/") + "/v1/" + path
    data = None if body is None else json.dumps(body).encode()
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=config.get("ca_file") or None)
    deadline = time.monotonic() + float(config.get("network_wait_seconds", 300))
    next_log = 0.0
    while True:
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("X-Vault-Token", token)
        if wrap_ttl:
            request.add_header("X-Vault-Wrap-TTL", wrap_ttl)
        try:
            with urllib.request.urlopen(request, timeout=float(config.get("http_timeout_seconds", 15)),
                                        context=context) as response:
                raw = response.read()
            break
        except urllib.error.HTTPError as error:
            # Vault error bodies carry messages, not secrets.
            try:
                errors = json.loads(error.read() or b"{}").get("errors", [])
            except ValueError:
                errors = []
            raise VaultHTTPError(error.code, f"{method} /v1/{path}: HTTP {error.code} "
                                             f"{'; '.join(map(str, errors))}") from None
        except (urllib.error.URLError, OSError) as error:
            now = time.monotonic()
            if now >= deadline:
                raise Failure(f"{method} /v1/{path}: Vault unreachable: {error}") from None
            if now >= next_log:
                log(f"Vault unreachable ({error}); retrying")
                next_log = now + 30
            time.sleep(min(2.0, max(deadline - now, 0.01)))
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise Failure(f"{method} /v1/{path}: response is not JSON") from None


class VaultHTTPError(Failure):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def write_private(path, text):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def read_wrapping_token(config):
    """Wait (bounded) for the delivered wrapped secret-id and read it."""
    path = config["wrapped_secret_id_path"]
    deadline = time.monotonic() + float(config.get("wait_seconds", 600))
    next_log = 0.0
    while not os.path.exists(path):
        now = time.monotonic()
        if now >= deadline:
            raise Failure(f"no wrapped secret-id delivered at {path} in time")
        if now >= next_log:
            log(f"waiting for the wrapped secret-id at {path}")
            next_log = now + 30
        time.sleep(min(1.0, max(deadline - now, 0.01)))
    with open(path, encoding="utf-8") as handle:
        text = handle.read().strip()
    if text.startswith("{"):
        try:
            text = json.loads(text)["wrap_info"]["token"]
        except (ValueError, KeyError, TypeError):
            os.unlink(path)
            raise Failure(f"{path}: not a wrapping token nor a Vault wrap response") from None
    if not text:
        os.unlink(path)
        raise Failure(f"{path} was empty")
    return text


def bootstrap(config):
    """Have Vault mint a fresh secret-id for this host, response-wrapped and single use.

    The bootstrap AppRole needs no secret-id: it accepts logins only from this
    host's address, and its one-use token may do one thing, ask for a wrapped
    secret-id of the host role. The wrapping token lands where a delivered
    one would; the usual unwrap-once flow follows.
    """
    backend = config.get("approle_path") or "approle"
    auth = vault(config, "POST", f"auth/{backend}/login",
                 body={"role_id": config["bootstrap_role_id"]}).get("auth") or {}
    token = auth.get("client_token")
    if not token:
        raise Failure("bootstrap AppRole login returned no client token")
    creation_path = f"auth/{backend}/role/{config['role_id']}/secret-id"
    wrap = vault(config, "POST", creation_path, token=token, body={},
                 wrap_ttl=str(config.get("bootstrap_wrap_ttl") or "60s")).get("wrap_info") or {}
    if wrap.get("creation_path") != creation_path or not wrap.get("token"):
        raise Failure("Vault did not answer with a wrapped secret-id of this host's role")
    write_private(config["wrapped_secret_id_path"], wrap["token"])
    log("obtained a wrapped secret-id through the bootstrap role")


def login(config):
    path = config["wrapped_secret_id_path"]
    if not os.path.exists(path) and config.get("bootstrap_role_id"):
        try:
            bootstrap(config)
        except Failure as error:
            # A delivered secret-id (operator, test harness) still works.
            log(f"bootstrap failed ({error}); waiting for a delivered secret-id")
    wrapping_token = read_wrapping_token(config)
    try:
        unwrapped = vault(config, "POST", "sys/wrapping/unwrap", token=wrapping_token)
    except VaultHTTPError as error:
        os.unlink(path)  # Vault answered: the token is spent either way
        raise Failure(f"unwrapping the secret-id failed ({error}); an already used "
                      "wrapping token may mean it was intercepted") from None
    os.unlink(path)  # single use: unwrapped now
    secret_id = (unwrapped.get("data") or {}).get("secret_id")
    if not secret_id:
        raise Failure("the unwrapped response holds no secret_id")
    auth = vault(config, "POST", "auth/approle/login",
                 body={"role_id": config["role_id"], "secret_id": secret_id}).get("auth") or {}
    token = auth.get("client_token")
    if not token:
        raise Failure("AppRole login returned no client token")
    write_private(config["token_cache_path"], token)
    return token


def client_token(config):
    cache = config["token_cache_path"]
    os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
    # One login at a time: the secret-id is single use, and wg-quick and the
    # data volume unit may ask at the same moment.
    lock = open(os.path.join(os.path.dirname(cache), ".login.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if os.path.exists(cache):
            with open(cache, encoding="utf-8") as handle:
                token = handle.read().strip()
            if token:
                return token
        return login(config)
    finally:
        lock.close()


def read_secret(config, token, kv_path=None):
    path = f"{config['kv_mount']}/data/{kv_path or config['kv_path']}"
    response = vault(config, "GET", path, token=token)
    data = ((response.get("data") or {}).get("data")) or {}
    return data


def main(argv):
    # --path KIND reads another of the client's paths (boot.json "kv_paths"), e.g. backup.
    kind = None
    if len(argv) == 4 and argv[1] == "--path" and NAME_RE.match(argv[2]):
        kind, argv = argv[2], [argv[0], argv[3]]
    if len(argv) != 2 or not NAME_RE.match(argv[1]):
        log("usage: odoo-hosting-secret [--path KIND] NAME")
        return 2
    name = argv[1]
    try:
        config = load_config()
        kv_path = config["kv_path"]
        if kind is not None:
            kv_path = (config.get("kv_paths") or {}).get(kind)
            if not isinstance(kv_path, str) or not kv_path:
                raise Failure(f"{CONFIG_PATH}: no kv_paths entry {kind!r}")
        token = client_token(config)
        try:
            data = read_secret(config, token, kv_path)
        except VaultHTTPError as error:
            if error.code != 403:
                raise
            # Expired or revoked cached token: drop it and log in again, which
            # needs a freshly delivered secret-id.
            log("cached Vault token rejected; logging in again")
            os.unlink(config["token_cache_path"])
            data = read_secret(config, client_token(config), kv_path)
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise Failure(f"secret {name!r} not found at {config['kv_mount']}/{kv_path}")
    except Failure as error:
        log(f"ERROR: {error}")
        return 1
    sys.stdout.write(value + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
