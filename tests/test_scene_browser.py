"""Two visitors at once, in a real browser against a real server: the second one sees its
place in the line, then its picture; the pictures come out in the order they were asked."""

import re

import pytest

from tests.server import chromium, new_visitor, screenshot, streamlit_server

PICTURE = re.compile(r"^Picture (\d{8})$")


def _picture_code(page) -> str:
    caption = page.get_by_text(PICTURE)
    caption.wait_for(timeout=240_000)
    return PICTURE.match(caption.inner_text().strip()).group(1)


@pytest.mark.browser
def test_two_visitors_generate_at_once_and_the_second_waits_its_turn(demo_home):
    with streamlit_server(demo_home) as base, chromium() as browser:
        first, second = new_visitor(browser), new_visitor(browser)
        for page in (first, second):
            page.goto(base + "/scene")
            page.get_by_role("button", name="Make my picture").wait_for()
        first.get_by_role("slider").press("End")  # the most steps: a picture that takes a while
        first.get_by_role("button", name="Make my picture").click()
        first.get_by_text(re.compile("Painting you into the photo|Getting ready")).wait_for()
        second.get_by_role("button", name="Make my picture").click()
        second.get_by_text("Number 2 in line").wait_for()
        screenshot(second, "scene-second-visitor-waiting")
        assert second.get_by_role("button", name="Cancel").is_visible()
        assert second.locator(".cartolina-busy").count() == 1  # a kiosk's idle timer holds off
        first_code = _picture_code(first)
        second_code = _picture_code(second)
        screenshot(second, "scene-second-visitor-picture")
    assert first_code != second_code
    made = [(demo_home / "outputs" / f"{c}.png").stat().st_mtime_ns for c in (first_code, second_code)]
    assert made[0] < made[1]  # served in the order they asked
