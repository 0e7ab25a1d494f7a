"""The graded assignments, round trip, with nbgrader's own commands (``make assignments`` writes the
course; ``nbgrader autograde`` grades it): for every chapter with exercises, the instructor's
version scores full marks and the untouched students' version zero; in chapter 01 a version with
only the first exercise solved scores one point, and an answer that calls the package's own
implementation scores nothing. The students' version carries no solution and no hidden test."""

from __future__ import annotations

import copy

import pytest

from gensynth_course import assignments

pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install -e '.[teach]')")
import nbformat  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402

CHAPTERS = assignments.with_exercises()
CALLS_THE_PACKAGE = '''def alpha_bars(betas):
    from gensynth_course.models.diffusion.schedulers import DDPMScheduler
    return DDPMScheduler(betas).alpha_bars
'''


def _cell(notebook, grade_id: str):
    return next(cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    ids = assignments.write_course(root)
    for aid in ids:
        source = nbformat.read(root / "source" / aid / f"{aid}.ipynb", as_version=4)
        release = nbformat.read(root / "release" / aid / f"{aid}.ipynb", as_version=4)
        submissions = {"reference": source, "untouched": release}
        if aid == "ch01":                 # nbgrader scores cell by cell: shown once, with chapter 01
            partial = copy.deepcopy(release)
            _cell(partial, "exercise_1").source = _cell(source, "exercise_1").source
            submissions["partial"] = partial
            calling = copy.deepcopy(release)
            _cell(calling, "exercise_1").source = CALLS_THE_PACKAGE
            submissions["calling"] = calling
        for student, notebook in submissions.items():
            folder = root / "submitted" / student / aid
            folder.mkdir(parents=True)
            nbformat.write(notebook, folder / f"{aid}.ipynb")
    assignments.nbgrader(root, "autograde", "*", "--force")         # every assignment, every student
    return root


def test_every_chapter_with_exercises_has_an_assignment():
    assert [c.number for c in CHAPTERS] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.number for c in CHAPTERS])
def test_the_students_version_keeps_the_checkers_but_no_solution(course, chapter):
    aid = assignments.assignment_id(chapter)
    release = nbformat.read(course / "release" / aid / f"{aid}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in release.cells)
    reference = assignments.solutions(chapter)
    for exercise in assignments.exercises(chapter):
        body = assignments._split_function(getattr(reference, exercise.name))[1].strip()
        assert body not in text, f"{aid}: the solution of {exercise.name} is in the students' version"
        assert f"check.check_{exercise.name}({exercise.name})" in text
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "assert check." not in text


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.number for c in CHAPTERS])
def test_grading_gives_full_marks_and_zero_and_in_chapter_01_in_between(course, chapter):
    aid = assignments.assignment_id(chapter)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        maximum = gradebook.find_assignment(aid).max_score
        score = {student.student_id: student.score for student in gradebook.assignment_submissions(aid)}
    assert maximum == len(assignments.exercises(chapter)) >= 3
    assert score["reference"] == maximum
    assert score["untouched"] == 0
    if aid == "ch01":
        assert score["partial"] == 1
        assert score["calling"] == 0
