"""TLS-01: the TLS proxy's Caddyfile serves public sites only over HTTPS.

The proxy container (label ``odoo-hosting/role=proxy``, or a Caddy image)
carries its Caddyfile in the environment variable ``CADDYFILE`` (the
program's entrypoint writes it to tmpfs), so the configuration is known at
preview and judged here:

* every plain-HTTP site (``http://`` address or port 80) only answers with a
  permanent redirect (301/308/``permanent``) to ``https://``;
* every HTTPS site sends ``Strict-Transport-Security`` with ``max-age`` of
  at least a year;
* no TLS protocol below 1.2 is enabled;
* automatic HTTPS is not turned off, and its redirects are not disabled
  unless an explicit redirect site replaces them;
* nothing is pulled in with ``import`` (it could not be judged).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import as_list, cannot_check, config_int, get, resource_policy

CONTAINER = "docker:index/container:Container"
ROLE_LABEL = "odoo-hosting/role"
CADDYFILE_ENV = "CADDYFILE"
DEFAULT_MIN_HSTS = 31536000
_WEAK_PROTOCOLS = ("tls1.0", "tls1.1", "ssl3.0")
_MAX_AGE = re.compile(r"max-age=(\d+)", re.IGNORECASE)


@dataclass
class Block:
    """One Caddyfile line of tokens and, if it opened a block, its children."""

    tokens: list[str]
    children: list[Block] = field(default_factory=list)
    has_block: bool = False


class CaddyfileError(ValueError):
    pass


def _tokenize_line(line: str) -> list[str]:
    tokens, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
        elif c == "#" :
            break
        elif c in "\"`":
            end = line.find(c, i + 1)
            while end != -1 and c == '"' and line[end - 1] == "\\":
                end = line.find(c, end + 1)
            if end == -1:
                raise CaddyfileError("unterminated quote")
            tokens.append(line[i + 1:end].replace('\\"', '"'))
            i = end + 1
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            tokens.append(line[i:j])
            i = j
    return tokens


def parse_caddyfile(text: str) -> list[Block]:
    """Blocks of a Caddyfile (top level). Heredocs and env placeholders are not expanded."""
    root: list[Block] = []
    stack: list[list[Block]] = [root]
    for raw in text.splitlines():
        tokens = _tokenize_line(raw)
        if not tokens:
            continue
        if tokens == ["}"]:
            if len(stack) == 1:
                raise CaddyfileError("unbalanced '}'")
            stack.pop()
            continue
        opens = tokens[-1] == "{"
        block = Block(tokens=tokens[:-1] if opens else tokens, has_block=opens)
        if "{" in block.tokens or "}" in block.tokens:
            raise CaddyfileError("braces inside a line are not supported by this check")
        stack[-1].append(block)
        if opens:
            stack.append(block.children)
    if len(stack) != 1:
        raise CaddyfileError("unbalanced '{'")
    return root


def _walk(blocks: list[Block]) -> Iterator[Block]:
    for b in blocks:
        yield b
        yield from _walk(b.children)


def _is_http_address(address: str, http_port: int) -> bool:
    a = address.strip().rstrip(",").lower()
    if a.startswith("http://"):
        return True
    if a.startswith("https://"):
        return False
    port = a.rsplit(":", 1)[1] if ":" in a and not a.endswith("]") else None
    return port == str(http_port)


def _hsts_max_age(site: Block) -> int | None:
    best: int | None = None
    for b in _walk(site.children):
        if b.tokens and b.tokens[0] == "header":
            pairs: list[tuple[str, str]] = []
            if len(b.tokens) >= 3:
                name, value = b.tokens[-2], b.tokens[-1]
                if b.tokens[1].startswith(("@", "/", "*")) and len(b.tokens) >= 4:
                    name, value = b.tokens[2], b.tokens[3]
                pairs.append((name, value))
            for c in b.children:
                if len(c.tokens) >= 2:
                    pairs.append((c.tokens[0], c.tokens[1]))
            for name, value in pairs:
                if name.lstrip("+>").lower() == "strict-transport-security":
                    m = _MAX_AGE.search(value)
                    if m:
                        best = max(best or 0, int(m.group(1)))
    return best



def _only_deletes_headers(directive: Block) -> bool:
    """`header -Name ...` with no block: removes response headers and answers nothing itself."""
    tokens = directive.tokens
    return (tokens[0] == "header" and len(tokens) >= 2 and not directive.has_block
            and all(t.startswith("-") and len(t) > 1 for t in tokens[1:]))

def caddyfile_problems(text: str, min_hsts: int = DEFAULT_MIN_HSTS) -> list[str]:
    try:
        blocks = parse_caddyfile(text)
    except CaddyfileError as e:
        return [f"the Caddyfile cannot be parsed ({e}), so HTTPS-only cannot be checked"]
    problems: list[str] = []
    http_port = 80
    auto_https: str | None = None
    sites = blocks
    if blocks and not blocks[0].tokens and blocks[0].has_block:
        options, sites = blocks[0], blocks[1:]
        for o in options.children:
            if o.tokens[:1] == ["http_port"] and len(o.tokens) > 1 and o.tokens[1].isdigit():
                http_port = int(o.tokens[1])
            if o.tokens[:1] == ["auto_https"] and len(o.tokens) > 1:
                auto_https = o.tokens[1]
    for b in _walk(blocks):
        if b.tokens and b.tokens[0] == "import":
            problems.append("it uses 'import', whose content this check cannot see; inline it")
    if auto_https == "off":
        problems.append("auto_https is off, so certificates are not obtained and renewed automatically (ACME) "
                        "and HTTP is not redirected; remove 'auto_https off'")
    if any(not b.has_block and b.tokens and b.tokens[0] != "import" for b in sites):
        problems.append("a site is written without braces, which this check cannot judge; wrap each site's "
                        "directives in { }")
    has_redirect_site = False
    for site in sites:
        if not site.tokens or site.tokens[0].startswith("(") or not site.has_block:
            continue  # snippet definitions, top-level imports (reported above)
        addresses = [a.rstrip(",") for a in site.tokens if a.rstrip(",")]
        http = [a for a in addresses if _is_http_address(a, http_port)]
        label = ", ".join(addresses)
        if http:
            # bind/log, and header lines that only delete response headers (`header -Server`), leave
            # the redirect the site's one answer.
            directives = [c for c in site.children if c.tokens and c.tokens[0] not in ("bind", "log")
                          and not _only_deletes_headers(c)]
            redirect_ok = (len(directives) == 1 and directives[0].tokens[0] == "redir"
                           and len(directives[0].tokens) >= 2
                           and directives[0].tokens[1].lower().startswith("https://")
                           and (len(directives[0].tokens) >= 3
                                and directives[0].tokens[2] in ("301", "308", "permanent")))
            if not redirect_ok:
                problems.append(f"the plain-HTTP site '{label}' does something other than a permanent redirect "
                                "to HTTPS; make its only directive 'redir https://{host}{uri} 308'")
            else:
                has_redirect_site = True
            if len(http) != len(addresses):
                problems.append(f"the site '{label}' mixes HTTP and HTTPS addresses; split it")
            continue
        max_age = _hsts_max_age(site)
        if max_age is None:
            problems.append(f"the HTTPS site '{label}' sends no Strict-Transport-Security header; add "
                            f"'header Strict-Transport-Security \"max-age={min_hsts}\"' or longer")
        elif max_age < min_hsts:
            problems.append(f"the HTTPS site '{label}' sends HSTS max-age={max_age}, below {min_hsts}; raise it")
        for b in _walk(site.children):
            if b.tokens and b.tokens[0] == "protocols":
                weak = [p for p in b.tokens[1:] if p.lower() in _WEAK_PROTOCOLS]
                if weak:
                    problems.append(f"the HTTPS site '{label}' allows {', '.join(weak)}; the minimum is tls1.2")
    if auto_https == "disable_redirects" and not has_redirect_site:
        problems.append("auto_https disable_redirects leaves HTTP unanswered by a redirect and no explicit "
                        "http:// redirect site replaces it; add one or remove the option")
    return problems


def _labels(props: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for item in as_list(get(props, "labels")):
        if isinstance(item, Mapping):
            out[str(get(item, "label", ""))] = get(item, "value")
    return out


def env_value(props: Mapping[str, Any], name: str) -> str | None:
    for item in as_list(get(props, "envs")):
        if isinstance(item, str) and item.startswith(name + "="):
            return item[len(name) + 1:]
    return None


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    min_hsts = config_int(args, "minimumHstsMaxAge", DEFAULT_MIN_HSTS, minimum=DEFAULT_MIN_HSTS)
    role = str(_labels(args.props).get(ROLE_LABEL) or "").strip().lower()
    image = str(get(args.props, "image", ""))
    if role != "proxy" and "caddy" not in image.lower():
        args.not_applicable("judges only the TLS proxy (label odoo-hosting/role=proxy or a Caddy image)")
    caddyfile = env_value(args.props, CADDYFILE_ENV)
    if caddyfile is None and role == "proxy":
        report_violation(f"proxy: its configuration is not visible to the policy pack; pass the Caddyfile in "
                         f"the environment variable {CADDYFILE_ENV} so HTTPS-only can be checked.", None)
        return
    if caddyfile is None:
        cannot_check(f"HTTPS-only (TLS-01): the Caddy container has no {CADDYFILE_ENV} environment variable, "
                     "so the policy cannot see its Caddyfile")
    for problem in caddyfile_problems(caddyfile, min_hsts):
        report_violation(f"proxy: {problem}.", None)


caddy_proxy_https_only = resource_policy(
    name="docker-proxy-https-only",
    description="Checks that the TLS proxy's Caddyfile serves sites only over HTTPS: plain HTTP only "
                "redirects permanently, HSTS max-age is at least a year, TLS is 1.2 or newer and "
                "automatic HTTPS (ACME) is on.",
    controls=["TLS-01"],
    severity=Severity.HIGH,
    remediation="Render the Caddyfile with a 'redir https://{host}{uri} 308' http:// site, "
                "'header Strict-Transport-Security \"max-age=63072000\"' on each HTTPS site, no tls1.0/1.1 "
                "and without 'auto_https off'; pass it in the proxy container's CADDYFILE environment variable.",
    validate=_validate,
    applies_to=(CONTAINER,),
    config={"minimumHstsMaxAge": {"type": "integer", "minimum": DEFAULT_MIN_HSTS, "default": DEFAULT_MIN_HSTS,
                                  "description": "Smallest HSTS max-age accepted, in seconds."}},
    scope="client",
)
