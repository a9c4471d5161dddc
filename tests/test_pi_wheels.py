"""Every runtime dependency installs as a binary wheel on a Raspberry Pi (cp311 aarch64 / armv7l).

Runs scripts/check_pi_wheels.sh, which asks PyPI (through pip) for the Pi's platform tags.
"""

from __future__ import annotations

import subprocess

from conftest import ROOT


def test_every_runtime_dependency_has_a_pi_wheel(tmp_path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "check_pi_wheels.sh"), "--dest", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
            for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    # The runtime by machine: ai-edge-litert on 64-bit Pi OS, tflite-runtime 2.14 on 32-bit.
    def has_wheel(cell: str) -> bool:
        return cell[:1].isdigit()  # "2.3.0 (manylinux_2_27)"

    assert has_wheel(rows["ai-edge-litert"][0]) and rows["ai-edge-litert"][1] == "not needed"
    assert rows["tflite-runtime"] == ["not needed", "2.14.0 (manylinux_2_34)"]
    assert has_wheel(rows["numpy"][0]) and has_wheel(rows["pillow"][0])
