"""Admin actions: users and tokens, and the board's moderation (flag with a reason, hide)."""
from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import select

from api.deps import AdminUser, SessionDep
from api.schemas import FlagRequest, FlagState, HiddenState, HideRequest, TokenIssued, UserCreate, UserPublic
from core import crud, visibility
from core.errors import InvalidRequestError, NotFoundError
from core.models import ApiToken, Model, Role, User

router = APIRouter(prefix="/admin", tags=["admin"])


def _user_public(session, user: User) -> UserPublic:
    tokens = session.exec(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked == False)).one()  # noqa: E712
    return UserPublic(id=user.id, name=user.name, role=user.role, created_at=user.created_at, active_tokens=tokens)


def _user_named(session, name: str) -> User:
    """Users are addressed by name in these routes (the name is unique), not by id."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    return user


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


@router.post("/users/{name}/tokens", response_model=TokenIssued, status_code=201)
def create_token(name: str, session: SessionDep, _: AdminUser) -> TokenIssued:
    """A new token for the user, shown this once."""
    user = _user_named(session, name)
    token = crud.create_token(session=session, user=user)
    session.commit()
    return TokenIssued(user=name, token=token)


@router.delete("/users/{name}/tokens", response_model=UserPublic)
def revoke_tokens(name: str, session: SessionDep, _: AdminUser) -> UserPublic:
    """Revoke every token of the user (a leaked token, an account closed)."""
    user = _user_named(session, name)
    for token in session.exec(select(ApiToken).where(ApiToken.user_id == user.id)):
        token.revoked = True
        session.add(token)
    session.commit()
    return _user_public(session, user)


@router.post("/models/{model_id}/flag", response_model=FlagState)
def flag_model(model_id: int, body: FlagRequest, session: SessionDep, _: AdminUser) -> FlagState:
    model = crud.get_or_404(session=session, table=Model, key=model_id)
    model.flagged, model.flag_reason = True, body.reason
    session.commit()
    return FlagState(model_id=model.id, flagged=True, flag_reason=model.flag_reason)


# Unset fields are left out: an unflagged model answers {model_id, flagged} as it always has.
@router.delete("/models/{model_id}/flag", response_model=FlagState, response_model_exclude_unset=True)
def unflag_model(model_id: int, session: SessionDep, _: AdminUser) -> FlagState:
    model = crud.get_or_404(session=session, table=Model, key=model_id)
    model.flagged, model.flag_reason = False, None
    session.commit()
    return FlagState(model_id=model.id, flagged=False)


@router.post("/models/{model_id}/hide", response_model=HiddenState)
def hide_model(model_id: int, session: SessionDep, _: AdminUser, body: HideRequest | None = None) -> HiddenState:
    """Off the board and private (owner and admins only) until an admin lifts it; owners cannot."""
    model = crud.get_or_404(session=session, table=Model, key=model_id)
    visibility.admin_hide(model, reason=body.reason if body else None)
    session.commit()
    return HiddenState(model_id=model_id, hidden=True)


@router.delete("/models/{model_id}/hide", response_model=HiddenState)
def unhide_model(model_id: int, session: SessionDep, _: AdminUser) -> HiddenState:
    """Lifts the admin's hide; a model its owner withdrew stays off the board."""
    model = crud.get_or_404(session=session, table=Model, key=model_id)
    visibility.admin_unhide(model)
    session.commit()
    return HiddenState(model_id=model_id, hidden=model.hidden)
