"""Background work on RQ: generation workers and chores."""
