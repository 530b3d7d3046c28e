"""Email: ``backends`` sends a ``Message`` (console, file, Mailgun), ``messages`` renders the emails people
get from ``templates/mail/``, and ``outbox`` queues them on the chore queue. The sending jobs themselves
are ``jobs.mail.*``, run by the chore worker; a web request never sends mail.
"""
