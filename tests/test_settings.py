"""Every setting of the course is a configurable trait with one default, shown in nbgrader_config.py."""

import ast
import importlib
import inspect
import pkgutil
import re

import pytest
from traitlets.config import Config, Configurable

import course

from conftest import REPO

CONFIG = (REPO / "nbgrader_config.py").read_text()
SHOWN = re.compile(r"^# c\.(\w+)\.(\w+) = (.+)$", re.M)


def course_settings():
    """{(class name, trait name): default} of every config trait a class in the course package declares."""
    settings = {}
    for module in pkgutil.walk_packages(course.__path__, "course."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(cls, Configurable) and cls.__module__ == module.name:
                for name, trait in cls.class_own_traits(config=True).items():
                    assert trait.help, f"{cls.__name__}.{name} has no help text"
                    settings[cls.__name__, name] = trait.default()
    return settings


def test_every_setting_is_shown_in_the_config_with_its_default():
    settings = course_settings()
    shown = {(cls, name): ast.literal_eval(value) for cls, name, value in SHOWN.findall(CONFIG)}
    assert len(settings) >= 18, sorted(settings)
    assert shown == settings


@pytest.mark.parametrize(
    "changed",
    [
        ("SandboxLimits", "cpu_seconds", 30),
        ("ParallelGrading", "cluster_window", 4),
        ("Course", "due_dates", {"logistic_regression": "2027-01-15 23:59:00 UTC"}),
    ],
)
def test_a_changed_setting_reaches_its_class(changed):
    cls_name, name, value = changed
    config = Config({cls_name: {name: value}})
    classes = {
        cls.__name__: cls
        for module in pkgutil.walk_packages(course.__path__, "course.")
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass)
    }
    assert getattr(classes[cls_name](config=config), name) == value
