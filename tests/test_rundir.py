import json

import pytest

from ioprof.errors import IoprofError
from ioprof.rundir import FORMAT_VERSION, CollectorRecord, Manifest, RunDir, read_jsonl


def _manifest() -> Manifest:
    return Manifest(command=["python", "x.py"], cwd="/tmp", start_ns=1, host={"cpu_count": 2})


def test_create_refuses_a_non_empty_directory_and_keeps_its_files(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(IoprofError, match="not empty"):
        RunDir.create(target)
    assert (target / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in target.iterdir()) == ["precious.txt"]


def test_create_accepts_an_empty_directory(tmp_path):
    (tmp_path / "run").mkdir()
    run = RunDir.create(tmp_path / "run")
    assert (run.path / "host").is_dir()


def test_manifest_round_trip(tmp_path):
    run = RunDir.create(tmp_path / "run")
    manifest = _manifest()
    manifest.collectors["host"] = CollectorRecord(name="host", files=["host/samples.jsonl"])
    manifest.collectors["tf"] = CollectorRecord(name="tf")
    manifest.collectors["tf"].degrade("TensorFlow was not imported", "skipped")
    run.write_manifest(manifest)
    _, loaded = RunDir.open(run.path)
    assert loaded.format_version == FORMAT_VERSION
    assert loaded.collectors["host"].files == ["host/samples.jsonl"]
    assert loaded.collectors["tf"].status == "skipped"


def test_degrade_keeps_the_most_severe_status():
    record = CollectorRecord(name="x")
    record.degrade("first", "failed")
    record.degrade("second", "degraded")
    assert record.status == "failed"
    assert "first" in record.reason and "second" in record.reason


def test_unknown_major_version_is_refused_with_one_line(tmp_path):
    run = RunDir.create(tmp_path / "run")
    data = _manifest().to_json()
    data["format_version"] = "9.0"
    (run.path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IoprofError) as info:
        RunDir.open(run.path)
    assert "9.0" in info.value.message and "\n" not in info.value.message


def test_minor_version_with_extra_fields_is_read(tmp_path):
    run = RunDir.create(tmp_path / "run")
    data = _manifest().to_json()
    data["format_version"] = FORMAT_VERSION.split(".")[0] + ".7"
    data["a_future_field"] = {"x": 1}
    (run.path / "manifest.json").write_text(json.dumps(data))
    _, loaded = RunDir.open(run.path)
    assert loaded.command == ["python", "x.py"]


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"format": "other"}'])
def test_bad_manifests_give_clear_errors(tmp_path, content):
    run = RunDir.create(tmp_path / "run")
    (run.path / "manifest.json").write_text(content)
    with pytest.raises(IoprofError):
        RunDir.open(run.path)


def test_read_jsonl_tolerates_a_torn_last_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    records, bad = read_jsonl(path)
    assert records == [{"a": 1}, {"b": 2}] and bad == 1
