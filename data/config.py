"""Hydra-style `group=option key=value` command lines, composed with clear one-line errors.

Every command's arguments go through Hydra's compose API, so overrides behave as Hydra
documents them, and Hydra's multi-line exceptions become a `ConfigError` whose one line names
the bad group, key or value and lists the valid ones:

- `compose`: a config package with groups and a defaults list (`search.run`, `data.prepare`);
- `compose_schema`: a dataclass schema (a structured config, registered in Hydra's
  ConfigStore) for the commands without groups: types, enums and required keys (`MISSING`)
  are checked by the schema, and the command gets the dataclass instance back.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from types import UnionType
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "HelpRequested",
    "compose",
    "check_schema",
    "compose_schema",
    "own_arguments",
    "schema_help",
    "compose_help",
    "help_requested",
    "run_cli",
    "require",
    "TENSORFLOW_ENV",
    "tensorflow_env",
    "apply_tensorflow_env",
]

# The environment every entry point and every Ray worker gives TensorFlow before its first
# allocation; a value the user set wins. TF_CPP_MIN_LOG_LEVEL=2 keeps the C++ start-up lines
# (absl, cpu_feature_guard) from coming before a one-line error; warnings and errors still
# show. TF_CPU_ALLOCATOR_USE_BFC=true pools CPU tensors: without oneDNN (off by default on CPUs
# without AVX512-VNNI or AMX) every tensor otherwise gets fresh pages from the kernel, about
# 2,900 page faults per 256x1600 sample, which made the input pipeline 4-5x slower on such a
# machine. It changes where tensors live, not what any kernel computes. TensorFlow reads both
# at its first allocation, not at import, so setting them after `import tensorflow` still works.
TENSORFLOW_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_CPU_ALLOCATOR_USE_BFC": "true"}

HELP_FLAGS = ("--help", "-h")
CFG_FLAG = "--cfg"


class ConfigError(ValueError):
    """A bad group, key or value on the command line or in a config file."""


class HelpRequested(Exception):
    """`--help` (or `--cfg`): `run_cli` prints the text on stdout and exits 0."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def help_requested(argv: Sequence[str]) -> bool:
    return any(a in HELP_FLAGS or a == CFG_FLAG for a in argv)


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


def compose_schema(schema: type[T], argv: Sequence[str], usage: str) -> T:
    """The dataclass `schema` with `key=value` overrides `argv`, checked by Hydra/OmegaConf.

    `--help` raises HelpRequested with `usage` and every key's type and default. A bad key,
    a value of the wrong type, a choice outside an enum, or a required key left out raises
    ConfigError with one line that names it (and lists the valid keys or choices).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    if help_requested(argv):
        raise HelpRequested(schema_help(schema, usage))
    overrides = [a for a in argv if a.strip()]
    for arg in overrides:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not of the form key=value")
    name = f"{schema.__module__}.{schema.__qualname__}"
    ConfigStore.instance().store(name=name, node=schema)
    GlobalHydra.instance().clear()
    try:
        with initialize(version_base=None):
            try:
                cfg = hydra_compose(config_name=name, overrides=overrides)
            except Exception as exc:  # Hydra raises several unrelated exception types
                raise ConfigError(_schema_error(exc, schema)) from None
    finally:
        GlobalHydra.instance().clear()
    import dataclasses

    unset = OmegaConf.missing_keys(cfg)
    missing = [f.name for f in dataclasses.fields(schema) if f.name in unset]
    if missing:
        raise ConfigError(f"missing {', '.join(f'{k}=...' for k in missing)} (required)")
    return OmegaConf.to_object(cfg)


def own_arguments(schema: type, argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """`argv` split into the `key=value` arguments of `schema`'s keys and the rest, for a
    command that passes the rest on to another (e.g. `search.bench.chaos` to `search.run`)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(schema)}
    own = [a for a in argv if a.partition("=")[0] in names]
    return own, [a for a in argv if a not in own]


def _schema_error(exc: Exception, schema: type, *, prefix: str = "", value: Any = None) -> str:
    """One line for OmegaConf's/Hydra's complaint about a key of `schema`: the key (under
    `prefix`), its value and what it should be (the valid keys or choices)."""
    import dataclasses

    text = f"{exc}\n{exc.__cause__ or ''}"
    key = re.search(r"full_key: (\S+)", text)
    key_name = prefix + (key.group(1) if key else "?")
    given = re.search(r"override \S+?=(.*)$", str(exc), flags=re.MULTILINE)
    if given:
        shown = f"{key_name}={given.group(1)}"
    else:
        bad = re.search(r"Value '([^']*)'|Invalid value '([^']*)'", text)
        shown = f"{key_name}={next(g for g in bad.groups() if g is not None)}" if bad else key_name
    valid = ", ".join(f.name for f in dataclasses.fields(schema))
    if re.search(r"Key '[^']+' not in|Could not override", text):
        return f"{key_name}: unknown key; valid keys: {valid}"
    if "Missing mandatory value" in text:
        return (
            f"{key_name}: missing (every key of {prefix.rstrip('.') or 'the config'} is required)"
        )
    choices = re.search(r"expected one of \[([^\]]*)\]", text)
    if choices:
        return f"{shown}: expected one of {choices.group(1)}"
    if "not a valid bool" in text:
        return f"{shown}: expected true or false"
    kind = re.search(r"could not be converted to (\w+)", text)
    if kind:
        number = {"Integer": "a whole number (int)", "Float": "a number (float)"}
        return f"{shown}: expected {number.get(kind.group(1), kind.group(1))}"
    if "is not a ListConfig, list or tuple" in text:
        return f"{shown}: expected a list, e.g. {key_name}=[...] (quoted in a shell)"
    if "Non optional field cannot be assigned None" in text:
        return f"{key_name}=null: expected a value (it cannot be null)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{shown}: {first}"


def check_schema(schema: type, values: Any, *, prefix: str = "") -> dict[str, Any]:
    """`values` (a mapping of a composed config) merged into the dataclass `schema`: every key
    known, typed and within its enum, else ConfigError with one line naming `prefix`+key.

    Returns plain containers, enums as their string values."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        checked = OmegaConf.merge(OmegaConf.structured(schema), values)
        missing = sorted(OmegaConf.missing_keys(checked))
        if missing:
            raise ConfigError(
                f"{prefix}{missing[0]}: missing (the {schema.__name__} keys are required)"
            )
        return OmegaConf.to_container(checked, resolve=True, enum_to_str=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(_schema_error(exc, schema, prefix=prefix)) from None


def _type_names(kind: Any) -> list[str]:
    """How `--help` names a field's type: an enum's choices, a union's members, int, str..."""
    import enum
    import typing

    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(m.value) for m in kind]
    members = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, UnionType) else ()
    if members:
        return [name for member in members for name in _type_names(member)]
    if kind is type(None):
        return ["null"]
    return [getattr(kind, "__name__", None) or str(kind).replace("typing.", "")]


def schema_help(schema: type, usage: str) -> str:
    """`--help` of a schema command: usage, then every key with its type and default."""
    import dataclasses
    import enum
    import typing

    hints = typing.get_type_hints(schema)
    lines = [usage.strip(), "", "keys (key=value) and their defaults:"]
    for field in dataclasses.fields(schema):
        kind_text = " | ".join(_type_names(hints[field.name]))
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            default = "(no default)"
        else:
            value = (
                field.default
                if field.default is not dataclasses.MISSING
                else field.default_factory()
            )
            value = value.value if isinstance(value, enum.Enum) else value
            default = repr(value)
        required = " (required)" if default == "'???'" else ""
        shown = f"{field.name}=...{required}" if required else f"{field.name}={default}"
        lines.append(f"  {shown}  [{kind_text}]")
    return "\n".join(lines)


def _one_line(exc: Exception, overrides: Sequence[str], module: str, name: str) -> str:
    # Hydra's own message names the override; its cause names the key inside it that failed.
    text = str(exc) + (f"\n{exc.__cause__}" if exc.__cause__ is not None else "")
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
        valid = _valid_keys(module, name, others, parent) or "none"
        mappings = [
            o.split("=", 1)[0].lstrip("+~")
            for o in overrides
            if "=" in o and o.split("=", 1)[1].lstrip().startswith("{")
        ]
        if parent in mappings:  # key={mapping} with a key the mapping does not have yet
            return (
                f"{parent}: {bad.rsplit('.', 1)[1]!r} is not one of its keys (valid: {valid}); "
                f"add a new key with +{bad}=VALUE"
            )
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


def compose_help(config_module: str, config_name: str, argv: Sequence[str], usage: str) -> str:
    """`--help`: usage, every group with its options, and the composed keys with defaults.

    `--cfg`: the resolved config alone (the other arguments applied), without running.
    """
    from omegaconf import OmegaConf

    overrides = [a for a in argv if a not in HELP_FLAGS and a != CFG_FLAG]
    cfg = compose(config_module, config_name, overrides)
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    if CFG_FLAG in argv and not any(a in HELP_FLAGS for a in argv):
        return resolved.rstrip()
    lines = [usage.strip(), "", "groups (group=option; the current choice in brackets):"]
    for group, (chosen, options) in _groups(config_module, config_name, overrides).items():
        listed = ", ".join(f"[{o}]" if o == chosen else o for o in options)
        lines.append(f"  {group}: {listed}")
    lines += [
        "",
        "keys (key=value; a mapping's keys as parent.key=value), with their defaults for",
        "the choices above; --cfg prints this resolved config alone:",
        "",
        resolved.rstrip(),
    ]
    return "\n".join(lines)


def _groups(module: str, name: str, overrides: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
    """group -> (current choice, every option), search-path groups included."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=module, version_base=None):
            full = hydra_compose(
                config_name=name, overrides=list(overrides), return_hydra_config=True
            )
            loader = GlobalHydra.instance().config_loader()
            modules = [module] + [
                str(p)[len("pkg://") :]
                for p in full.hydra.searchpath
                if str(p).startswith("pkg://")
            ]
            groups = {}
            for group, chosen in sorted(full.hydra.runtime.choices.items()):
                if group.startswith("hydra"):
                    continue
                options = sorted(loader.get_group_options(group))
                for other in modules:
                    if options:
                        break
                    found = _group_options(other, group)
                    options = [] if found == "(none)" else found.split(", ")
                groups[group] = (str(chosen), options)
            return groups
    finally:
        GlobalHydra.instance().clear()


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds: for value checks after composing."""
    if not condition:
        raise ConfigError(message)


def offer_help(config_module: str, config_name: str, argv: Sequence[str], usage: str) -> None:
    """Raise HelpRequested (run_cli prints it, exit 0) when argv asks for --help or --cfg."""
    if help_requested(argv):
        raise HelpRequested(compose_help(config_module, config_name, argv, usage))


def tensorflow_env() -> dict[str, str]:
    """TENSORFLOW_ENV with the values this process's environment already gives: what a Ray
    worker's runtime environment should carry."""
    return {key: os.environ.get(key, value) for key, value in TENSORFLOW_ENV.items()}


def apply_tensorflow_env() -> None:
    """Set TENSORFLOW_ENV's keys the user has not set, before TensorFlow allocates."""
    for key, value in TENSORFLOW_ENV.items():
        os.environ.setdefault(key, value)


def run_cli(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> None:
    """Run `main(argv)`; a ConfigError becomes one `error: ...` line on stderr and exit code 2,
    an OSError (a full or read-only disk) one `error: ...` line naming the file and exit 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    apply_tensorflow_env()
    try:
        code = main(args)
    except HelpRequested as shown:
        print(shown.text)
        raise SystemExit(0) from None
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        # The disk, not the input: full (ENOSPC, EFBIG), read-only (EROFS), not ours (EACCES,
        # EPERM). One line naming the file, exit code 1; whatever was being written stays a
        # temporary that no reader takes for a finished file.
        print(
            f"error: cannot write or read {exc.filename or 'a file'}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    raise SystemExit(code or 0)
