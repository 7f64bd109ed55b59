#!/usr/bin/env python3
"""restic vs duplicity (symmetric GPG) on an Odoo-like data set: time and stored bytes.

    .venv/bin/python bench/backup_compare.py [--filestore-mb 200] [--dump-mb 50] [--change 0.01]

Both tools back up the same generated data set (a filestore of mixed
documents and images, plus a plain SQL dump) to a local directory, so the
figures are the tools' own cost (encryption, compression, deduplication,
indexing), not a network's. In the same run: a full backup, a second backup
after a change of ``--change`` of the data (rows changed in the dump, new
attachments), and a restore of the latest state, which is checked against
the source. Printed, not asserted: this is not part of ``make test``
(``make bench-backup``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "bench-" + "x" * 40  # a benchmark secret, not a real one

WORDS = ("invoice", "partner", "order", "line", "product", "quantity", "price", "tax", "total", "journal",
         "account", "payment", "delivery", "stock", "move", "draft", "posted", "customer", "vendor", "EUR")


def _text(rng: random.Random, size: int) -> bytes:
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12)) + f" {rng.randint(0, 10**9)}\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def generate(root: Path, filestore_mb: int, dump_mb: int, seed: int = 7) -> None:
    """Odoo-like: the filestore holds sha1-named attachments in 2-level dirs, about a third
    compressible documents and two thirds already-compressed images/PDFs; the dump is text."""
    rng = random.Random(seed)
    filestore = root / "filestore" / "client_db"
    total = filestore_mb * 1024 * 1024
    written = 0
    while written < total:
        kind = rng.random()
        size = int(rng.lognormvariate(11.5, 1.2))  # median ~100 KB, long tail
        size = max(2048, min(size, 8 * 1024 * 1024, total - written))
        data = _text(rng, size) if kind < 0.35 else rng.randbytes(size)
        name = hashlib.sha1(data).hexdigest()
        path = filestore / name[:2] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += size
    (root / "dump").mkdir(parents=True, exist_ok=True)
    (root / "dump" / "database.sql").write_bytes(_text(rng, dump_mb * 1024 * 1024))


def change(root: Path, fraction: float, seed: int = 11) -> int:
    """Change ``fraction`` of the data: rewrite scattered lines of the dump (half the budget) and add
    new attachments (the other half). Returns bytes changed."""
    rng = random.Random(seed)
    dump = root / "dump" / "database.sql"
    data = bytearray(dump.read_bytes())
    budget = int((sum(p.stat().st_size for p in root.rglob("*") if p.is_file())) * fraction)
    # Rows change in a few tables (clustered regions), as a day of Odoo use does; a scattered
    # rewrite of the whole dump is the worst case for chunk-based deduplication.
    dump_budget, changed = budget // 2, 0
    regions = 8
    for _ in range(regions):
        size = dump_budget // regions
        at = rng.randrange(0, len(data) - size)
        data[at:at + size] = _text(rng, size)
        changed += size
    dump.write_bytes(bytes(data))
    added = 0
    filestore = root / "filestore" / "client_db"
    while added < budget - dump_budget:
        blob = rng.randbytes(min(256 * 1024, budget - dump_budget - added))
        name = hashlib.sha1(blob).hexdigest()
        (filestore / name[:2]).mkdir(exist_ok=True)
        (filestore / name[:2] / name).write_bytes(blob)
        added += len(blob)
    return changed + added


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])}... failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


@dataclass
class Row:
    tool: str
    full_s: float
    full_bytes: int
    incr_s: float
    incr_bytes: int
    restore_s: float
    restored_ok: bool


class Restic:
    name = "restic 0.14 (AES-256/Poly1305, dedup)"

    def __init__(self, work: Path) -> None:
        self.repo = work / "restic-repo"
        self.env = {**os.environ, "RESTIC_REPOSITORY": str(self.repo), "RESTIC_PASSWORD": PASSWORD,
                    "RESTIC_CACHE_DIR": str(work / "restic-cache")}
        subprocess.run(["restic", "init"], env=self.env, check=True, capture_output=True)

    def backup(self, source: Path) -> float:
        # From inside the source, so restored paths are relative like duplicity's.
        start = time.perf_counter()
        result = subprocess.run(["restic", "backup", "--quiet", "--host", "bench", "."], env=self.env, cwd=source,
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"restic backup failed:\n{result.stderr[-2000:]}")
        return time.perf_counter() - start

    def restore(self, target: Path) -> float:
        return timed(["restic", "restore", "latest", "--target", str(target)], self.env)

    def stored(self) -> int:
        return du(self.repo)


class Duplicity:
    name = "duplicity 0.8 (GPG symmetric, full+incr)"

    def __init__(self, work: Path) -> None:
        self.target = work / "duplicity-target"
        self.url = f"file://{self.target}"
        self.gnupg = work / "gnupg"
        self.gnupg.mkdir(mode=0o700)
        self.common = ["--archive-dir", str(work / "duplicity-cache"), "--name", "bench", "--no-print-statistics"]
        self.env = {**os.environ, "PASSPHRASE": PASSWORD, "GNUPGHOME": str(self.gnupg)}

    def backup(self, source: Path, full: bool) -> float:
        return timed(["duplicity", "full" if full else "incremental", *self.common, str(source), self.url], self.env)

    def restore(self, target: Path) -> float:
        return timed(["duplicity", "restore", *self.common, self.url, str(target)], self.env)

    def stored(self) -> int:
        return du(self.target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--filestore-mb", type=int, default=200)
    parser.add_argument("--dump-mb", type=int, default=50)
    parser.add_argument("--change", type=float, default=0.01)
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()
    for tool in ("restic", "duplicity", "gpg"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian: apt-get install restic duplicity gnupg)")

    work = Path(tempfile.mkdtemp(prefix="backup-bench-", dir=args.workdir))
    try:
        source = work / "source"
        t0 = time.perf_counter()
        generate(source, args.filestore_mb, args.dump_mb)
        size = du(source)
        print(f"data set: {size / 2**20:.0f} MiB ({args.filestore_mb} MiB filestore, {args.dump_mb} MiB SQL dump), "
              f"generated in {time.perf_counter() - t0:.1f}s; restic {_version(['restic', 'version'])}, "
              f"duplicity {_version(['duplicity', '--version'])}", flush=True)

        restic, dup = Restic(work), Duplicity(work)
        full = {"restic": restic.backup(source), "duplicity": dup.backup(source, full=True)}
        stored_full = {"restic": restic.stored(), "duplicity": dup.stored()}
        changed = change(source, args.change)
        print(f"changed {changed / 2**20:.1f} MiB ({args.change:.0%}): dump rows rewritten + new attachments",
              flush=True)
        incr = {"restic": restic.backup(source), "duplicity": dup.backup(source, full=False)}
        stored_incr = {"restic": restic.stored() - stored_full["restic"],
                       "duplicity": dup.stored() - stored_full["duplicity"]}
        expected = tree_digest(source)
        rows = []
        for key, tool in (("restic", restic), ("duplicity", dup)):
            target = work / f"restore-{key}"
            restore_s = tool.restore(target)
            ok = tree_digest(target) == expected
            shutil.rmtree(target, ignore_errors=True)
            rows.append(Row(tool.name, full[key], stored_full[key], incr[key], stored_incr[key], restore_s, ok))

        print()
        header = ("tool", "full backup", "stored", f"after {args.change:.0%} change", "added", "restore latest",
                  "restored = source")
        table = [header] + [(r.tool, f"{r.full_s:.1f} s", f"{r.full_bytes / 2**20:.1f} MiB", f"{r.incr_s:.1f} s",
                             f"{r.incr_bytes / 2**20:.1f} MiB", f"{r.restore_s:.1f} s",
                             "yes" if r.restored_ok else "NO")
                            for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for i, row in enumerate(table):
            print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)))
            if i == 0:
                print("  ".join("-" * w for w in widths))
        return 0 if all(r.restored_ok for r in rows) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True).stdout.split()
    return next((w for w in out if w[:1].isdigit()), "?")


if __name__ == "__main__":
    sys.exit(main())
