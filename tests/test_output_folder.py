"""Editions never delete or overwrite what a person made (tools/output_folder.py, tools/student_edition.py, make student)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import output_folder  # noqa: E402
import student_edition  # noqa: E402
from output_folder import MANIFEST, OutputFolderError, building, publish  # noqa: E402


def build_into(out: Path, files: dict[str, str], *, force: bool = False) -> list[str]:
    with building(out) as folder:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        return publish(folder, out, tool="test edition", force=force)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".building-" in p.name or ".old-" in p.name)


def test_a_new_or_empty_folder_gets_the_edition_and_a_manifest(tmp_path):
    for out in (tmp_path / "new" / "edition", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        assert build_into(out, {"a.txt": "1", "sub/b.txt": "2"}) == []
        assert snapshot(out).keys() == {"a.txt", "sub/b.txt", MANIFEST}
        assert set(json.loads((out / MANIFEST).read_text())["files"]) == {"a.txt", "sub/b.txt"}
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "new") == []


def test_an_unchanged_edition_is_replaced_by_the_new_one(tmp_path):
    out = tmp_path / "edition"
    build_into(out, {"a.txt": "old", "gone.txt": "x"})
    build_into(out, {"a.txt": "new"})
    assert snapshot(out) == {"a.txt": b"new", MANIFEST: (out / MANIFEST).read_bytes()}
    assert leftovers(tmp_path) == []


def test_edits_and_added_files_stop_the_build_and_nothing_changes(tmp_path):
    out = tmp_path / "edition"
    build_into(out, {"01.ipynb": "reference", "02.ipynb": "reference"})
    (out / "01.ipynb").write_text("my answers")
    (out / "notes.md").write_text("my notes")
    before = snapshot(out)
    with pytest.raises(OutputFolderError) as error:
        build_into(out, {"01.ipynb": "new", "02.ipynb": "new"})
    message = str(error.value)
    assert "nothing was changed" in message and "edited since the last build: 01.ipynb" in message
    assert "added since the last build: notes.md" in message and "FORCE=1" in message
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_force_keeps_every_edit_under_a_new_name_and_deletes_nothing(tmp_path):
    out = tmp_path / "edition"
    build_into(out, {"01.ipynb": "reference", "02.ipynb": "reference"})
    (out / "01.ipynb").write_text("my answers")
    (out / "notes.md").write_text("my notes")
    (out / "03.ipynb").write_text("my own 03")  # a file the new edition also writes
    kept = build_into(out, {"01.ipynb": "new", "02.ipynb": "new", "03.ipynb": "new"}, force=True)
    files = snapshot(out)
    mine = {name: data for name, data in files.items() if ".mine-" in name}
    assert sorted(data for data in mine.values()) == [b"my answers", b"my own 03"]
    assert files["notes.md"] == b"my notes" and files["01.ipynb"] == b"new" and files["03.ipynb"] == b"new"
    assert len(kept) == 3 and any("notes.md" in line for line in kept)
    # forcing twice in a row keeps the earlier backups too (new names, never overwritten)
    (out / "01.ipynb").write_text("second answers")
    build_into(out, {"01.ipynb": "newer", "02.ipynb": "new", "03.ipynb": "new"}, force=True)
    assert sorted(d for n, d in snapshot(out).items() if ".mine-" in n) == [b"my answers", b"my own 03", b"second answers"]


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_the_tool_did_not_make_is_never_written_into(tmp_path, force):
    project = tmp_path / "project"  # like `.`: a repository with its own files
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (project / "README.md").write_text("mine")
    before = snapshot(project)
    with pytest.raises(OutputFolderError, match="not written by this tool"):
        build_into(project, {"README.md": "edition"}, force=force)
    assert snapshot(project) == before and leftovers(tmp_path) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        build_into(tmp_path / "file", {"a": "b"}, force=force)


def test_a_failed_build_leaves_no_temporary_folder(tmp_path):
    with pytest.raises(ZeroDivisionError), building(tmp_path / "edition") as folder:
        (folder / "half.txt").write_text("half")
        1 / 0  # noqa: B018
    assert list(tmp_path.iterdir()) == []


def test_the_student_edition_refuses_the_repository_itself(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), src / "01_x.ipynb")
    (tmp_path / "keep.txt").write_text("mine")
    assert student_edition.main([str(src), str(tmp_path)]) == 1  # `tools/student_edition.py notebooks .`
    assert (tmp_path / "keep.txt").read_text() == "mine" and (src / "01_x.ipynb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "notebooks"]


@pytest.mark.skipif(shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "python").exists(),
                    reason="needs make and the course's .venv (make setup)")
def test_make_student_twice_keeps_a_students_file_and_edit(tmp_path):
    out = tmp_path / "student"

    def make_student(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-s", "student", f"STUDENT_DIR={out}", *extra], cwd=ROOT, capture_output=True, text=True)

    assert make_student().returncode == 0
    notebook = next(out.glob("01_*.ipynb"))
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("my answer, written in JupyterLab"))
    nbformat.write(nb, notebook)
    (out / "my_notes.txt").write_text("notes")
    edited = notebook.read_bytes()
    second = make_student()
    assert second.returncode != 0 and "nothing was changed" in second.stderr
    assert notebook.read_bytes() == edited and (out / "my_notes.txt").read_text() == "notes"
    assert make_student("FORCE=1").returncode == 0
    backups = list(out.glob(f"{notebook.stem}.mine-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == edited
    assert (out / "my_notes.txt").read_text() == "notes"
    assert "my answer" not in notebook.read_text(), "the fresh edition is back in place"


def test_no_tool_deletes_folders_it_did_not_make():
    """Every rmtree in tools/ and course_lib/ is one of the reviewed ones: output_folder.py's and web_assets.py's."""
    calls = []
    for path in list((ROOT / "tools").glob("*.py")) + list((ROOT / "course_lib").rglob("*.py")):
        for line in path.read_text().splitlines():
            if "rmtree(" in line and not line.lstrip().startswith("#"):
                calls.append(f"{path.relative_to(ROOT)}:{line.strip()}")
    reviewed = {
        "tools/output_folder.py:shutil.rmtree(old)  # the previous edition: made by this tool, checked unchanged just above",
        "tools/output_folder.py:shutil.rmtree(built)  # the temporary folder this tool made",
        "tools/output_folder.py:shutil.rmtree(folder, ignore_errors=True)",
        # make web: both folders are mkdtemp()s of the same call; `old` holds the previous install, which had the stamp
        "tools/web_assets.py:shutil.rmtree(old)  # the previous install, made by this tool (it had the stamp)",
        "tools/web_assets.py:shutil.rmtree(fresh)  # the temporary folder made above by this call (a failed npm ci leaves nothing)",
    }
    assert set(calls) <= reviewed, calls
    assert output_folder.MANIFEST == ".course-edition.json"
