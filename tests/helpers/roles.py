"""Expected answers per role, shared by the URL x role table and the pages' own tests."""

from __future__ import annotations

LOGIN = 302
MANAGERS_ONLY = {
    "anonymous": LOGIN,
    "reader": 403,
    "other_reader": 403,
    "reader_b": 404,
    "manager": 200,
    "manager_b": 404,
    "outsider": 404,
    "admin": 200,
}
"""A study's manager pages: its readers get 403 (they know the study), everyone else 404."""
