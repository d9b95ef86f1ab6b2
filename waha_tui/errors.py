"""The one base class for errors a user should see as a single clear line."""


class UserError(Exception):
    """An error whose message is meant for the operator, printed without a traceback."""
