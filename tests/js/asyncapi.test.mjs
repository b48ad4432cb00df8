// The seed example's AsyncAPI document, read by the AsyncAPI initiative's own parser
// (@asyncapi/parser, from npm: `npm ci` in tests/js), which validates it against the 3.0
// schema and its rules. The document comes from `python -m trio_rest asyncapi`.
//
//     node --test tests/js/asyncapi.test.mjs
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { test } from "node:test";

// The package's ES build does not load in Node (its imports lack extensions): its CommonJS does.
const require = createRequire(import.meta.url);
const { Parser } = require("@asyncapi/parser");

/** Spectral's severities: 0 error, 1 warning, 2 information, 3 hint. */
const ERROR = 0;
const WARNING = 1;

function seedDocument() {
  const python = process.env.TESTS_PYTHON ?? "python3";
  const done = spawnSync(python, ["-m", "trio_rest", "asyncapi", "examples.users.app:app"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(done.status, 0, done.stderr);
  return done.stdout;
}

const text = seedDocument();

test("the seed example's document is valid AsyncAPI 3.0, without a warning", async () => {
  const { document, diagnostics } = await new Parser().parse(text);
  const problems = diagnostics.filter((d) => d.severity <= WARNING);
  assert.deepEqual(
    problems.map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`),
    [],
  );
  assert.ok(document);
  assert.equal(document.version(), "3.0.0");
  const raw = JSON.parse(text);
  assert.equal(document.operations().length, Object.keys(raw.operations).length);
  const titles = document.operations().all().map((operation) => operation.title());
  for (const title of ["GET /user/list", "SUBSCRIBE /user/list", "POST /user/", "POST /login"]) {
    assert.ok(titles.includes(title), `${title} is missing from ${titles}`);
  }
  // Request and reply are tied by the envelope's id.
  const operation = document.operations().all().find((o) => o.title() === "POST /user/");
  assert.ok(operation.reply());
  const request = operation.messages().all()[0];
  assert.equal(request.correlationId().location(), "$message.payload#/id");
});

test("the parser refuses a broken document (so the test above can fail)", async () => {
  const broken = JSON.parse(text);
  const [name] = Object.keys(broken.operations);
  broken.operations[name].action = "publish"; // AsyncAPI 2's word: 3.0 says send or receive
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(broken));
  assert.equal(document, undefined);
  assert.ok(diagnostics.some((d) => d.severity === ERROR));
});
