"""The users service's errors: one family, each naming the field and the HTTP status it answers."""

from __future__ import annotations


class UsersError(Exception):
    """A refused request: `status`, an `error` code, the `field` at fault, and a message."""

    status = 400
    error = "bad request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(UsersError):
    """No such user or device."""

    status = 404
    error = "not found"


class Conflict(UsersError):
    """It exists already, or its state forbids the change."""

    status = 409
    error = "conflict"


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error of the token or revocation endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
