"""`Progress`: nothing for short work, a line every few seconds in a log, a bar with the
rate and the time left on a terminal."""

import io

from lstm_textgen.progress import Progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_every_few_seconds_with_the_rate_and_the_time_left():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(10_000, "scored", stream=stream, clock=clock)
    clock.now += 1.0
    progress.update(1_000)  # within the first two seconds: nothing
    assert stream.getvalue() == ""
    clock.now += 1.5
    progress.update(2_500)
    clock.now += 1.0
    progress.update(3_500)  # one second after the last line: nothing
    clock.now += 5.0
    progress.update(7_500)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "2,500/10,000 chars scored, 1,000 chars/s, 0:08 left",
        "7,500/10,000 chars scored, 882 chars/s, 0:03 left",  # 7,500 in 8.5 s
    ]


def test_a_terminal_gets_one_bar_that_redraws_itself_and_ends_its_line():
    clock, stream = Clock(), Terminal()
    progress = Progress(7_200_000, "scored", stream=stream, clock=clock)
    clock.now += 3.0
    progress.update(3_000)
    clock.now += 0.1
    progress.update(4_000)  # under 0.2 s since the last draw: nothing
    clock.now += 0.2
    progress.update(3_300)
    progress.close()
    draws = stream.getvalue().split("\r")[1:]
    assert len(draws) == 2 and stream.getvalue().endswith("\n")
    assert draws[0].startswith(
        "[" + "." * 30 + "]   0% 3,000/7,200,000 chars scored, 1,000 chars/s, 1:59:57 left"
    )
