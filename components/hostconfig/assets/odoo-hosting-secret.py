#!/usr/bin/python3
"""@SCRIPT_PATH@ [--path KIND] NAME: print a secret of this host from Vault.
@SCRIPT_PATH@ --bundle: install the host bundle that boot.json pins.

Managed by odoo-hosting (SEC-01, SEC-02; README: secret-zero, host bundle).
Reads @BOOT_CONFIG_PATH@ (or $ODOO_HOSTING_BOOT_CONFIG). Never prints a secret.
"""

import fcntl
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CONFIG_PATH = os.environ.get("ODOO_HOSTING_BOOT_CONFIG", "@BOOT_CONFIG_PATH@")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PROG = "odoo-hosting-secret"


class Failure(Exception):
    """An error whose message is safe to print (no secret in it); code: Vault's HTTP status."""

    code = None


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def load_config():
    try:
        with open(CONFIG_PATH, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read {CONFIG_PATH}: {error}") from None
    for key in ("vault_address", "role_id", "kv_mount", "kv_path", "wrapped_secret_id_path", "token_cache_path"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise Failure(f"{CONFIG_PATH}: missing {key}")
    return config


def vault(config, method, path, token=None, body=None, wrap_ttl=None):
    """One Vault call, its JSON answer. Connection errors are retried for
    network_wait_seconds (the network may still be coming up); an HTTP error is final."""
    url, what = config["vault_address"].rstrip("/") + "/v1/" + path, f"{method} /v1/{path}"
    headers = {"Content-Type": "application/json", "X-Vault-Token": token, "X-Vault-Wrap-TTL": wrap_ttl}
    request = urllib.request.Request(url, None if body is None else json.dumps(body).encode(),
                                     {k: v for k, v in headers.items() if v}, method=method)
    context = ssl.create_default_context(cafile=config.get("ca_file") or None) if url[:6] == "https:" else None
    deadline = time.monotonic() + float(config.get("network_wait_seconds", 300))
    next_log = 0.0
    while True:
        try:
            with urllib.request.urlopen(request, timeout=float(config.get("http_timeout_seconds", 15)),
                                        context=context) as response:
                raw = response.read()
            break
        except urllib.error.HTTPError as error:
            # Vault error bodies carry messages, not secrets.
            try:
                detail = "; ".join(map(str, json.loads(error.read() or b"{}").get("errors", [])))
            except (ValueError, AttributeError):
                detail = ""
            failure = Failure(f"{what}: HTTP {error.code} {detail}")
            failure.code = error.code
            raise failure from None
        except OSError as error:
            now = time.monotonic()
            if now >= deadline:
                raise Failure(f"{what}: Vault unreachable: {error}") from None
            if now >= next_log:
                log(f"Vault unreachable ({error}); retrying")
                next_log = now + 30
            time.sleep(min(2.0, max(deadline - now, 0.01)))
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise Failure(f"{what}: response is not JSON") from None


def write_private(path, text):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def read_wrapping_token(config):
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
    if not text:
        os.unlink(path)
        raise Failure(f"{path} was empty")
    return text


def bootstrap(config):
    # The bootstrap role takes logins from this host's address only, and its
    # one-use token may only ask for a wrapped secret-id of the host role.
    auth = vault(config, "POST", "auth/approle/login", body={"role_id": config["bootstrap_role_id"]}).get("auth")
    token = (auth or {}).get("client_token")
    if not token:
        raise Failure("bootstrap AppRole login returned no client token")
    creation_path = f"auth/approle/role/{config['role_id']}/secret-id"
    wrap = vault(config, "POST", creation_path, token=token, body={}, wrap_ttl="60s").get("wrap_info") or {}
    if wrap.get("creation_path") != creation_path or not wrap.get("token"):
        raise Failure("Vault did not answer with a wrapped secret-id of this host's role")
    write_private(config["wrapped_secret_id_path"], wrap["token"])
    log("obtained a wrapped secret-id through the bootstrap role")


def login(config):
    path = config["wrapped_secret_id_path"]
    if not os.path.exists(path) and config.get("bootstrap_role_id"):
        try:
            bootstrap(config)
        except Failure as error:  # a delivered secret-id still works
            log(f"bootstrap failed ({error}); waiting for a delivered secret-id")
    wrapping_token = read_wrapping_token(config)
    try:
        unwrapped = vault(config, "POST", "sys/wrapping/unwrap", token=wrapping_token)
    except Failure as error:
        if error.code is None:
            raise
        os.unlink(path)  # Vault answered: the token is spent either way
        raise Failure(f"unwrapping the secret-id failed ({error}); an already used "
                      "wrapping token may mean it was intercepted") from None
    os.unlink(path)
    secret_id = (unwrapped.get("data") or {}).get("secret_id")
    if not secret_id:
        raise Failure("the unwrapped response holds no secret_id")
    auth = vault(config, "POST", "auth/approle/login",
                 body={"role_id": config["role_id"], "secret_id": secret_id}).get("auth") or {}
    if not auth.get("client_token"):
        raise Failure("AppRole login returned no client token")
    write_private(config["token_cache_path"], auth["client_token"])
    return auth["client_token"]


def client_token(config):
    cache = config["token_cache_path"]
    os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
    # One login at a time: the secret-id is single use.
    with open(os.path.join(os.path.dirname(cache), ".login.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(cache):
            with open(cache, encoding="utf-8") as handle:
                token = handle.read().strip()
            if token:
                return token
        return login(config)


def secrets(config, kind=None):
    """(values, path) of kv_path, or of kv_paths[kind]."""
    kv_path = config["kv_path"] if kind is None else (config.get("kv_paths") or {}).get(kind)
    if not isinstance(kv_path, str) or not kv_path:
        raise Failure(f"{CONFIG_PATH}: no kv_paths entry {kind!r}")
    path = f"{config['kv_mount']}/data/{kv_path}"
    try:
        response = vault(config, "GET", path, token=client_token(config))
    except Failure as error:
        if error.code != 403:
            raise
        # Expired or revoked token: log in again (needs a new secret-id).
        log("cached Vault token rejected; logging in again")
        os.unlink(config["token_cache_path"])
        response = vault(config, "GET", path, token=client_token(config))
    return (response.get("data") or {}).get("data") or {}, kv_path


def aws(config, values, service, region, url, *options):
    """One AWS request, signed by curl (SigV4); the credential reaches curl on stdin."""
    wait = str(int(config.get("network_wait_seconds", 300)))
    result = subprocess.run(
        ["curl", "-fsS", "--retry", "100", "--retry-all-errors", "--retry-max-time", wait, "--max-time", "60",
         "--aws-sigv4", f"aws:amz:{region}:{service}", "-K", "-", *options, url],
        input=f'user = "{values["aws-access-key-id"]}:{values["aws-secret-access-key"]}"\n'.encode(),
        capture_output=True, check=False)
    if result.returncode:
        raise Failure(f"{service} {url}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def publish(config, values, subject, message):
    """To the client's incident topic (INC-01)."""
    topic = values["incident-topic-arn"]
    region = topic.split(":")[3]
    fields = {"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic, "Message": message,
              # SNS subjects: printable ASCII, at most 100 characters.
              "Subject": "".join(c for c in subject if 32 <= ord(c) < 127)[:100]}
    aws(config, values, "sns", region, config.get("sns_endpoint") or f"https://sns.{region}.amazonaws.com/",
        *(a for k, v in fields.items() for a in ("--data-urlencode", f"{k}={v}")))


def install(entry):
    """Write one file with its owner and mode; True when its content changed."""
    content = entry["content"].encode()
    try:
        with open(entry["path"], "rb") as handle:
            if not content:
                return False  # a log: kept
            same = handle.read() == content
    except OSError:
        same = False
    user, _, group = entry["owner"].partition(":")
    with tempfile.NamedTemporaryFile() as source:
        source.write(content)
        source.flush()
        subprocess.run(["install", "-D", "-o", user, "-g", group or user, "-m", entry["permissions"],
                        source.name, entry["path"]], check=True)
    return not same


def install_bundle(config):
    pin, cache = config.get("bundle") or {}, "@BUNDLE_CACHE_PATH@"
    sha, url = pin.get("sha256") or "", pin.get("url")
    if not (re.fullmatch(r"[0-9a-f]{64}", sha) and url and pin.get("region")):
        raise Failure(f"{CONFIG_PATH}: no bundle pin (sha256, url, region)")
    source, text = "cache", b""
    if os.path.exists(cache):
        with open(cache, "rb") as handle:
            text = handle.read()
        if hashlib.sha256(text).hexdigest() != sha:
            log(f"cached {cache} does not match the pin; fetching it again")
            text = b""
    if not text:
        source = url
        values, _ = secrets(config, "backup")
        text = aws(config, values, "s3", pin["region"], url, "-H",
                   f"x-amz-content-sha256: {hashlib.sha256(b'').hexdigest()}")  # S3 wants the payload's hash
        got = hashlib.sha256(text).hexdigest()
        if got != sha:
            message = (f"host bundle refused: {url} has SHA-256 {got}, user-data pins {sha}. Nothing "
                       "installed: the data volume stays closed. Was the object replaced?")
            log(f"ERROR: {message}")
            try:
                publish(config, values, f"odoo-hosting {os.uname().nodename}: host bundle refused", message)
                log("reported to the incident channel")
            except (Failure, KeyError, IndexError) as error:
                log(f"ERROR: not reported to the incident channel: {error}")
            raise Failure("host bundle refused")
        write_private(cache + ".new", text.decode())
        os.replace(cache + ".new", cache)
    import yaml  # cloud-init's own dependency

    bundle = yaml.safe_load(text)
    changed = [entry["path"] for entry in bundle["files"] if install(entry)]
    log(f"bundle {sha[:12]} from {source}: {len(changed)} of {len(bundle['files'])} files changed")
    failed = [c for c in (bundle.get("activate") or [] if changed else []) if subprocess.run(c, check=False).returncode]
    for command in failed:
        log(f"ERROR: {' '.join(command)} failed")
    return 1 if failed else 0


def main(argv):
    try:
        if argv[1:] == ["--bundle"]:
            return install_bundle(load_config())
        kind = argv[2] if len(argv) == 4 and argv[1] == "--path" else None
        name = argv[-1]
        if len(argv) != (2 if kind is None else 4) or not NAME_RE.match(name) or not NAME_RE.match(kind or "x"):
            log("usage: odoo-hosting-secret [--path KIND] NAME | --bundle")
            return 2
        config = load_config()
        data, kv_path = secrets(config, kind)
        if not isinstance(data.get(name), str) or not data[name]:
            raise Failure(f"secret {name!r} not found at {config['kv_mount']}/{kv_path}")
    except (Failure, OSError, subprocess.CalledProcessError) as error:
        log(f"ERROR: {error}")
        return 1
    sys.stdout.write(data[name] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
