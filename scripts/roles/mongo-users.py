"""Create (or reset the passwords of) the admin and the app user.

Run on the database VM against a server that has no auth yet, on loopback.
Passwords come from the environment, never from the command line.
"""

import os
import sys
import time

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

host, port, db, user, admin_user = sys.argv[1:6]
deadline = time.monotonic() + 90
client = MongoClient(host, int(port), serverSelectionTimeoutMS=2000)
while True:
    try:
        client.admin.command("ping")
        break
    except PyMongoError:
        if time.monotonic() > deadline:
            raise
        time.sleep(1)


def ensure(database, name, password, roles):
    try:
        database.command("createUser", name, pwd=password, roles=roles)
    except OperationFailure as exc:
        if exc.code != 51003:  # user already exists
            raise
        database.command("updateUser", name, pwd=password, roles=roles)


ensure(client.admin, admin_user, os.environ["MONGO_ADMIN_PASS"], [{"role": "root", "db": "admin"}])
ensure(client[db], user, os.environ["MONGO_APP_PASS"], [{"role": "readWrite", "db": db}])
print(f"users {admin_user} (root) and {user} (readWrite on {db}) in place")
