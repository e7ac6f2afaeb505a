"""The root of the tests: the layout rule, and the fixture modules every folder shares.

Layout rule (checked by ``tests/test_layout.py``): the tests mirror ``cachewise/``.

* A test of ``cachewise/<name>/`` (a subpackage) or of ``cachewise/<name>.py`` (a top-level
  module) lives in ``tests/<name>/``: always a folder, never ``tests/test_<name>.py``. So the
  tests of ``cachewise/tokens.py`` are in ``tests/tokens/``, those of ``cachewise/planner/`` in
  ``tests/planner/``. ``tests/integrations/`` also holds the tests of ``cachewise/wrap.py``,
  the wrapper's front door onto the integrations.
* A test lives with the package whose behaviour it checks, even when it drives it through a
  command (``tests/demo/`` runs ``cachewise demo``). Tests of a command's own surface (help,
  arguments, exit codes, output) live in ``tests/cli/test_<module>.py``, after the module of
  ``cachewise/cli/`` that defines the command.
* Only cross-cutting tests (the README, the public API, citations, layers, this layout) sit
  at ``tests/`` itself, and only shared helpers in the cross-cutting folders
  (``tests/strategies/``: hypothesis strategies; ``tests/fixtures/``: shared fixtures).
  Both lists are explicit in ``tests/test_layout.py``.
* No test imports ``benchmarks``; speed is measured there, never asserted here.

A fixture that tests in more than one folder need lives in a module of ``tests/fixtures/``,
registered here once (pytest refuses ``pytest_plugins`` in any conftest but the root one), so a test
can move between folders without taking its fixtures along.
"""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.isolation", "tests.fixtures.planning", "tests.fixtures.frames"]
