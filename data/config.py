"""Hydra-style `group=option key=value` command lines, composed with clear one-line errors.

Both `python -m data.prepare` and `python -m search.run` go through `compose`: it hands the
arguments to Hydra's compose API (so config groups, defaults lists and overrides behave as
Hydra documents them) and turns Hydra's multi-line exceptions into a `ConfigError` whose
message names the bad group, key or value and lists the valid ones.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ConfigError", "compose", "run_cli", "require"]


class ConfigError(ValueError):
    """A bad group, key or value on the command line or in a config file."""


def compose(config_module: str, config_name: str, argv: Sequence[str]) -> Any:
    """Compose `config_name` from the package `config_module` with Hydra overrides `argv`.

    Returns a read-only OmegaConf DictConfig. Raises ConfigError with one readable line.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    overrides = [a for a in argv if a.strip()]
    for arg in overrides:
        if "=" not in arg and not arg.startswith("~"):  # ~key deletes a key, as in Hydra
            raise ConfigError(
                f"argument {arg!r} is not of the form group=option, key=value or ~key"
            )
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=config_module, version_base=None):
            try:
                cfg = hydra_compose(config_name=config_name, overrides=overrides)
            except Exception as exc:  # Hydra raises several unrelated exception types
                raise ConfigError(_one_line(exc, overrides, config_module, config_name)) from exc
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _one_line(exc: Exception, overrides: Sequence[str], module: str, name: str) -> str:
    text = str(exc)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.group(1), missing.group(2)
        options = re.findall(r"^\t(\S+)$", text, flags=re.MULTILINE)
        valid = ", ".join(options) if options else _group_options(module, group)
        return f"{group}={option}: unknown option for '{group}'; valid choices: {valid}"
    key = re.search(r"Key '([^']+)' is not in struct", text) or re.search(
        r"Could not override '([^']+)'", text
    )
    if key:
        full = re.search(r"full_key: (\S+)", text)
        bad = full.group(1) if full else key.group(1)
        parent = bad.rsplit(".", 1)[0] if "." in bad else ""
        others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != bad]
        valid = _valid_keys(module, name, others, parent)
        where = f" under '{parent}'" if parent else ""
        return f"{bad}: unknown key{where}; valid keys: {valid}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"bad configuration: {first}"


def _group_options(module: str, group: str) -> str:
    from importlib import resources

    try:
        folder = resources.files(module).joinpath(group)
        names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError):
        return "(none)"
    return ", ".join(names) or "(none)"


def _valid_keys(module: str, name: str, overrides: Sequence[str], parent: str) -> str:
    """The keys that exist at `parent`, composed from the group choices alone."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    choices = [o for o in overrides if "." not in o.split("=", 1)[0]]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=module, version_base=None):
            cfg = hydra_compose(config_name=name, overrides=choices)
    except Exception:
        return "(could not compose the defaults)"
    finally:
        GlobalHydra.instance().clear()
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not OmegaConf.is_dict(node):
        return "(none: it is not a mapping)"
    return ", ".join(sorted(str(k) for k in node))


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds: for value checks after composing."""
    if not condition:
        raise ConfigError(message)


def run_cli(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> None:
    """Run `main(argv)`; a ConfigError becomes one `error: ...` line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = main(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code or 0)
