"""Keeping the shared gallery clean: reports, image review, bans, blocked terms and the audit log.

The back end of the admin area (``webapp/admin`` holds its routes); every admin action is recorded by ``audit``.
"""
