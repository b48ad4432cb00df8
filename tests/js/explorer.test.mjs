// The explorer page (GET /) in a real browser: Debian's chromium, headless, driven by
// playwright-core (from npm: `npm ci` in tests/js; it downloads no browser). The page of a
// running users example sends a request and shows the reply, logs in with the token a reply
// carried, subscribes, shows a notification another client caused, and cancels; a large reply
// is shown cut until asked for; the page of a server that requires a token says so, once.
//
//     CHROMIUM=/usr/bin/chromium node --experimental-websocket --test tests/js/explorer.test.mjs
//
// A screenshot of the page after a request is saved to $TESTS_ARTIFACTS (default
// tests/js/artifacts/), explorer.png, and one of a failing test as explorer-failure.png.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { connect } from "../../trio_rest/static/trio-rest.js";
import { startServer, token } from "./_server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = process.env.TESTS_ARTIFACTS ?? path.join(here, "artifacts");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
// This machine's network is closed: keep Chromium from calling home at start.
const flags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let server;
let browser;
let page;
/** What the page printed as errors, and what it threw: a test ends with none. */
const problems = [];

before(async () => {
  server = await startServer();
  browser = await chromium.launch({ executablePath, headless: true, args: flags });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.setDefaultTimeout(10_000);
});

after(async () => {
  await browser?.close();
  server?.stop();
});

/** Run `body`; on failure keep a screenshot of the page, then fail. */
async function step(name, body) {
  problems.length = 0;
  try {
    await body();
    assert.deepEqual(problems, []);
  } catch (error) {
    mkdirSync(artifacts, { recursive: true });
    await page?.screenshot({ path: path.join(artifacts, "explorer-failure.png"), fullPage: true }).catch(() => {});
    error.message = `${name}: ${error.message}`;
    throw error;
  }
}

/** The newest log entry whose heading starts with `heading`. */
function entry(heading) {
  return page.locator("#log > li", { has: page.locator(".head strong", { hasText: heading }) }).first();
}

async function chooseRoute(title) {
  const [method, template] = title.split(" ");
  await page
    .locator("#routes button")
    .filter({ has: page.locator(".method", { hasText: new RegExp(`^${method}$`) }) })
    .filter({ has: page.locator("code", { hasText: new RegExp(`^${template.replace(/[{}]/g, "\\$&")}$`) }) })
    .click();
}

const name = `explorer${process.pid}`;

test("the page lists the routes and connects", async () => {
  await step("open", async () => {
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.locator("#state", { hasText: "connected" }).waitFor();
    const titles = await page.locator("#routes button").evaluateAll((buttons) =>
      buttons.map((b) => `${b.querySelector(".method").textContent} ${b.querySelector("code").textContent}`),
    );
    for (const title of ["GET /user/list", "SUBSCRIBE /user/list", "POST /user/", "GET /user/{id:int}", "POST /login"]) {
      assert.ok(titles.includes(title), `${title} not in ${titles}`);
    }
    await page.fill("#filter", "login");
    assert.equal(await page.locator("#routes li:visible").count(), 1);
    // A docstring's code spans are shown as code, as text: never as markup.
    const code = page.locator("#routes li:visible .summary code");
    assert.deepEqual(await code.allTextContents(), ['{"name", "password"}', '{"token"}']);
    await page.fill("#filter", "");
  });
});

test("a request built in the form gets its reply", async () => {
  await step("request", async () => {
    await chooseRoute("POST /user/");
    // The body starts from the serializer's schema: the fields a client sends, none read-only.
    const skeleton = JSON.parse(await page.inputValue("#data"));
    assert.deepEqual(Object.keys(skeleton).sort(), ["addresses", "fullname", "name", "password"]);
    await page.fill("#data", JSON.stringify({ name, fullname: "From the browser", password: "secret" }));
    await page.click("#send");
    const reply = entry("← 201 POST /user/");
    await reply.waitFor();
    assert.match(await reply.locator("pre").textContent(), new RegExp(`"name": "${name}"`));
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, "explorer.png"), fullPage: true });
  });
});

test("what the form cannot send is said, not sent", async () => {
  await step("mistakes", async () => {
    await chooseRoute("GET /user/{id:int}");
    await page.click("#send");
    assert.equal(await page.textContent("#request-error"), "Replace {id} in the URL with a value.");
    await page.fill("#url", "/user/1");
    await page.fill("#args", "[1, 2]");
    await page.click("#send");
    assert.match(await page.textContent("#request-error"), /args must be a JSON object/);
    await page.fill("#args", "{");
    await page.click("#send");
    assert.match(await page.textContent("#request-error"), /^args is not valid JSON/);
    await page.fill("#args", "");
    await page.fill("#url", "/user/987654");
    await page.click("#send");
    await entry("← 404 GET /user/987654").waitFor();
    assert.equal(await page.textContent("#request-error"), "");
  });
});

test("a token a reply carries logs the page in", async () => {
  await step("login", async () => {
    await chooseRoute("POST /login");
    await page.fill("#data", JSON.stringify({ name, password: "secret" }));
    await page.click("#send");
    const reply = entry("← 200 POST /login");
    await reply.getByRole("button", { name: "Use this token" }).click();
    await page.locator("#state", { hasText: "connected, with a token" }).waitFor();
    await chooseRoute("GET /me");
    await page.click("#send");
    assert.match(await entry("← 200 GET /me").locator("pre").textContent(), new RegExp(`"name": "${name}"`));
  });
});

test("a subscription shows what another client causes, until cancelled", async () => {
  await step("subscribe", async () => {
    await chooseRoute("SUBSCRIBE /user/list");
    await page.click("#send");
    await entry("← 200 SUBSCRIBE /user/list").waitFor();
    const listed = page.locator("#subscriptions li", { hasText: "SUBSCRIBE /user/list" });
    await listed.waitFor();
    const other = await connect(`ws://127.0.0.1:${server.port}/`);
    try {
      const created = await other.post("/user/", { name: `${name}b`, fullname: "Another client", password: "x" });
      assert.equal(created.status, 201);
    } finally {
      other.close();
    }
    const note = entry("◆ notification created · SUBSCRIBE /user/list");
    assert.match(await note.locator("pre").textContent(), new RegExp(`"name": "${name}b"`));
    // The client follows with recovery on (it reconnects): a "recovery" notice comes first.
    await entry("◆ notification recovery · SUBSCRIBE /user/list").waitFor();
    await listed.locator(".count", { hasText: "2 notifications" }).waitFor();
    await listed.getByRole("button", { name: "Cancel" }).click();
    await entry("subscription SUBSCRIBE /user/list cancelled").waitFor();
    assert.equal(await page.locator("#subscriptions li").count(), 0);
    assert.ok(await page.locator("#no-subscriptions").isVisible());
  });
});

test("a large reply is shown cut, with a button that shows it all", async () => {
  await step("large", async () => {
    await page.selectOption("#method", "GET");
    await page.fill("#url", "/big");
    await page.fill("#data", "");
    await page.fill("#args", '{"n": 3000}');
    await page.press("#args", "Control+Enter"); // sends from the textarea, as Enter does from the URL
    const reply = entry("← 200 GET /big");
    await reply.waitFor();
    const full = (await reply.locator("pre").textContent()).length;
    assert.ok(full < 60_000, `${full} characters shown at first`);
    await reply.getByRole("button", { name: /^Show all [\d,]+ characters$/ }).click();
    const text = await reply.locator("pre").textContent();
    assert.ok(text.length > 300_000, `${text.length} characters shown in all`);
    assert.equal(JSON.parse(text).data.length, 3000);
    await page.fill("#args", "");
  });
});

test("a server that requires a token: the page says it is needed, and does not reconnect", async () => {
  const strict = await startServer({ requireAuth: true });
  const blind = await browser.newPage();
  const other = await browser.newPage();
  const sockets = [];
  other.on("websocket", (socket) => sockets.push(socket.url()));
  const blindSockets = [];
  blind.on("websocket", (socket) => blindSockets.push(socket.url()));
  try {
    // A page that could not read the document connects without a token, and is closed (1008)
    // at the server's auth_timeout (0.5 s).
    await blind.route("**/asyncapi.json", (route) => route.fulfill({ status: 503, body: "not now" }));
    await blind.goto(`http://127.0.0.1:${strict.port}/`);
    await blind.locator("#state", { hasText: "a token is needed" }).waitFor();
    const blindSaid = blind.locator("#log > li .head strong", { hasText: "The server requires a token" });
    assert.equal(await blindSaid.count(), 1);
    // The document says a token is required (x-trio-rest-require-auth): the page asks for one
    // without connecting.
    await other.goto(`http://127.0.0.1:${strict.port}/`);
    await other.locator("#state", { hasText: "a token is needed" }).waitFor();
    const said = other.locator("#log > li .head strong", { hasText: "The server requires a token" });
    assert.equal(await said.count(), 1);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // three auth_timeouts: no new socket
    assert.equal(blindSockets.length, 1, blindSockets.join(", "));
    assert.equal(sockets.length, 0, sockets.join(", "));
    await other.fill("#url", "/user/list");
    await other.press("#url", "Enter");
    assert.equal(await other.textContent("#request-error"), "Not connected: press Connect.");
    // A token typed in the header, Enter: the page is connected with it, and may send requests.
    await other.fill("#token", token("1"));
    await other.press("#token", "Enter");
    await other.locator("#state", { hasText: "connected, with a token" }).waitFor();
    await other.press("#url", "Enter");
    await other.locator("#log > li .head strong", { hasText: "← 200 GET /user/list" }).waitFor();
    // The server gone, Connect says the connection failed, and the likely reasons.
    strict.stop();
    await other.locator("#state", { hasText: "reconnecting" }).waitFor();
    await other.locator("#log > li .head strong", { hasText: "connection lost" }).waitFor();
    await other.click("#connect");
    await other.locator("#state", { hasText: "not connected" }).waitFor();
    const hint = await other.locator("#log > li .head strong").first().textContent();
    assert.match(hint, /Is the server running\? If it sets Settings\.allowed_origins, is http:\/\/127\.0\.0\.1:\d+ among them\?/);
  } finally {
    await blind.close();
    await other.close();
    strict.stop();
  }
});

test("the page of docs/server.md, which imports /trio-rest.js, runs as it is written", async () => {
  // The page's module script, from the first html block after the JavaScript client's heading.
  const doc = readFileSync(path.join(here, "..", "..", "docs", "server.md"), "utf8");
  const section = doc.slice(doc.indexOf("### The JavaScript client"));
  const html = /^```html\n([\s\S]*?)^```$/m.exec(section)[1];
  const script = /<script type="module">\n([\s\S]*?)<\/script>/.exec(html)[1];
  const other = await browser.newPage();
  const printed = [];
  other.on("console", (message) => printed.push(message.text()));
  other.on("pageerror", (error) => printed.push(`uncaught: ${error.message}`));
  try {
    // A page of the server's origin without the explorer's policy, which allows no inline script.
    await other.goto(`http://127.0.0.1:${server.port}/health`);
    await other.addScriptTag({ type: "module", content: script });
    const until = async (line) => {
      for (let i = 0; i < 200 && !printed.includes(line); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(printed.includes(line), `"${line}" not in ${JSON.stringify(printed)}`);
    };
    await until(`200 ${name}`); // the first user, made by the explorer above
    await until("recovery undefined"); // it reconnects, so it follows with recovery
    const writer = await connect(`ws://127.0.0.1:${server.port}/`);
    try {
      assert.equal((await writer.post("/user/", { name: `${name}c`, fullname: "Third", password: "x" })).status, 201);
    } finally {
      writer.close();
    }
    await until(`created ${name}c`);
    assert.equal(printed.filter((line) => line.startsWith("uncaught")).length, 0, printed.join("\n"));
  } finally {
    await other.close();
  }
});
