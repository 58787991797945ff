"""Instructor tooling for the logistic-regression course, on top of nbgrader's own API."""
