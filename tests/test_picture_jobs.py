"""The picture line: first come, first served, honest about the wait, cancellable at any
point, on the real pipelines (demo models). The tests hold the pipelines' own lock to keep a
picture "being made" for as long as they look at the line, so nothing depends on timing."""

import pytest

from engine.backends import embedded_pictures as picture_jobs
from engine.config import load_settings
from engine.errors import InvalidInput, NotFound
from engine.generate import read_output_meta
from tests.lines import REQUEST, painting_blocked, until


@pytest.fixture
def line(demo_home):
    settings = load_settings()
    q = picture_jobs.PictureQueue(settings)
    yield q, settings
    q.drain(timeout=300)  # no picture painted past the test


def test_a_picture_is_made_under_the_code_given_at_submit(line):
    q, settings = line
    code = q.submit(REQUEST)
    done = q.wait(code, timeout=300)
    assert done.state == "succeeded" and done.result.code == code
    assert done.step == done.total_steps > 0 and done.eta_s is None
    assert read_output_meta(settings.outputs_dir / f"{code}.png")["request"]["action_name"] == "waving"
    assert done.to_dict()["result"]["code"] == code and done.to_dict()["error"] is None


def test_visitors_are_served_in_the_order_they_asked_and_see_their_place(line):
    q, settings = line
    with painting_blocked(settings):
        first = q.submit(REQUEST)
        until(lambda: q.status(first).state == "running")
        second, third = q.submit(REQUEST), q.submit(dict(REQUEST, action_name="sitting"))
        s2, s3 = q.status(second), q.status(third)
        assert (s2.state, s2.place_in_line, s2.queue_position) == ("queued", 2, 1)
        assert (s3.state, s3.place_in_line, s3.queue_position) == ("queued", 3, 2)
        assert q.status(first).place_in_line is None
    finished = [q.wait(c, timeout=300) for c in (first, second, third)]
    assert [f.state for f in finished] == ["succeeded"] * 3
    made = [(settings.outputs_dir / f"{c}.png").stat().st_mtime_ns for c in (first, second, third)]
    assert made == sorted(made)


def test_the_wait_is_estimated_from_the_pictures_made_before(line):
    q, settings = line
    q.wait(q.submit(REQUEST), timeout=300)  # one timed picture teaches the line its speed
    with painting_blocked(settings):
        first = q.submit(REQUEST)
        until(lambda: q.status(first).state == "running")
        waiting = q.submit(REQUEST)
        alone, behind = q.status(first).eta_s, q.status(waiting).eta_s
        assert alone > 0 and behind > alone  # it waits for the first one, then for itself
    q.wait(waiting, timeout=300)


def test_cancel_while_waiting_leaves_the_line_and_moves_the_others_up(line):
    q, settings = line
    with painting_blocked(settings):
        first = q.submit(REQUEST)
        until(lambda: q.status(first).state == "running")
        second, third = q.submit(REQUEST), q.submit(REQUEST)
        assert q.cancel(second).state == "cancelled"
        assert q.status(third).place_in_line == 2
    assert q.wait(third, timeout=300).state == "succeeded"
    assert not (settings.outputs_dir / f"{second}.png").exists()


def test_cancel_while_painting_stops_at_the_next_step_and_saves_nothing(line):
    q, settings = line
    with painting_blocked(settings):
        code = q.submit(dict(REQUEST, steps=20))
        until(lambda: q.status(code).state == "running")
        assert q.cancel(code).state == "running"  # it stops at its next step
    done = q.wait(code, timeout=300)
    assert done.state == "cancelled" and done.step <= 1 and done.result is None
    assert not (settings.outputs_dir / f"{code}.png").exists()
    assert q.cancel(code).state == "cancelled"  # a finished picture stays as it ended


def test_a_wrong_field_is_refused_at_submit_and_nothing_waits(line):
    q, _ = line
    with pytest.raises(InvalidInput) as err:
        q.submit(dict(REQUEST, action_shot_type="XXL"))
    assert err.value.field == "action_shot_type"
    assert not q._jobs


def test_a_picture_that_fails_says_why_and_the_line_moves_on(line):
    q, settings = line
    from engine.catalog import Catalog
    with painting_blocked(settings):
        first = q.submit(REQUEST)
        until(lambda: q.status(first).state == "running")
        doomed, after = q.submit(dict(REQUEST, action_name="sitting")), q.submit(REQUEST)
        Catalog.open(settings).delete_action("sitting")  # a curator removes it while it waits
    failed = q.wait(doomed, timeout=300)
    assert failed.state == "failed" and "sitting" in str(failed.error)
    assert q.wait(after, timeout=300).state == "succeeded"


def test_codes_are_checked_and_unknown_ones_are_not_found(line):
    q, _ = line
    with pytest.raises(InvalidInput):
        q.status("12ab")
    with pytest.raises(NotFound):
        q.status("00000000")
    with pytest.raises(NotFound):
        q.cancel("00000000")
