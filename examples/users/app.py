"""The routes and the app: ``python -m trio_rest run examples.users.app:app``."""

from __future__ import annotations

from trio_rest import App, SimpleRouter
from trio_rest.db import Database

from .views import AddressView, CreateAddressView, CreateUserView, UserListView, UserView


def build_router() -> SimpleRouter:
    router = SimpleRouter()
    router.register("/user/list", UserListView, "GET")
    router.register("/user/{id:int}", UserView, ["GET", "PUT"], name="user-detail")
    router.register("/user/", CreateUserView, ["POST"])
    router.register("/address/{id:int}", AddressView, ["GET", "PUT"], name="address-detail")
    router.register("/address/", CreateAddressView, ["POST"])
    return router


def build_app(url: str = "sqlite:///users.db") -> App:
    """The app on the database at `url`; serving it creates the tables it lacks."""
    return App(build_router(), database=Database(url), lifespan=create_tables)


def create_tables(app: App) -> None:
    """Create the example's tables if they are missing (the app's lifespan: run at startup)."""
    from .models import Base

    Base.metadata.create_all(app.database.engine)


app = build_app()
