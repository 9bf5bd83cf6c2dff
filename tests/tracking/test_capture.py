"""Tests for loopml.tracking.capture: git state, environment and installed packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.tracking.capture import GitInfo, capture_environment, capture_git, installed_packages

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

_IDENTITY = ["-c", "user.email=test@example.com", "-c", "user.name=Test", "-c", "commit.gpgsign=false"]


@pytest.fixture(autouse=True)
def _isolated_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's global git config (hooks, signing, templates) out of the tests."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *_IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "checkout", "-q", "-b", "main")
    (root / "train.py").write_text("print('hello')\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-q", "-m", "initial")
    return root


@needs_git
def test_clean_repo(repo: Path) -> None:
    info = capture_git(repo)
    assert isinstance(info, GitInfo)
    assert info.commit == _git(repo, "rev-parse", "HEAD")
    assert len(info.commit) == 40
    assert info.branch == "main"
    assert info.dirty is False
    assert info.diff is None
    assert Path(info.root).resolve() == repo.resolve()
    assert info.remote is None


@needs_git
def test_subdirectory_and_file_paths_find_the_root(repo: Path) -> None:
    sub = repo / "pkg"
    sub.mkdir()
    assert (info := capture_git(sub)) is not None
    assert Path(info.root).resolve() == repo.resolve()
    assert (info := capture_git(repo / "train.py")) is not None
    assert Path(info.root).resolve() == repo.resolve()


@needs_git
def test_default_path_is_cwd(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    info = capture_git()
    assert info is not None
    assert Path(info.root).resolve() == repo.resolve()


@needs_git
def test_modified_tracked_file_is_dirty_with_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('hello')\nprint('changed line')\n")
    info = capture_git(repo)
    assert info is not None
    assert info.dirty is True
    assert info.diff is not None
    assert "+print('changed line')" in info.diff
    assert "train.py" in info.diff


@needs_git
def test_staged_change_is_dirty(repo: Path) -> None:
    (repo / "train.py").write_text("staged\n")
    _git(repo, "add", "train.py")
    info = capture_git(repo)
    assert info is not None
    assert info.dirty is True
    assert info.diff is not None
    assert "+staged" in info.diff


@needs_git
def test_untracked_file_is_dirty(repo: Path) -> None:
    (repo / "notes.txt").write_text("scratch\n")
    info = capture_git(repo)
    assert info is not None
    assert info.dirty is True
    assert info.diff is not None
    assert info.diff.startswith("#")
    assert "notes.txt" in info.diff


@needs_git
def test_detached_head_has_no_branch(repo: Path) -> None:
    commit = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "--detach", commit)
    info = capture_git(repo)
    assert info is not None
    assert info.branch is None
    assert info.commit == commit


@needs_git
def test_remote_credentials_are_stripped(repo: Path) -> None:
    _git(repo, "remote", "add", "origin", "https://alice:s3cret@example.com/team/project.git")
    info = capture_git(repo)
    assert info is not None
    assert info.remote == "https://example.com/team/project.git"
    assert "s3cret" not in (info.remote or "")


@needs_git
def test_scp_style_remote_is_kept(repo: Path) -> None:
    _git(repo, "remote", "add", "origin", "git@example.com:team/project.git")
    info = capture_git(repo)
    assert info is not None
    assert info.remote == "git@example.com:team/project.git"


@needs_git
def test_outside_a_repo_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert capture_git(plain) is None


def test_missing_path_is_none(tmp_path: Path) -> None:
    assert capture_git(tmp_path / "does-not-exist") is None


def test_git_not_installed_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on PATH
    assert capture_git(tmp_path) is None


@needs_git
def test_large_diff_is_truncated(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loopml.tracking.capture as capture_module

    monkeypatch.setattr(capture_module, "_MAX_DIFF_BYTES", 200)
    (repo / "train.py").write_text("".join(f"line {i}\n" for i in range(200)))
    info = capture_git(repo)
    assert info is not None
    assert info.diff is not None
    assert "diff truncated" in info.diff.splitlines()[-1]
    assert len(info.diff.encode()) < 400


def test_environment_keys() -> None:
    env = capture_environment()
    assert set(env) == {
        "python.version",
        "python.implementation",
        "platform",
        "host",
        "user",
        "command",
        "cwd",
    }
    assert all(isinstance(v, str) and v for v in env.values())
    assert env["python.version"] == ".".join(str(p) for p in sys.version_info[:3])
    assert env["cwd"] == os.getcwd()


def test_environment_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--lr", "0.1 0.2"])
    assert capture_environment()["command"] == "train.py --lr '0.1 0.2'"
    monkeypatch.setattr(sys, "argv", [""])
    assert capture_environment()["command"] == "<interactive>"
    monkeypatch.setattr(sys, "argv", [])
    assert capture_environment()["command"] == "<interactive>"


def test_environment_user_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    def fail() -> str:
        raise OSError("no user")

    monkeypatch.setattr(getpass, "getuser", fail)
    assert capture_environment()["user"] == "unknown"


def test_installed_packages() -> None:
    text = installed_packages()
    lines = text.splitlines()
    assert lines
    assert all("==" in line for line in lines)
    names = [line.split("==", 1)[0] for line in lines]
    keys = [n.lower().replace("_", "-").replace(".", "-") for n in names]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert any(k == "pandas" for k in keys)
    assert installed_packages() is text  # cached per process
