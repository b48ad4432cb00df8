// The JavaScript client (trio_rest/static/trio-rest.js) against a real server: tests/js/server.py,
// started by _server.mjs in a child process on a free port and a SQLite file of its own.
//
//     node --experimental-websocket --test tests/js/client.test.mjs   (Node 20; 22 needs no flag)
//
// TESTS_PYTHON names the Python that runs the server (default: python3); PYTHONPATH must let
// it import trio_rest and examples (tests/test_js_client.py sets both).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  ConnectionClosedError,
  RequestTimeoutError,
  SubprotocolError,
  SubscriptionError,
  TrioRestError,
  connect,
  encodeMessagePack,
} from "../../trio_rest/static/trio-rest.js";
import { startServer, token } from "./_server.mjs";

const noWebSocket =
  typeof globalThis.WebSocket === "function"
    ? false
    : `this Node (${process.version}) has no global WebSocket: run it with --experimental-websocket`;

let server;
let url;

/** A user the list has not seen: names are unique. */
let made = 0;
function newUser() {
  made += 1;
  return { name: `js${process.pid}x${made}`, fullname: "From JavaScript", password: "password", addresses: [] };
}

/** The next value of an async iterator, or a failure after `ms`. */
function nextWithin(iterator, ms = 5000) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing in ${ms} ms`)), ms);
  });
  return Promise.race([iterator.next(), late]).finally(() => clearTimeout(timer));
}

test("without a WebSocket constructor, connect says what to pass", { skip: !noWebSocket }, async () => {
  await assert.rejects(connect("ws://127.0.0.1:1/"), /options\.WebSocket/);
});

/** A WebSocket stand-in: it opens with the subprotocol it is told, and the test plays the server. */
class ScriptedSocket {
  static agreed = "trio-rest.msgpack";
  static last = null;

  constructor(url, protocol) {
    this.url = url;
    this.asked = protocol;
    this.protocol = ScriptedSocket.agreed;
    this.sent = [];
    this.closed = false;
    ScriptedSocket.last = this;
    setTimeout(() => this.onopen());
  }

  send(data) {
    this.sent.push(data);
  }

  close() {
    this.closed = true;
    setTimeout(() => this.onclose({ code: 1000 }));
  }
}

test("an unknown codec is refused", async () => {
  await assert.rejects(connect("ws://127.0.0.1:1/", { codec: "cbor", WebSocket: ScriptedSocket }), /codec must be/);
});

test("a server that does not agree to MessagePack makes connect reject, saying so", async () => {
  try {
    for (const agreed of ["trio-rest.json", ""]) {
      ScriptedSocket.agreed = agreed;
      const connecting = connect("ws://127.0.0.1:1/", { codec: "msgpack", WebSocket: ScriptedSocket });
      const error = await connecting.catch((e) => e);
      assert.ok(error instanceof SubprotocolError, String(error));
      const named = agreed ? `"${agreed}"` : "no subprotocol";
      assert.match(error.message, new RegExp(`answered with ${named}, not "trio-rest\\.msgpack"`));
      assert.deepEqual(ScriptedSocket.last.asked, ["trio-rest.msgpack", "trio-rest.json"]);
      assert.ok(ScriptedSocket.last.closed);
    }
  } finally {
    ScriptedSocket.agreed = "trio-rest.msgpack";
  }
});

test("a binary frame the client cannot read closes the connection, saying why", async () => {
  const client = await connect("ws://127.0.0.1:1/", { codec: "msgpack", WebSocket: ScriptedSocket });
  const socket = ScriptedSocket.last;
  assert.equal(socket.binaryType, "arraybuffer");
  const waiting = client.get("/user/list");
  await new Promise((resolve) => setTimeout(resolve));
  assert.equal(socket.sent.length, 1);
  assert.ok(socket.sent[0] instanceof Uint8Array);
  const reply = encodeMessagePack({ type: "response", id: 1, status: 200, data: [] });
  socket.onmessage({ data: reply.slice(0, -1).buffer });
  await assert.rejects(waiting, (error) => {
    assert.ok(error instanceof ConnectionClosedError);
    assert.match(error.message, /cannot read: truncated/);
    return true;
  });
  assert.ok(socket.closed);
  await assert.rejects(client.get("/user/list"), ConnectionClosedError);
});

test("a request MessagePack cannot carry is refused before it is sent", async () => {
  const client = await connect("ws://127.0.0.1:1/", { codec: "msgpack", WebSocket: ScriptedSocket });
  try {
    const socket = ScriptedSocket.last;
    await assert.rejects(client.post("/user/", { name: "x", extra: new Map() }), /Map cannot be encoded/);
    await assert.rejects(client.get("/user/list", { args: { big: 2n ** 64n } }), /does not fit in 64 bits/);
    assert.equal(socket.sent.length, 0);
    assert.equal(client._pending.size, 0);
  } finally {
    client.close();
  }
});

describe("against a real server", { skip: noWebSocket }, () => {
  before(async () => {
    server = await startServer();
    url = `ws://127.0.0.1:${server.port}/`;
  });
  after(() => server?.stop());

  test("a request gets its reply", async () => {
    const client = await connect(url);
    try {
      const created = await client.post("/user/", newUser(), { eventName: "create-user" });
      assert.equal(created.type, "response");
      assert.equal(created.status, 201);
      assert.equal(created.event_name, "create-user");
      assert.equal(typeof created.id, "number");
      const found = await client.get(`/user/${created.data.id}`);
      assert.equal(found.status, 200);
      assert.equal(found.data.name, created.data.name);
      assert.ok(!("password" in found.data));
      const invalid = await client.post("/user/", { fullname: "no name" });
      assert.equal(invalid.status, 400);
      assert.equal(invalid.code, "invalid");
      assert.ok("name" in invalid.errors);
    } finally {
      client.close();
    }
  });

  test("an unknown user is a 404 with its code", async () => {
    const client = await connect(url);
    try {
      const reply = await client.get("/user/987654");
      assert.equal(reply.status, 404);
      assert.equal(reply.code, "not_found");
      assert.equal(typeof reply.detail, "string");
      const nowhere = await client.request("get", "/nowhere");
      assert.equal(nowhere.status, 404);
    } finally {
      client.close();
    }
  });

  test("concurrent requests are matched to their replies by id", async () => {
    const client = await connect(url);
    try {
      const users = [];
      for (let i = 0; i < 5; i++) users.push((await client.post("/user/", newUser())).data);
      // Sent together, on one socket; each promise gets the reply to its own request.
      const replies = await Promise.all(users.map((user) => client.get(`/user/${user.id}`)));
      assert.deepEqual(
        replies.map((reply) => reply.data.name),
        users.map((user) => user.name),
      );
      assert.equal(new Set(replies.map((reply) => reply.id)).size, users.length);
    } finally {
      client.close();
    }
  });

  test("a timeout sends a cancel, and the server cancels the request", async () => {
    const client = await connect(url);
    try {
      const before = (await client.get("/slow/cancelled")).data.cancelled;
      await assert.rejects(client.get("/slow", { timeout: 0.3 }), RequestTimeoutError);
      let count = before;
      for (let i = 0; i < 50 && count === before; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        count = (await client.get("/slow/cancelled")).data.cancelled;
      }
      assert.equal(count, before + 1);
      // The connection goes on.
      assert.equal((await client.get("/user/list")).status, 200);
    } finally {
      client.close();
    }
  });

  /** Subscribe (over `codec`), see another client's write (over JSON), cancel, reuse the id. */
  async function subscribeAndCancel(codec) {
    const watcher = await connect(url, { codec });
    const writer = await connect(url); // JSON: the server encodes each subscriber's way
    try {
      const sub = await watcher.subscribe("/user/list");
      assert.equal(sub.response.status, 200);
      const user = newUser();
      assert.equal((await writer.post("/user/", user)).status, 201);
      const { value: note } = await nextWithin(sub);
      assert.equal(note.type, "notification");
      assert.equal(note.id, sub.id);
      assert.equal(note.event_name, "created");
      assert.equal(note.data.name, user.name);

      await sub.cancel();
      assert.deepEqual(await sub.next(), { value: undefined, done: true });
      // The server forgot it: the id may be used again at once (an in-flight id would be a 409).
      const reused = await watcher._exchange({ method: "GET", url: "/user/list" }, sub.id);
      assert.equal(reused.status, 200);
    } finally {
      watcher.close();
      writer.close();
    }
  }

  test("a subscription receives what another client caused, and its cancel ends it", () =>
    subscribeAndCancel("json"));

  test("a refused subscription rejects with its reply", async () => {
    const client = await connect(url);
    try {
      const error = await client.subscribe("/user/987654/nowhere").catch((e) => e);
      assert.ok(error instanceof SubscriptionError);
      assert.equal(error.response.status, 404);
    } finally {
      client.close();
    }
  });

  test("a write sent again under its idempotency key runs once", async () => {
    const client = await connect(url);
    try {
      const user = newUser();
      const key = `create-${user.name}`;
      const first = await client.post("/user/", user, { idempotencyKey: key });
      const again = await client.post("/user/", user, { idempotencyKey: key });
      assert.equal(first.status, 201);
      // Without the key, the same body is a 400 (the name is taken): with it, the same reply.
      assert.equal(again.status, 201);
      assert.deepEqual(again.data, first.data);
      const other = await client.post("/user/", newUser(), { idempotencyKey: key });
      assert.equal(other.status, 409);
      assert.equal(other.code, "idempotency_conflict");
    } finally {
      client.close();
    }
  });

  test("ping gets its pong", async () => {
    const client = await connect(url);
    try {
      const elapsed = await client.ping();
      assert.ok(elapsed >= 0);
    } finally {
      client.close();
    }
  });

  test("a token is sent in an auth message, and a bad one is refused", async () => {
    const anonymous = await connect(url);
    const login = { name: newUser().name, password: "secret-password" };
    try {
      assert.equal((await anonymous.post("/user/", { ...newUser(), ...login })).status, 201);
      const { token } = (await anonymous.post("/login", login)).data;
      assert.equal((await anonymous.get("/me")).status, 401);
      const client = await connect(url, { token });
      try {
        const me = await client.get("/me");
        assert.equal(me.status, 200);
        assert.equal(me.data.name, login.name);
      } finally {
        client.close();
      }
      await assert.rejects(connect(url, { token: "not.a.token" }), TrioRestError);
    } finally {
      anonymous.close();
    }
  });

  test("onToken's token is the one the reconnected client sends", async () => {
    const anonymous = await connect(url);
    const first = { name: newUser().name, password: "secret-password" };
    const second = { name: newUser().name, password: "secret-password" };
    let client;
    try {
      const tokens = [];
      for (const login of [first, second]) {
        assert.equal((await anonymous.post("/user/", { ...newUser(), ...login })).status, 201);
        tokens.push((await anonymous.post("/login", login)).data.token);
      }
      client = await connect(url, { token: tokens[0], reconnect: true, maxBackoff: 0.2, onToken: () => tokens[1] });
      assert.equal((await client.get("/me")).data.name, first.name);
      client._socket.close();
      let me;
      for (let i = 0; i < 50; i++) {
        me = await client.get("/me").catch((error) => error);
        if (!(me instanceof ConnectionClosedError)) break;
      }
      assert.equal(me.status, 200);
      assert.equal(me.data.name, second.name);
    } finally {
      client?.close();
      anonymous.close();
    }
  });

  test("close rejects what waits, and later requests", async () => {
    const client = await connect(url);
    const waiting = client.get("/slow");
    client.close();
    await assert.rejects(waiting, ConnectionClosedError);
    await assert.rejects(client.get("/user/list"), ConnectionClosedError);
  });

  test("what waits at a drop rejects with the close's code and reason", async () => {
    const client = await connect(url);
    const waiting = client.get("/slow");
    await new Promise((resolve) => setTimeout(resolve, 50));
    client._socket.close(); // a drop, not a close() of the client
    const error = await waiting.catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError, String(error));
    assert.equal(typeof error.code, "number");
    assert.equal(typeof error.reason, "string");
    assert.match(error.message, new RegExp(`^the connection closed \\(${error.code}`));
  });

  /** Over `codec`: a subscription whose socket drops recovers what was written meanwhile. */
  async function dropAndRecover(codec) {
    let refreshed = 0;
    const watcher = await connect(url, {
      codec,
      reconnect: true,
      maxBackoff: 0.2,
      onToken: () => {
        refreshed += 1;
        return null;
      },
    });
    const writer = await connect(url, { codec });
    try {
      const sub = await watcher.subscribe("/user/list");
      // Asked with an empty args.since, the server first says where the topic stands.
      const { value: start } = await nextWithin(sub);
      assert.equal(start.event_name, "recovery");
      await writer.post("/user/", newUser());
      const { value: first } = await nextWithin(sub);
      assert.equal(first.event_name, "created");
      assert.equal(typeof first.offset, "number");
      assert.ok(sub.positions[first.topic], "the position of the topic is kept");

      // The socket drops (not a close() of the client): what happens while it is away...
      watcher._socket.close();
      const missed = newUser();
      assert.equal((await writer.post("/user/", missed)).status, 201);

      // ...is recovered once it is back: first the recovery notice, then what was missed.
      const { value: notice } = await nextWithin(sub);
      assert.equal(notice.event_name, "recovery");
      assert.equal(notice.data.recovered, true);
      const { value: caught } = await nextWithin(sub);
      assert.equal(caught.event_name, "created");
      assert.equal(caught.data.name, missed.name);
      assert.ok(refreshed >= 1, "onToken is called before reconnecting");
      assert.equal((await watcher.get("/user/list")).status, 200);
    } finally {
      watcher.close();
      writer.close();
    }
  }

  test("a dropped connection is reopened, and the subscription recovers what it missed", () =>
    dropAndRecover("json"));

  test("a subscription given args.since starts from there, and recovers from there", async () => {
    const writer = await connect(url);
    const first = await connect(url, { reconnect: true });
    let position;
    try {
      const sub = await first.subscribe("/user/list");
      assert.equal((await nextWithin(sub)).value.event_name, "recovery");
      await writer.post("/user/", newUser());
      const { value: seen } = await nextWithin(sub);
      position = { [seen.topic]: { epoch: seen.epoch, offset: seen.offset } };
    } finally {
      first.close();
    }
    const missed = newUser();
    assert.equal((await writer.post("/user/", missed)).status, 201);
    const later = await connect(url, { reconnect: true });
    try {
      const sub = await later.subscribe("/user/list", { args: { since: position } });
      const { value: notice } = await nextWithin(sub);
      assert.deepEqual([notice.event_name, notice.data.recovered], ["recovery", true]);
      const { value: caught } = await nextWithin(sub);
      assert.equal(caught.data.name, missed.name);
    } finally {
      later.close();
      writer.close();
    }
  });

  test("onState follows the connection: open, reconnecting, open again, closed", async () => {
    const states = [];
    const whys = [];
    const client = await connect(url, {
      reconnect: true,
      maxBackoff: 0.2,
      onState: (state, why) => {
        states.push(state);
        whys.push(why);
      },
    });
    assert.deepEqual(states, ["open"]);
    client._socket.close(); // a drop, not a close() of the client
    for (let i = 0; i < 100 && states.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(states, ["open", "reconnecting", "open"]);
    // "reconnecting" says how the socket closed: here without a status (1005), as the client closed it.
    assert.equal(typeof whys[1].code, "number");
    assert.equal(typeof whys[1].reason, "string");
    assert.equal((await client.get("/user/list")).status, 200);
    client.close();
    assert.deepEqual(states, ["open", "reconnecting", "open", "closed"]);
    // Without reconnect a drop is the end; a hook that throws breaks nothing.
    const once = [];
    const plain = await connect(url, {
      onState: (state) => {
        once.push(state);
        throw new Error("a careless hook");
      },
    });
    assert.equal((await plain.get("/user/list")).status, 200);
    plain._socket.close();
    for (let i = 0; i < 100 && once.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(once, ["open", "closed"]);
  });

  test("a write whose connection drops before its reply is sent again, under its key", async () => {
    const client = await connect(url, { reconnect: true, maxBackoff: 0.2 });
    try {
      const user = newUser();
      const writing = client.post("/user/", user);
      client._socket.close(); // the write goes nowhere: the socket is closing
      const reply = await writing;
      assert.equal(reply.status, 201);
      assert.equal(reply.data.name, user.name);
      const list = (await client.get("/user/list")).data;
      assert.equal(list.filter((found) => found.name === user.name).length, 1);
    } finally {
      client.close();
    }
  });

  describe("over MessagePack", () => {
    /** A WebSocket that keeps what went through it: frames sent, and the data of frames received. */
    function recording() {
      const sockets = [];
      class RecordingWebSocket extends WebSocket {
        constructor(...args) {
          super(...args);
          this.sent = [];
          this.received = [];
          this.addEventListener("message", (event) => this.received.push(event.data));
          sockets.push(this);
        }

        send(data) {
          this.sent.push(data);
          super.send(data);
        }
      }
      return { sockets, WebSocket: RecordingWebSocket };
    }

    test("requests get their replies, in binary frames both ways", async () => {
      const { sockets, WebSocket } = recording();
      const client = await connect(url, { codec: "msgpack", WebSocket });
      try {
        assert.equal(client.codec, "msgpack");
        const user = newUser();
        const created = await client.post("/user/", user, { eventName: "create-user" });
        assert.equal(created.type, "response");
        assert.equal(created.status, 201);
        assert.equal(created.event_name, "create-user");
        assert.equal(created.data.name, user.name);
        const found = await client.get(`/user/${created.data.id}`);
        assert.equal(found.status, 200);
        assert.deepEqual(found.data.addresses, []);
        const [socket] = sockets;
        assert.equal(socket.protocol, "trio-rest.msgpack");
        assert.ok(socket.sent.length >= 2 && socket.sent.every((frame) => frame instanceof Uint8Array));
        assert.ok(socket.received.length >= 2 && socket.received.every((data) => data instanceof ArrayBuffer));
      } finally {
        client.close();
      }
    });

    test("error replies carry their code, detail and errors", async () => {
      const client = await connect(url, { codec: "msgpack" });
      try {
        const invalid = await client.post("/user/", { fullname: "no name" });
        assert.equal(invalid.status, 400);
        assert.equal(invalid.code, "invalid");
        assert.ok(Array.isArray(invalid.errors.name));
        const missing = await client.get("/user/987654");
        assert.equal(missing.status, 404);
        assert.equal(missing.code, "not_found");
        assert.equal(typeof missing.detail, "string");
        // Bytes are MessagePack, but not JSON-shaped: the server refuses them, echoing the id.
        const refused = await client.post("/user/", { ...newUser(), name: new Uint8Array([1]) });
        assert.equal(refused.status, 400);
        assert.equal(refused.code, "parse_error");
        assert.match(refused.detail, /JSON-shaped/);
        const infinite = await client.post("/user/", { ...newUser(), age: Infinity });
        assert.equal(infinite.status, 400);
        assert.equal(infinite.code, "parse_error");
        assert.match(infinite.detail, /finite/);
      } finally {
        client.close();
      }
    });

    test("a 64-bit id travels exactly, as a BigInt", async () => {
      const client = await connect(url, { codec: "msgpack" });
      try {
        const id = 2n ** 64n - 1n;
        const reply = await client._exchange({ method: "GET", url: "/user/list" }, id);
        assert.equal(reply.status, 200);
        assert.equal(reply.id, id);
      } finally {
        client.close();
      }
    });

    test("a subscription receives its notifications, and its cancel ends it", () =>
      subscribeAndCancel("msgpack"));

    test("a dropped connection is reopened, and the subscription recovers what it missed", () =>
      dropAndRecover("msgpack"));

    test("a server without MessagePack makes connect reject with SubprotocolError", async () => {
      const plain = await startServer({ withoutMessagePack: true });
      try {
        const address = `ws://127.0.0.1:${plain.port}/`;
        const error = await connect(address, { codec: "msgpack" }).catch((e) => e);
        assert.ok(error instanceof SubprotocolError, String(error));
        assert.match(error.message, /answered with "trio-rest\.json", not "trio-rest\.msgpack"/);
        // The same server still speaks JSON.
        const client = await connect(address);
        try {
          assert.equal((await client.get("/user/list")).status, 200);
        } finally {
          client.close();
        }
      } finally {
        plain.stop();
      }
    });
  });
});

describe("against a server that requires a token", { skip: noWebSocket }, () => {
  let strict;
  let address;
  before(async () => {
    strict = await startServer({ requireAuth: true });
    address = `ws://127.0.0.1:${strict.port}/`;
  });
  after(() => strict?.stop());

  /** A WebSocket that counts the connections it opens. */
  function counting() {
    const opened = { count: 0 };
    class CountingWebSocket extends WebSocket {
      constructor(...args) {
        super(...args);
        opened.count += 1;
      }
    }
    return { opened, WebSocket: CountingWebSocket };
  }

  test("without one, the close (1008) ends the client: it does not reconnect to be closed again", async () => {
    const { opened, WebSocket } = counting();
    const states = [];
    const client = await connect(address, {
      reconnect: true,
      maxBackoff: 0.05,
      WebSocket,
      onState: (state, why) => states.push([state, why]),
    });
    try {
      // A request before the auth message is answered 401, then the connection is closed.
      const reply = await client.get("/user/list");
      assert.equal(reply.status, 401);
      assert.equal(reply.code, "not_authenticated");
      for (let i = 0; i < 100 && states.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(states, [
        ["open", undefined],
        ["closed", { code: 1008, reason: "authentication required" }],
      ]);
      // Three times the server's auth_timeout later, still the one connection.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(opened.count, 1);
      await assert.rejects(client.get("/user/list", { timeout: 1 }), ConnectionClosedError);
    } finally {
      client.close();
    }
  });

  test("with onToken, the client reconnects with the token it brings", async () => {
    const { opened, WebSocket } = counting();
    const client = await connect(address, { reconnect: true, maxBackoff: 0.05, WebSocket, onToken: () => token("7") });
    try {
      // The first connection has no token: its request is refused, and it is closed.
      assert.equal((await client.get("/user/list")).status, 401);
      let reply;
      for (let i = 0; i < 100; i++) {
        reply = await client.get("/user/list").catch((error) => error);
        if (reply.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(reply.status, 200, String(reply));
      assert.equal(opened.count, 2);
    } finally {
      client.close();
    }
  });
});
