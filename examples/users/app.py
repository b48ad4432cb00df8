"""The routes and the app: ``python -m trio_rest run examples.users.app:app``."""

from __future__ import annotations

import os
import secrets

from trio_rest import App, SimpleRouter
from trio_rest.auth import JWTAuth
from trio_rest.db import Database

from .models import User
from .serializers import UserSerializer
from .views import AddressView, CreateAddressView, CreateUserView, UserListView, UserView, login, me


def build_router() -> SimpleRouter:
    router = SimpleRouter()
    router.register("/user/list", UserListView, ["GET", "SUBSCRIBE"])
    router.register("/user/{id:int}", UserView, ["GET", "PUT", "SUBSCRIBE"], name="user-detail")
    router.register("/user/", CreateUserView, ["POST"])
    router.register("/address/{id:int}", AddressView, ["GET", "PUT"], name="address-detail")
    router.register("/address/", CreateAddressView, ["POST"])
    router.register("/login", login, "POST")
    router.register("/me", me, "GET")
    return router


def build_app(url: str = "sqlite:///users.db", secret: str | None = None) -> App:
    """The app on the database at `url`; serving it creates the tables it lacks.

    Tokens are signed with `secret`, or ``USERS_JWT_SECRET``, or (for the demo) a random
    secret made at start-up, so tokens do not outlive the process. Every committed write
    to a user is published: ``SUBSCRIBE /user/list`` receives them all, ``SUBSCRIBE
    /user/6`` those of user 6.
    """
    secret = secret or os.environ.get("USERS_JWT_SECRET") or secrets.token_urlsafe(32)
    database = Database(url)
    database.observe(User, UserSerializer, topic="/user/list", detail_topic="/user/{id}")
    return App(build_router(), database=database, lifespan=create_tables, auth=JWTAuth(secret))


def create_tables(app: App) -> None:
    """Create the example's tables if they are missing (the app's lifespan: run at startup).

    Workers started together (``--workers N``) may race to create them: the one that loses
    finds them made, and checks again.
    """
    from sqlalchemy.exc import DatabaseError

    from .models import Base

    for attempt in range(3):
        try:
            Base.metadata.create_all(app.database.engine)
            return
        except DatabaseError:  # another worker created a table between the check and the CREATE
            if attempt == 2:
                raise


app = build_app()
