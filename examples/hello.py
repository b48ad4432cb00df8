import trio

from trio_rest import App, MethodBasedView, NotFound, SimpleRouter, serve

USERS = {1: {"id": 1, "name": "Ada Lovelace"}}


class UserView(MethodBasedView):
    async def get(self, request, id):
        if id not in USERS:
            raise NotFound(f"No user {id}.")
        return USERS[id]


router = SimpleRouter()
router.register("/user/{id:int}", UserView, ["GET"], name="user-detail")
app = App(router)

if __name__ == "__main__":
    trio.run(serve, app, "127.0.0.1", 8080)
