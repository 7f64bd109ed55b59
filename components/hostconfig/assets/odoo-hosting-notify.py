#!/usr/bin/python3
"""odoo-hosting-notify [--kind KIND] SUBJECT: publish stdin to the client's incident channel (INC-01).
odoo-hosting-notify --ban JAIL IP THRESHOLD WINDOW (fail2ban): record the ban in
BAN_STATE; publish once THRESHOLD bans fall within WINDOW seconds, then not for WINDOW.
Every notification is also written as a JSON record to the client's register
(REGISTER_URL, an object-locked bucket the host can write but not delete or
overwrite), saying whether the channel accepted it.

Managed by odoo-hosting. Python standard library only. The channel is the
client's SNS topic; its ARN and the credentials allowed to publish to it are
read from Vault at run time (``@SECRET_FETCH_PATH@ --path backup``), or from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, INCIDENT_TOPIC_ARN) when
the caller already holds them. NOTIFY_SNS_ENDPOINT and NOTIFY_BAN_STATE override
the endpoint and the ban register, NOTIFY_REGISTER_URL the register (tests only).
Exit 0 when SNS accepted the message and the register holds its record.
"""

import datetime
import fcntl
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

FETCH = ["@SECRET_FETCH_PATH@", "--path", "backup"]
PROG = "odoo-hosting-notify"
BAN_STATE = "/var/lib/odoo-hosting/fail2ban-bans.json"
REGISTER_URL = "@REGISTER_URL@"


def secret(name, env):
    if os.environ.get(env):
        return os.environ[env]
    command = os.environ.get("SECRET_FETCH", "").split() or FETCH
    result = subprocess.run(command + [name], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"cannot read {name} from Vault: {result.stderr.strip()}")
    return result.stdout.strip()


def _sign(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed(method, endpoint, service, region, body, headers, key_id, secret_key):
    """One SigV4-signed AWS request (urllib), its response body."""
    url = urllib.parse.urlsplit(endpoint)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {**headers, "host": url.netloc, "x-amz-date": amz_date,
               "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    names = sorted(k.lower() for k in headers)
    values = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed_headers = ";".join(names)
    canonical_request = "\n".join([method, urllib.parse.quote(url.path or "/"), "",
                                   "".join(f"{n}:{values[n]}\n" for n in names), signed_headers,
                                   values["x-amz-content-sha256"]])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(("AWS4" + secret_key).encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(endpoint, data=body, method=method)
    for name, value in headers.items():
        if name != "host":
            request.add_header(name, value)
    request.add_header("Authorization", f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, "
                                        f"SignedHeaders={signed_headers}, Signature={signature}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def publish(topic_arn, subject, message, key_id, secret_key):
    region = topic_arn.split(":")[3]
    endpoint = os.environ.get("NOTIFY_SNS_ENDPOINT") or f"https://sns.{region}.amazonaws.com/"
    body = urllib.parse.urlencode({
        "Action": "Publish", "Version": "2010-03-31", "TopicArn": topic_arn,
        # SNS subjects: printable ASCII, at most 100 characters.
        "Subject": "".join(c for c in subject if 32 <= ord(c) < 127)[:100], "Message": message,
    }).encode()
    signed("POST", endpoint, "sns", region, body,
           {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, key_id, secret_key)


def record(kind, subject, message, notified, error, key_id, secret_key):
    """The register's copy: a new object (unique key) in the object-locked bucket."""
    base = os.environ.get("NOTIFY_REGISTER_URL") or REGISTER_URL
    now = datetime.datetime.now(datetime.timezone.utc)
    host = os.uname().nodename
    name = f"{now:%Y/%m/%Y%m%dT%H%M%S.%fZ}-{host}-{secrets.token_hex(4)}.json"
    body = json.dumps({"time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "host": host, "kind": kind,
                       "subject": subject, "message": message, "notified": notified,
                       "error": error}, sort_keys=True).encode()
    region = urllib.parse.urlsplit(base).netloc.split(".")[1] if ".amazonaws.com" in base else "eu-central-1"
    region = os.environ.get("NOTIFY_REGISTER_REGION") or region
    # Content-MD5: S3 wants it on every upload into a bucket with default retention.
    signed("PUT", base.rstrip("/") + "/" + name, "s3", region, body,
           {"content-type": "application/json", "content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()},
           key_id, secret_key)


def report(subject, message, kind="notification"):
    notified, error, status = False, None, 0
    try:
        key_id = secret("aws-access-key-id", "AWS_ACCESS_KEY_ID")
        secret_key = secret("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY")
    except RuntimeError as failure:
        print(f"{PROG}: ERROR: {failure}", file=sys.stderr)
        return 1
    try:
        publish(secret("incident-topic-arn", "INCIDENT_TOPIC_ARN"), subject, message, key_id, secret_key)
        notified = True
        print(f"{PROG}: reported to the incident channel", file=sys.stderr)
    except (RuntimeError, OSError, urllib.error.URLError, IndexError) as failure:
        error, status = str(failure), 1
        print(f"{PROG}: ERROR: {failure}", file=sys.stderr)
    try:
        record(kind, subject, message, notified, error, key_id, secret_key)
        print(f"{PROG}: written to the register", file=sys.stderr)
    except (OSError, urllib.error.URLError, IndexError) as failure:
        print(f"{PROG}: ERROR: not written to the register: {failure}", file=sys.stderr)
        status = 1
    return status


def ban_state(change):
    """change(state) on the ban register, under a lock: fail2ban bans in parallel."""
    path = os.environ.get("NOTIFY_BAN_STATE") or BAN_STATE
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        # New, or cut short (disk full, power loss): start afresh.
        try:
            state = json.loads(file.read())
        except ValueError:
            state = {}
        result = change(state)
        file.seek(0)
        file.truncate()
        json.dump(state, file)
    return result


def ban(jail, ip, threshold, window):
    now = time.time()

    def record(state):
        # Capped, so that a storm cannot grow the file without bound.
        bans = state["bans"] = [b for b in state.get("bans", []) if b[0] > now - window][-999:] + [[now, jail, ip]]
        if len(bans) >= threshold and state.get("alerted", 0) <= now - window:
            # Marked before reporting: the bans that arrive meanwhile stay quiet.
            state["alerted"] = now
            return bans
        return None

    bans = ban_state(record)
    if not bans:
        return 0
    jails, minutes = ", ".join(sorted({b[1] for b in bans})), window // 60
    last = "".join(f"{time.strftime('%FT%TZ', time.gmtime(t))} {address} ({name})\n"
                   for t, name, address in bans[:-11:-1])
    status = report(f"odoo-hosting {os.uname().nodename}: {len(bans)} fail2ban bans in {minutes} min ({jails})",
                    f"{len(bans)} bans within {minutes} minutes (threshold {threshold}), jails: {jails}.\n"
                    f"No further alert for {minutes} minutes. Last bans:\n{last}", kind="ban-burst")
    # Not reported: the next ban tries again.
    if status:
        ban_state(lambda state: state.pop("alerted", None))
    return status


def main(argv):
    if len(argv) == 6 and argv[1] == "--ban":
        return ban(argv[2], argv[3], int(argv[4]), int(argv[5]))
    kind = "notification"
    if len(argv) == 4 and argv[1] == "--kind" and argv[2].replace("-", "").isalnum():
        kind, argv = argv[2], argv[:1] + argv[3:]
    if len(argv) != 2:
        print(f"usage: {PROG} [--kind KIND] SUBJECT  (message on stdin) | --ban JAIL IP THRESHOLD WINDOW",
              file=sys.stderr)
        return 2
    return report(argv[1], sys.stdin.read() or argv[1], kind)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
