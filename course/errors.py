"""The course's one-line error, in a module of its own: importing it costs nothing."""


class CourseError(Exception):
    """A problem with the instructor's input, reported as one line and exit status 1."""
