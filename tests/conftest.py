from __future__ import annotations

import os

# Tests make real git repositories; machines may have no identity configured.
for _var, _value in {
    "GIT_AUTHOR_NAME": "migtools tests",
    "GIT_AUTHOR_EMAIL": "tests@migtools.invalid",
    "GIT_COMMITTER_NAME": "migtools tests",
    "GIT_COMMITTER_EMAIL": "tests@migtools.invalid",
}.items():
    os.environ.setdefault(_var, _value)
