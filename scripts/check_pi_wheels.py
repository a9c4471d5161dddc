#!/usr/bin/env python3
"""Check that every runtime dependency installs as a binary wheel on a Raspberry Pi, from here.

For CPython 3.11 (Raspberry Pi OS Bookworm) on aarch64 (64-bit OS) and armv7l (32-bit OS), walks
the dependency tree of pyproject.toml with the markers evaluated for that machine, and fetches each
package with `pip download --only-binary=:all: --no-deps` for the platform tags the Pi accepts.
pip matches `manylinux_2_N` tags exactly, so every N from 17 to 36 is listed (Bookworm's glibc is
2.36). pip evaluates markers for the machine it runs on, not for --platform; that is why the tree
is walked here rather than by pip's resolver. Prints a table; exit 1 if a package has no wheel.

On 32-bit Raspberry Pi OS pip also reads piwheels.org (set in its /etc/pip.conf), which builds
armv7l wheels that PyPI lacks (numpy, pillow, cffi). Those are reported as "piwheels" unless
--armv7l-index URL is given, which then checks them there.

    scripts/check_pi_wheels.sh [--dest build/pi-wheels] [--armv7l-index https://www.piwheels.org/simple]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
PYTHON = "3.11"
GLIBC_MINORS = range(17, 37)
# Compiled packages PyPI has no armv7l wheels for; 32-bit Raspberry Pi OS gets them from piwheels.
PIWHEELS_ONLY = {"numpy", "pillow", "cffi"}


@dataclass
class Machine:
    name: str
    extra_index: str | None = None
    found: dict[str, str] = field(default_factory=dict)  # package -> wheel file name
    missing: dict[str, str] = field(default_factory=dict)  # package -> requirement

    def platforms(self) -> list[str]:
        tags = [f"manylinux_2_{n}_{self.name}" for n in GLIBC_MINORS] + [f"manylinux2014_{self.name}"]
        return tags + ([f"linux_{self.name}"] if self.name == "armv7l" else [])

    def environment(self) -> dict[str, str]:
        return {"platform_machine": self.name, "python_version": PYTHON,
                "python_full_version": f"{PYTHON}.2", "sys_platform": "linux",
                "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
                "platform_python_implementation": "CPython", "extra": ""}

    def applies(self, req: Requirement) -> bool:
        return req.marker is None or Marker(str(req.marker)).evaluate(self.environment())


def project_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode("utf-8", "replace")
    reqs = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or "extra" not in str(req.marker):
                reqs.append(req)
    return reqs


def pip_download(machine: Machine, specs: list[str], dest: Path) -> bool:
    """Fetch these packages' wheels for the machine (pip keeps files it already has)."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--no-deps", "--python-version", PYTHON, "--implementation", "cp",
           "--abi", f"cp{PYTHON.replace('.', '')}", "-d", str(dest), *specs]
    for tag in machine.platforms():
        cmd += ["--platform", tag]
    if machine.extra_index:
        cmd += ["--extra-index-url", machine.extra_index]
    return subprocess.run(cmd, capture_output=True, text=True).returncode == 0


def wheel_for(spec: str, dest: Path) -> Path | None:
    """The newest wheel in dest that satisfies spec (earlier runs may have left other versions)."""
    req = Requirement(spec)
    wheels = [w for w in dest.glob("*.whl")
              if canonicalize_name(parse_wheel_filename(w.name)[0]) == canonicalize_name(req.name)
              and req.specifier.contains(parse_wheel_filename(w.name)[1], prereleases=True)]
    return max(wheels, key=lambda w: parse_wheel_filename(w.name)[1]) if wheels else None


def walk(machine: Machine, dest: Path) -> None:
    """Level by level over the dependency tree, markers evaluated for `machine`.

    One pip call per level; only when it fails is each package of the level tried alone, to
    name the ones without a wheel.
    """
    specs: dict[str, SpecifierSet] = {}
    level = [r for r in project_requirements() if machine.applies(r)]
    while level:
        wanted = {}
        for req in level:
            name = canonicalize_name(req.name)
            merged = specs.get(name, SpecifierSet()) & req.specifier
            if name not in specs or merged != specs[name]:
                specs[name] = wanted[name] = merged
        batch = [f"{name}{spec}" for name, spec in wanted.items()]
        if batch and not pip_download(machine, batch, dest):
            for spec in batch:
                pip_download(machine, [spec], dest)
        level = []
        for name, spec in wanted.items():
            wheel = wheel_for(f"{name}{spec}", dest)
            if wheel is None:
                machine.missing[name] = f"{name}{spec}"
                machine.found.pop(name, None)
                continue
            machine.missing.pop(name, None)
            machine.found[name] = wheel.name
            level += [r for r in wheel_requirements(wheel) if machine.applies(r)]


def describe(wheel_name: str) -> str:
    _, version, _, tags = parse_wheel_filename(wheel_name)
    platform_tags = sorted({t.platform for t in tags})
    # manylinux_2_27 is the glibc it needs: Bookworm has 2.36, Bullseye 2.31.
    glibc = [re.sub(r"_(aarch64|armv7l)$", "", p) for p in platform_tags if p != "any"]
    return f"{version} ({', '.join(glibc) or 'any'})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=ROOT / "build" / "pi-wheels",
                    help="where the wheels go (default build/pi-wheels/<machine>/)")
    ap.add_argument("--armv7l-index", default=None,
                    help="extra index for armv7l, e.g. https://www.piwheels.org/simple")
    args = ap.parse_args()
    machines = [Machine("aarch64"), Machine("armv7l", args.armv7l_index)]
    for m in machines:
        print(f"resolving for cp311 {m.name} ...", file=sys.stderr, flush=True)
        (args.dest / m.name).mkdir(parents=True, exist_ok=True)
        walk(m, args.dest / m.name)
    names = sorted({*machines[0].found, *machines[0].missing, *machines[1].found, *machines[1].missing})
    print(f"| package | {' | '.join(f'{m.name} (cp311)' for m in machines)} |")
    print("|---|" + "---|" * len(machines))
    failed = []
    for name in names:
        cells = []
        for m in machines:
            if name in m.found:
                cells.append(describe(m.found[name]))
            elif name in m.missing and m.name == "armv7l" and name in PIWHEELS_ONLY and not m.extra_index:
                cells.append("piwheels (no armv7l wheel on PyPI)")
            elif name in m.missing:
                cells.append(f"**MISSING** {m.missing[name]}")
                failed.append(f"{m.name}: {m.missing[name]}")
            else:
                cells.append("not needed")
        print(f"| {name} | {' | '.join(cells)} |")
    if failed:
        print(f"no binary wheel for: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"every runtime dependency has a cp311 wheel (wheels in {args.dest})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
