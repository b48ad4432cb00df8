"""The seed example: users and their addresses over SQLAlchemy, as aiorest-ws's article had them."""
