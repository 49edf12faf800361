"""newman, Postman's command-line runner (npm registry), to run ESA's AUXIP conformance collection unchanged."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auxip_testing.cache import cached_dir
from auxip_testing.process import require_binary

NEWMAN_VERSION = "6.2.2"
CONFORMANCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "conformance"
COLLECTION = CONFORMANCE_DIR / "auxip-cts.postman_collection.json"


def newman_binary() -> Path:
    """newman installed once per version under the cache (npm resolves it and its dependencies)."""

    def install(work: Path) -> None:
        npm = require_binary("npm", "npm", "installing newman")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(work),
             f"newman@{NEWMAN_VERSION}"],
            check=True,
        )  # fmt: skip

    return cached_dir(f"newman-{NEWMAN_VERSION}", install) / "node_modules" / ".bin" / "newman"


@dataclass(frozen=True)
class Assertion:
    request: str
    assertion: str
    error: str | None


@dataclass(frozen=True)
class NewmanRun:
    returncode: int
    assertions: list[Assertion]
    output: str

    @property
    def failures(self) -> list[Assertion]:
        return [a for a in self.assertions if a.error is not None]


def _environment(values: Mapping[str, str]) -> dict[str, Any]:
    return {"name": "auxip", "values": [{"key": k, "value": v, "enabled": True} for k, v in values.items()]}


def run_collection(
    environment: Mapping[str, str],
    data: Sequence[Mapping[str, str]],
    collection: Path = COLLECTION,
    folder: str | None = None,
    timeout: float = 600,
) -> NewmanRun:
    """Run `collection` with an environment and an iteration data file; every assertion's outcome is returned."""
    if not collection.is_file():
        raise FileNotFoundError(f"{collection} is missing: the conformance suite lives in shared/conformance/")
    with tempfile.TemporaryDirectory(prefix="auxip-newman-") as tmp:
        work = Path(tmp)
        (work / "env.json").write_text(json.dumps(_environment(environment)))
        (work / "data.json").write_text(json.dumps(list(data)))
        argv = [
            str(newman_binary()), "run", str(collection),
            "--environment", str(work / "env.json"), "--iteration-data", str(work / "data.json"),
            "--reporters", "cli,json", "--reporter-json-export", str(work / "report.json"),
            "--disable-unicode", "--color", "off", "--timeout-request", "30000",
        ]  # fmt: skip
        if folder:
            argv += ["--folder", folder]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        report = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    assertions = [
        Assertion(
            request=execution["item"]["name"],
            assertion=item["assertion"],
            error=(item.get("error") or {}).get("message"),
        )
        for execution in report.get("run", {}).get("executions", [])
        for item in execution.get("assertions", [])
    ]
    return NewmanRun(result.returncode, assertions, result.stdout + result.stderr)
