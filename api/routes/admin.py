"""Admin actions: users and tokens, and the board's moderation (flag with a reason, hide)."""
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import select

from api.deps import AdminUser, SessionDep
from core import crud, visibility
from core.errors import InvalidRequestError, NotFoundError
from core.models import ApiToken, Model, Role, User

router = APIRouter(prefix="/admin", tags=["admin"])


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    role: Role = Role.author


class UserPublic(BaseModel):
    id: int
    name: str
    role: Role
    created_at: datetime
    active_tokens: int


class FlagRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=500, description="shown on the board beside the model")


def _user_public(session, user: User) -> UserPublic:
    tokens = session.exec(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked == False)).one()  # noqa: E712
    return UserPublic(id=user.id, name=user.name, role=user.role, created_at=user.created_at, active_tokens=tokens)


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, _: AdminUser) -> list[UserPublic]:
    return [_user_public(session, u) for u in session.exec(select(User).order_by(User.name))]


@router.post("/users", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, session: SessionDep, _: AdminUser) -> UserPublic:
    if session.exec(select(User).where(User.name == body.name)).first():
        raise InvalidRequestError(f"user {body.name!r} exists already", field="name")
    user = crud.create_user(session=session, name=body.name, role=body.role)
    session.commit()
    return _user_public(session, user)


@router.post("/users/{name}/tokens", status_code=201)
def create_token(name: str, session: SessionDep, _: AdminUser) -> dict:
    """A new token for the user, shown this once."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    token = crud.create_token(session=session, user=user)
    session.commit()
    return {"user": name, "token": token}


@router.delete("/users/{name}/tokens", response_model=UserPublic)
def revoke_tokens(name: str, session: SessionDep, _: AdminUser) -> UserPublic:
    """Revoke every token of the user (a leaked token, an account closed)."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    for token in session.exec(select(ApiToken).where(ApiToken.user_id == user.id)):
        token.revoked = True
        session.add(token)
    session.commit()
    return _user_public(session, user)


def _model(session, model_id: int) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise NotFoundError(f"no model {model_id}")
    return model


@router.post("/models/{model_id}/flag")
def flag_model(model_id: int, body: FlagRequest, session: SessionDep, _: AdminUser) -> dict:
    model = _model(session, model_id)
    model.flagged, model.flag_reason = True, body.reason
    session.commit()
    return {"model_id": model.id, "flagged": True, "flag_reason": model.flag_reason}


@router.delete("/models/{model_id}/flag")
def unflag_model(model_id: int, session: SessionDep, _: AdminUser) -> dict:
    model = _model(session, model_id)
    model.flagged, model.flag_reason = False, None
    session.commit()
    return {"model_id": model.id, "flagged": False}


class HideRequest(BaseModel):
    reason: str | None = Field(default=None, min_length=3, max_length=500, description="shown to the model's owner")


@router.post("/models/{model_id}/hide")
def hide_model(model_id: int, session: SessionDep, _: AdminUser, body: HideRequest | None = None) -> dict:
    """Off the board and private (owner and admins only) until an admin lifts it; owners cannot."""
    visibility.admin_hide(_model(session, model_id), reason=body.reason if body else None)
    session.commit()
    return {"model_id": model_id, "hidden": True}


@router.delete("/models/{model_id}/hide")
def unhide_model(model_id: int, session: SessionDep, _: AdminUser) -> dict:
    """Lifts the admin's hide; a model its owner withdrew stays off the board."""
    model = _model(session, model_id)
    visibility.admin_unhide(model)
    session.commit()
    return {"model_id": model_id, "hidden": model.hidden}
