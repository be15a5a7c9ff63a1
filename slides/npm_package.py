"""Fetch one package from the npm registry, once, checked against its pinned SHA-512.

reveal.js (the decks) and axe-core (the accessibility checks of tests/ui) come this way: no npm or
node is needed, only the registry (``NPM_CONFIG_REGISTRY`` points at a mirror). The unpacked files are
kept in this Python environment, ``<sys.prefix>/share/pytorch-workflow/<name>-<version>/``, so later
builds and test runs need no network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path


def home(name: str, version: str) -> Path:
    """Where this environment keeps the unpacked package."""
    return Path(sys.prefix) / "share" / "pytorch-workflow" / f"{name}-{version}"


def install(
    name: str, version: str, sha512: str, parts: tuple[str, ...], target: Path | None = None, offline_hint: str = ""
) -> Path:
    """Unpack the files of ``name@version`` whose paths start with one of ``parts`` into ``target``.

    ``sha512`` is the base64 digest of the tarball, the "integrity" field the registry publishes
    (without its ``sha512-`` prefix). Returns ``target`` (default :func:`home`); when the first of
    ``parts`` is already there, nothing is downloaded. Exits with one line when the download fails or
    does not match the digest; ``offline_hint`` is added to the message (another way to get the files).
    """
    target = target or home(name, version)
    if (target / parts[0]).exists():
        return target
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            tarball = response.read()
    except OSError as err:
        sys.exit(
            f"could not download {name} {version} from {url} ({err}); connect to the network once "
            f"(the copy is kept afterwards).{' ' + offline_hint if offline_hint else ''}"
        )
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != sha512:
        sys.exit(f"the {name} download from {url} does not match its pinned SHA-512; not using it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        unpacked = Path(tmp) / "package"
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for member in archive.getmembers():
                path = member.name.removeprefix("package/")
                if member.isfile() and path.startswith(parts) and ".." not in Path(path).parts:
                    out = unpacked / path
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.extractfile(member).read())
        if not (target / parts[0]).exists():  # another process may have finished first
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
    print(f"{name} {version} installed in {target}")
    return target
