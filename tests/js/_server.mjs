// The server the JavaScript tests talk to (server.py: the users example with its explorer), in a
// child process on a free port of 127.0.0.1 and a SQLite file in a new temporary directory.
//
// TESTS_PYTHON names the Python that runs it (default: python3); PYTHONPATH must let it
// import trio_rest and examples (tests/test_js_client.py sets both).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

// server.py as it runs where the `msgpack` extra is not installed.
const WITHOUT_MSGPACK = `
import runpy, sys
import trio_rest_protocol._codecs
trio_rest_protocol._codecs.msgpack = None
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
`;

/**
 * Start a server; resolves with `{port, stop}` once it listens.
 * @param {object} [options] `{withoutMessagePack, requireAuth}`: serve as if the msgpack extra
 *   were missing; serve an app with `require_auth=True` (and an `auth_timeout` of half a second).
 */
export function startServer({ withoutMessagePack = false, requireAuth = false } = {}) {
  const directory = mkdtempSync(path.join(tmpdir(), "trio-rest-js-"));
  const python = process.env.TESTS_PYTHON ?? "python3";
  const script = [path.join(here, "server.py"), directory, ...(requireAuth ? ["--require-auth"] : [])];
  const args = withoutMessagePack ? ["-c", WITHOUT_MSGPACK, ...script] : script;
  const child = spawn(python, args, { stdio: ["ignore", "pipe", "pipe"] });
  const stop = () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    rmSync(directory, { recursive: true, force: true });
  };
  let log = "";
  child.stderr.on("data", (chunk) => (log += chunk));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const found = /port (\d+)/.exec(out);
      if (found) resolve({ port: Number(found[1]), stop });
    });
    child.on("exit", (code) => {
      stop();
      reject(new Error(`the server exited (${code}) before listening:\n${log}`));
    });
  });
}

/** A token for `subject` that the servers' JWTAuth accepts (server.py's SECRET, HS256), for ten minutes. */
export function token(subject) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const claims = { sub: subject, exp: Math.floor(Date.now() / 1000) + 600 };
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  const signature = createHmac("sha256", "the secret of the JavaScript client tests").update(body).digest("base64url");
  return `${body}.${signature}`;
}
