"""SQLite with its write lock handed over in turn (``ENGINE = "vbqweb.sqlite_backend"``)."""
