"""Expected answers per role, shared by the URL x role table and the pages' own tests."""

from __future__ import annotations

LOGIN = 302
SIGNED_OUT = 401
"""An anonymous call from a script (a ``.json`` URL, DICOMweb): 401 JSON with the login URL
(``vbqweb.login_required``), never a redirect to the HTML login page."""
MANAGERS_ONLY = {
    "anonymous": LOGIN,
    "reader": 403,
    "other_reader": 403,
    "reader_b": 404,
    "manager": 200,
    "manager_b": 404,
    "outsider": 404,
    "adjudicator": 403,
    "admin": 200,
}
"""A study's manager pages: its readers and its adjudicator get 403 (they know the study),
everyone else 404."""

SITE_ADMINS_ONLY = {
    "anonymous": LOGIN,
    "reader": 403,
    "other_reader": 403,
    "reader_b": 403,
    "manager": 403,
    "manager_b": 403,
    "outsider": 403,
    "adjudicator": 403,
    "admin": 200,
}
"""A page of the whole site for its admins (the audit log): nothing about a study is revealed by
refusing it, so every other signed-in user gets 403."""
