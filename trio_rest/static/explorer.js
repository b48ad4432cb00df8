// The explorer page (explorer.html, served at GET / when Settings.explorer is on).
//
// It reads the API's AsyncAPI document (GET /asyncapi.json) for the list of routes, and talks to
// the server over one WebSocket through the JavaScript client (GET /trio-rest.js): a request
// built in the form is sent, its reply shown; a SUBSCRIBE is listed until it ends or is
// cancelled, its notifications shown as they come. Whatever the server sends is shown as text
// (textContent), never as markup. The log keeps the last MAX_LOG entries, and shows at most
// MAX_SHOWN characters of a body until asked for the rest: a page of large replies stays usable.
import { AuthenticationError, SubscriptionError, connect } from "/trio-rest.js";

const MAX_LOG = 300;
const MAX_SHOWN = 50_000;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

const $ = (id) => document.getElementById(id);

/** The client of the connection shown, or null; `generation` tells a stale one apart. */
let client = null;
let generation = 0;
/** The document says every request needs credentials (its server's x-trio-rest-require-auth). */
let tokenRequired = false;
/** Subscriptions listed: Subscription -> its list item. */
const listed = new Map();

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** Text whose Markdown code spans (`x`, ``x``) become <code> elements; the rest stays text. */
function prose(text) {
  const nodes = [];
  let last = 0;
  for (const span of text.matchAll(/(`+)(.+?)\1/g)) {
    nodes.push(text.slice(last, span.index), element("code", { text: span[2] }));
    last = span.index + span[0].length;
  }
  nodes.push(text.slice(last));
  return nodes;
}

// ---- The AsyncAPI document -------------------------------------------------------------------

/** Follow local `$ref`s ("#/a/b") to the node they name; null for one that leads nowhere. */
function resolve(doc, node) {
  for (let hops = 0; node && typeof node.$ref === "string"; hops++) {
    if (hops > 32 || !node.$ref.startsWith("#/")) return null;
    const keys = node.$ref.slice(2).split("/").map((key) => key.replaceAll("~1", "/").replaceAll("~0", "~"));
    node = keys.reduce((at, key) => (at && typeof at === "object" ? at[key] : undefined), doc);
  }
  return node ?? null;
}

/** The document's routes: one per operation, `{method, template, summary, dataSchema}`. */
function routesOf(doc) {
  const routes = [];
  for (const operation of Object.values(doc.operations ?? {})) {
    const [method, template] = String(operation.title ?? "").split(" ");
    if (!method || !template?.startsWith("/")) continue;
    const message = resolve(doc, operation.messages?.[0]);
    const dataSchema = resolve(doc, message?.payload?.properties?.data);
    routes.push({ method, template, summary: operation.summary ?? "", dataSchema });
  }
  return routes;
}

/** A value of `schema` to start from: its example, default, or a blank of its type. */
function skeleton(doc, schema, depth = 0) {
  schema = resolve(doc, schema);
  if (!schema || depth > 6) return null;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ("default" in schema) return schema.default;
  if ("const" in schema) return schema.const;
  const choices = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(choices) && choices.length) return skeleton(doc, choices[0], depth + 1);
  let type = Array.isArray(schema.type) ? (schema.type.find((t) => t !== "null") ?? "null") : schema.type;
  if (type === undefined && schema.properties) type = "object";
  switch (type) {
    case "object": {
      const value = {};
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        if (!resolve(doc, property)?.readOnly) value[name] = skeleton(doc, property, depth + 1);
      }
      return value;
    }
    case "array":
      return [];
    case "string":
      return Array.isArray(schema.enum) ? schema.enum[0] : "";
    case "integer":
    case "number":
      return typeof schema.minimum === "number" ? schema.minimum : 0;
    case "boolean":
      return false;
    default:
      return null;
  }
}

async function loadDocument() {
  const status = $("routes-status");
  let doc;
  try {
    const reply = await fetch("/asyncapi.json", { headers: { Accept: "application/json" } });
    if (!reply.ok) throw new Error(`${reply.status} ${(await reply.text()).slice(0, 200)}`);
    doc = await reply.json();
  } catch (error) {
    status.textContent = `Could not read /asyncapi.json: ${error.message}`;
    status.className = "error";
    return;
  }
  tokenRequired = Object.values(doc.servers ?? {}).some((server) => server["x-trio-rest-require-auth"] === true);
  const title = doc.info?.title ?? "trio-rest";
  $("api-title").textContent = title;
  $("api-version").textContent = doc.info?.version ? `v${doc.info.version}` : "";
  document.title = `${title}: explorer`;
  const routes = routesOf(doc);
  status.textContent = routes.length ? "" : "The document lists no routes.";
  $("routes").replaceChildren(
    ...routes.map((route) =>
      element(
        "li",
        { "data-search": `${route.method} ${route.template} ${route.summary}`.toLowerCase() },
        element(
          "button",
          { type: "button", onclick: () => choose(doc, route) },
          element("span", { class: "method", text: route.method }),
          element("code", { text: route.template }),
          element("span", { class: "summary" }, ...prose(route.summary)),
        ),
      ),
    ),
  );
}

/** Fill the form from a route: its method, its URL (converters dropped), a body to edit. */
function choose(doc, route) {
  $("method").value = route.method;
  $("url").value = route.template.replace(/\{([^}:]+)(:[^}]*)?\}/g, "{$1}");
  $("route-summary").replaceChildren(...prose(route.summary));
  $("args").value = "";
  const body = BODY_METHODS.has(route.method) && route.dataSchema ? skeleton(doc, route.dataSchema) : undefined;
  $("data").value = body === undefined ? "" : JSON.stringify(body, null, 2);
  showError("");
  const url = $("url");
  url.focus();
  const hole = /\{[^}]*\}/.exec(url.value);
  if (hole) url.setSelectionRange(hole.index, hole.index + hole[0].length);
}

function filterRoutes() {
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const item of $("routes").children) {
    item.hidden = !words.every((word) => item.dataset.search.includes(word));
  }
}

// ---- The log ---------------------------------------------------------------------------------

function log(kind, heading, body, { ok, extra } = {}) {
  const time = new Date().toLocaleTimeString();
  const head = element("div", { class: "head" }, element("time", { text: time }), element("strong", { text: heading }));
  if (extra) head.append(extra);
  const item = element("li", { "data-kind": kind }, head);
  if (ok !== undefined) item.dataset.ok = String(ok);
  if (body !== undefined) item.append(...shown(JSON.stringify(body, null, 2)));
  const entries = $("log");
  entries.prepend(item);
  while (entries.children.length > MAX_LOG) entries.lastElementChild.remove();
}

/** A body's text in a <pre>: its first MAX_SHOWN characters, and a button that shows the rest. */
function shown(text) {
  if (text.length <= MAX_SHOWN) return [element("pre", { text })];
  const pre = element("pre", { text: `${text.slice(0, MAX_SHOWN)}\n…` });
  const all = element("button", {
    type: "button",
    class: "quiet",
    text: `Show all ${text.length.toLocaleString("en")} characters`,
    onclick: () => {
      pre.textContent = text;
      all.remove();
    },
  });
  return [pre, all];
}

function logReply(reply, label, started) {
  const took = Math.round(performance.now() - started);
  const ok = reply.status < 400;
  let extra;
  const token = reply.data?.token;
  if (ok && typeof token === "string") {
    extra = element("button", { type: "button", class: "quiet", text: "Use this token", onclick: () => useToken(token) });
  }
  log("reply", `← ${reply.status} ${label} (${took} ms)`, reply, { ok, extra });
}

function logNotification(note, label) {
  const name = note.event_name ? ` ${note.event_name}` : "";
  log("notification", `◆ notification${name}${label ? ` · ${label}` : ""}`, note);
}

function logProblem(label, error) {
  log("problem", `✕ ${label}: ${error.message}`, error.response, { ok: false });
}

// ---- The connection --------------------------------------------------------------------------

function setState(state, text) {
  const output = $("state");
  output.dataset.state = state;
  output.textContent = text;
}

/** " (1008 authentication required)": a WebSocket close's code and reason, for the log. */
function closeText(why) {
  if (why?.code === undefined) return "";
  return ` (${why.code}${why.reason ? ` ${why.reason}` : ""})`;
}

function socketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`;
}

function needToken() {
  setState("closed", "a token is needed");
  log("problem", "✕ The server requires a token: type one above and press Connect.", undefined, { ok: false });
}

/** Open a new connection (with the token field's token), closing the one before. */
async function open() {
  const mine = ++generation;
  const previous = client;
  client = null;
  if (previous) previous.close();
  const token = $("token").value.trim();
  if (tokenRequired && !token) {
    // The server would close a connection without one at its auth_timeout.
    needToken();
    return;
  }
  setState("connecting", "connecting…");
  let dropped = false;
  const onState = (state, why) => {
    if (mine !== generation) return;
    if (state === "open") {
      setState("open", token ? "connected, with a token" : "connected");
      if (dropped) log("connection", "reconnected");
      dropped = false;
    } else if (state === "reconnecting") {
      dropped = true;
      setState("connecting", "reconnecting…");
      log("connection", `connection lost${closeText(why)}: reconnecting`);
    } else {
      client = null; // it ended for good: the form says to press Connect
      if (why?.code === 1008 && why.reason === "authentication required") {
        needToken(); // the client does not reconnect: it would be closed the same way
      } else if (why?.error) {
        setState("closed", why.error instanceof AuthenticationError ? "token refused" : "closed");
        logProblem("cannot reconnect", why.error);
      } else {
        setState("closed", "closed");
        if (why) log("problem", `✕ connection closed${closeText(why)}`, undefined, { ok: false });
      }
    }
  };
  try {
    const opened = await connect(socketUrl(), {
      token: token || undefined,
      reconnect: true,
      onState,
      onNotification: (note) => logNotification(note, null),
    });
    if (mine !== generation) {
      opened.close();
      return;
    }
    client = opened;
    log("connection", `connected to ${socketUrl()}${token ? " with a token" : ""}`);
  } catch (error) {
    if (mine !== generation) return;
    const refused = error instanceof AuthenticationError;
    setState("closed", refused ? "token refused" : "not connected");
    logProblem("cannot connect", error);
    if (!refused) {
      // A browser does not tell a page why its WebSocket failed: the two likely causes are said.
      log("problem", `✕ Is the server running? If it sets Settings.allowed_origins, is ${location.origin} among them?`, undefined, { ok: false });
    }
  }
}

function useToken(token) {
  $("token").value = token;
  open();
}

// ---- Requests and subscriptions --------------------------------------------------------------

function showError(text) {
  $("request-error").textContent = text;
}

/** The JSON in a field, or undefined when it is empty; throws a sentence naming the field. */
function parseField(id) {
  const text = $(id).value.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${id} is not valid JSON: ${error.message}`);
  }
}

async function send(event) {
  event.preventDefault();
  showError("");
  const method = $("method").value;
  const url = $("url").value.trim();
  if (!url.startsWith("/")) return showError("The URL is a path: it starts with /.");
  const hole = /\{[^}]*\}/.exec(url);
  if (hole) return showError(`Replace ${hole[0]} in the URL with a value.`);
  const options = {};
  try {
    options.args = parseField("args");
    options.data = parseField("data");
  } catch (error) {
    return showError(error.message);
  }
  const args = options.args;
  if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args))) {
    return showError("args must be a JSON object, such as {\"page\": 2}.");
  }
  for (const name of ["args", "data"]) if (options[name] === undefined) delete options[name];
  if (!client) return showError("Not connected: press Connect.");
  const label = `${method} ${url}`;
  log("request", `→ ${label}`, Object.keys(options).length ? options : undefined);
  if (method === "SUBSCRIBE") return subscribe(client, url, label, options);
  const started = performance.now();
  try {
    logReply(await client.request(method, url, options), label, started);
  } catch (error) {
    logProblem(label, error);
  }
}

async function subscribe(owner, url, label, options) {
  const started = performance.now();
  let sub;
  try {
    sub = await owner.subscribe(url, options);
  } catch (error) {
    if (error instanceof SubscriptionError) logReply(error.response, label, started);
    else logProblem(label, error);
    return;
  }
  logReply(sub.response, label, started);
  const count = element("span", { class: "count", text: "0 notifications" });
  const cancel = element("button", { type: "button", class: "quiet", text: "Cancel" });
  const item = element("li", { "data-id": String(sub.id) }, element("code", { text: label }), count, cancel);
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    sub.cancel().catch((error) => logProblem(`cancel ${label}`, error));
  });
  listed.set(sub, item);
  $("subscriptions").append(item);
  $("no-subscriptions").hidden = true;
  let received = 0;
  let ending = "ended";
  try {
    for await (const note of sub) {
      received += 1;
      count.textContent = `${received} notification${received === 1 ? "" : "s"}`;
      logNotification(note, label);
    }
    if (cancel.disabled) ending = "cancelled";
  } catch (error) {
    ending = `ended: ${error.message}`;
  } finally {
    item.remove();
    listed.delete(sub);
    $("no-subscriptions").hidden = listed.size > 0;
  }
  log("connection", `subscription ${label} ${ending}`);
}

// ---- Start -----------------------------------------------------------------------------------

$("request").addEventListener("submit", send);
// Enter in the URL sends (the form's submit); in args and data, where Enter is a new line, Ctrl+Enter does.
for (const id of ["args", "data"]) {
  $(id).addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("request").requestSubmit();
    }
  });
}
$("connection").addEventListener("submit", (event) => {
  event.preventDefault();
  open();
});
$("filter").addEventListener("input", filterRoutes);
$("clear").addEventListener("click", () => $("log").replaceChildren());
// The document first: it says whether the server takes a connection without a token.
loadDocument().finally(open);
