#!/usr/bin/env python3
"""Builds gov's test wheelhouse: small, pure-Python, deterministic wheels.

Usage: build_wheelhouse.py OUT_DIR

The tests run the real uv offline (UV_OFFLINE=1, UV_FIND_LINKS=OUT_DIR), so every package
they lock and install comes from here. Two kinds of wheels:

- the seed packages `uv venv --seed` installs (pip, setuptools, wheel on Python < 3.12):
  the real wheels, pinned, fetched from PyPI with the host's pip when the wheelhouse is
  built (offline, uv cannot seed a venv without them);
- stand-ins for what ComfyUI and its custom nodes depend on, built here. The wheels are real wheels (METADATA with Requires-Dist, WHEEL, RECORD with
hashes, an importable top-level module) but tiny, and byte-for-byte reproducible (fixed
timestamps, fixed file order), so hashes recorded in a uv.lock stay valid across runs.

Each package's module exposes `__version__`; `broken-import` raises ImportError on import
(a custom node whose dependency is broken); the names and version pins mirror the real
packages ComfyUI and its custom nodes depend on, shrunk to what the scenarios need.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile

# (name, version, import name, requires-dist, module source or None for the default)
PACKAGES: list[tuple[str, str, str, list[str], str | None]] = [
    # The core of a ComfyUI environment.
    ("torch", "2.1.0", "torch", ["filelock", "typing-extensions>=4.8.0"], None),
    ("torch", "2.3.1", "torch", ["filelock", "typing-extensions>=4.8.0"], None),
    ("torchvision", "0.16.0", "torchvision", ["numpy", "pillow>=5.3.0,!=8.3.*", "torch==2.1.0"], None),
    ("torchvision", "0.18.1", "torchvision", ["numpy", "pillow>=5.3.0,!=8.3.*", "torch==2.3.1"], None),
    ("torchaudio", "2.1.0", "torchaudio", ["torch==2.1.0"], None),
    ("torchaudio", "2.3.1", "torchaudio", ["torch==2.3.1"], None),
    ("filelock", "3.15.4", "filelock", [], None),
    ("typing-extensions", "4.12.2", "typing_extensions", [], None),
    ("numpy", "1.26.4", "numpy", [], None),
    ("numpy", "2.1.0", "numpy", [], None),
    ("pillow", "10.4.0", "PIL", [], None),
    ("pyyaml", "6.0.2", "yaml", [], None),
    ("safetensors", "0.4.3", "safetensors", [], None),
    ("psutil", "6.0.0", "psutil", [], None),
    ("tqdm", "4.66.4", "tqdm", [], None),
    ("einops", "0.7.0", "einops", [], None),
    ("einops", "0.8.0", "einops", [], None),
    # A plain dependency chain (what most custom nodes add).
    (
        "requests",
        "2.32.3",
        "requests",
        [
            "charset-normalizer<4,>=2",
            "idna<4,>=2.5",
            "urllib3<3,>=1.21.1",
            "certifi>=2017.4.17",
            'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
        ],
        None,
    ),
    ("pysocks", "1.7.1", "socks", [], None),
    ("charset-normalizer", "3.3.2", "charset_normalizer", [], None),
    ("idna", "3.7", "idna", [], None),
    ("urllib3", "2.2.2", "urllib3", [], None),
    ("certifi", "2024.7.4", "certifi", [], None),
    ("opencv-python", "4.10.0.84", "cv2", ["numpy>=1.26"], None),
    ("kornia", "0.7.3", "kornia", ["torch>=1.9.1", "packaging"], None),
    ("packaging", "24.1", "packaging", [], None),
    # Two custom-node dependencies whose pins cannot both hold.
    ("sortedcontainers", "2.3.0", "sortedcontainers", [], None),
    ("sortedcontainers", "2.4.0", "sortedcontainers", [], None),
    ("conflict-a", "1.0", "conflict_a", ["sortedcontainers==2.3.0"], None),
    ("conflict-b", "1.0", "conflict_b", ["sortedcontainers==2.4.0"], None),
    # Dependencies that pull the core somewhere else.
    ("needs-numpy2", "1.0", "needs_numpy2", ["numpy>=2"], None),
    ("needs-numpy1", "1.0", "needs_numpy1", ["numpy<2"], None),
    ("needs-torch231", "1.0", "needs_torch231", ["torch==2.3.1"], None),
    ("needs-torch210", "1.0", "needs_torch210", ["torch==2.1.0"], None),
    # Installs fine, fails when imported (a smoke test must catch it).
    (
        "broken-import",
        "1.0",
        "broken_import",
        [],
        'raise ImportError("broken_import 1.0 is broken on purpose (gov test wheelhouse)")\n',
    ),
]

# What `uv venv --seed` installs (uv 0.13.8: pip, plus setuptools and wheel below Python
# 3.12). Pinned so every run seeds the same venv; wheel 0.45.1 is the last without a
# dependency on packaging (which the stand-ins below already provide, importable or not).
SEED_PACKAGES = ["pip==25.0.1", "setuptools==75.8.0", "wheel==0.45.1"]

# 1980-01-01, the earliest date a zip can hold: every entry gets it, so builds repeat.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_stem(name: str) -> str:
    """Name as it appears in wheel and dist-info file names."""
    return normalize(name).replace("-", "_")


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def metadata_text(name: str, version: str, requires: list[str]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: Stand-in for {name} {version} in gov's test wheelhouse",
        "Requires-Python: >=3.8",
    ]
    extras = sorted({r.split("extra ==", 1)[1].strip().strip("'\"") for r in requires if "extra ==" in r})
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n\n"


def module_text(name: str, version: str, module: str) -> str:
    return (
        f'"""Stand-in for {name} {version} (gov test wheelhouse)."""\n\n'
        f'__version__ = "{version}"\n'
        f'__fake_distribution__ = "{normalize(name)}"\n'
    )


def build_wheel(out_dir: str, name: str, version: str, module: str, requires: list[str],
                source: str | None) -> str:
    stem = wheel_stem(name)
    dist_info = f"{stem}-{version}.dist-info"
    files: list[tuple[str, bytes]] = [
        (f"{module}/__init__.py", (source or module_text(name, version, module)).encode()),
        (f"{dist_info}/METADATA", metadata_text(name, version, requires).encode()),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: gov-build-wheelhouse\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n\n",
        ),
        (f"{dist_info}/top_level.txt", f"{module}\n".encode()),
    ]
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, data)
    filename = f"{stem}-{version}-py3-none-any.whl"
    with open(os.path.join(out_dir, filename), "wb") as handle:
        handle.write(buffer.getvalue())
    return filename


def fetch_seed_packages(out_dir: str) -> list[str]:
    """Downloads the pinned seed wheels from PyPI into out_dir; returns their file names."""
    before = set(os.listdir(out_dir))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--only-binary=:all:", "--dest", out_dir, *SEED_PACKAGES],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"build_wheelhouse.py: cannot fetch the seed packages {SEED_PACKAGES} "
                         f"from PyPI (pip exit {result.returncode}):\n{tail}")
    return sorted(set(os.listdir(out_dir)) - before)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: build_wheelhouse.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    index = []
    for name, version, module, requires, source in PACKAGES:
        filename = build_wheel(out_dir, name, version, module, requires, source)
        index.append({"name": normalize(name), "version": version, "file": filename,
                      "module": module, "requires_dist": requires})
    for filename in fetch_seed_packages(out_dir):
        name, version = filename.split("-")[:2]
        index.append({"name": normalize(name), "version": version, "file": filename,
                      "module": None, "requires_dist": None, "seed": True})
    # Not read by uv: lets tests and people see what the wheelhouse offers without unzipping.
    with open(os.path.join(out_dir, "wheelhouse.json"), "w", encoding="utf-8") as handle:
        json.dump(index, handle, indent=2)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
