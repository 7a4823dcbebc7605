"""The TOML loader builds frozen dataclasses and rejects unknown keys and wrong types by name."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from muse.core.config_loader import config_from_dict, config_to_dict, dump_toml, load_config
from muse.core.errors import ConfigError


class Kind(enum.Enum):
    ALPHA = "alpha"
    BETA = "beta"


@dataclass(frozen=True)
class Inner:
    width: int = 16
    rate: float = 0.1


@dataclass(frozen=True)
class Outer:
    name: str
    kind: Kind = Kind.ALPHA
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = (256, 128)
    note: str | None = None
    enabled: bool = True


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_loads_nested_enum_tuple_and_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "x"\nkind = "beta"\nsizes = [8, 4]\n[inner]\nwidth = 32\n')
    config = load_config(Outer, path)
    assert config == Outer(name="x", kind=Kind.BETA, inner=Inner(width=32), sizes=(8, 4))


def test_int_is_accepted_for_float_but_not_bool_for_int(tmp_path: Path) -> None:
    assert load_config(Outer, _write(tmp_path, 'name = "x"\n[inner]\nrate = 1\n')).inner.rate == 1.0
    with pytest.raises(ConfigError, match=r"inner\.width must be an integer"):
        load_config(Outer, _write(tmp_path, 'name = "x"\n[inner]\nwidth = true\n'))


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "x"\n[inner]\nwdth = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) inner\.wdth") as error:
        load_config(Outer, path)
    assert str(path) in str(error.value)


def test_wrong_type_and_bad_enum_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"name must be a string"):
        load_config(Outer, _write(tmp_path, "name = 3\n"))
    with pytest.raises(ConfigError, match=r"kind must be one of \['alpha', 'beta'\]"):
        load_config(Outer, _write(tmp_path, 'name = "x"\nkind = "gamma"\n'))


def test_missing_required_key_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing required key"):
        load_config(Outer, _write(tmp_path, "enabled = false\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "absent.toml")


def test_overrides_are_parsed_as_toml_and_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "x"\n')
    config = load_config(Outer, path, ["inner.width=64", "kind=beta", "sizes=[1, 2, 3]"])
    assert (config.inner.width, config.kind, config.sizes) == (64, Kind.BETA, (1, 2, 3))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) inner\.depth"):
        load_config(Outer, path, ["inner.depth=2"])


def test_round_trip_through_toml(tmp_path: Path) -> None:
    config = Outer(name="x", kind=Kind.BETA, inner=Inner(width=7, rate=0.5), note="n")
    text = dump_toml(config_to_dict(config))
    assert load_config(Outer, _write(tmp_path, text)) == config
    assert config_from_dict(Outer, config_to_dict(config)) == config


@dataclass(frozen=True)
class WithOptionalPath:
    extra: Path | None = Path("extra.toml")
    label: str | None = "x"


def test_an_empty_optional_path_means_none(tmp_path: Path) -> None:
    # TOML has no null, so `--set 'extra=""'` is how a user switches an optional file off.
    path = _write(tmp_path, "")
    assert load_config(WithOptionalPath, path).extra == Path("extra.toml")
    assert load_config(WithOptionalPath, path, ['extra=""']).extra is None
    assert load_config(WithOptionalPath, path, ['label=""']).label == ""


def test_several_problems_read_as_one_line() -> None:
    class Several(ConfigError):
        @property
        def problems(self) -> list[str]:
            return ["a.toml: first\n  wrapped", "a.toml: second", "a.toml: third"]

    assert ConfigError("a.toml: one  problem\nwrapped").one_line() == "a.toml: one problem wrapped"
    assert Several().one_line() == "a.toml: first wrapped (and 2 more problems)"
