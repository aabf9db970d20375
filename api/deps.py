"""Request dependencies as Annotated aliases (full-stack-fastapi-template style)."""
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header
from sqlmodel import Session

from core.crud import user_for_token
from core.db import get_engine
from core.errors import AuthError, ForbiddenError
from core.models import Role, User


def get_session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(session: SessionDep, authorization: Annotated[str | None, Header()] = None) -> User:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("an API token is required: send 'Authorization: Bearer <token>' "
                        "(create one with `evalboard token create --user NAME`)")
    user = user_for_token(session=session, token=authorization.split(" ", 1)[1].strip())
    if user is None:
        raise AuthError("the API token is not valid (unknown or revoked)")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_optional_user(session: SessionDep, authorization: Annotated[str | None, Header()] = None) -> User | None:
    """The caller on a public read: anonymous without a token; a token sent must be valid (a stale one
    says so, rather than silently showing the public view of the caller's own private data)."""
    if authorization is None:
        return None
    return get_current_user(session, authorization)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_admin_user(user: CurrentUser) -> User:
    if user.role != Role.admin:
        raise ForbiddenError("this action needs an admin token")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]
