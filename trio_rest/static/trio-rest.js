/**
 * trio-rest.js: the JavaScript client of trio-rest, an ES module with no dependencies.
 *
 * It speaks the protocol of docs/protocol.md over one WebSocket, in JSON (the `trio-rest.json`
 * subprotocol, text frames) or, with `{codec: "msgpack"}`, in MessagePack (`trio-rest.msgpack`,
 * binary frames; the codec is below, `encodeMessagePack` and `decodeMessagePack`). It runs in
 * browsers and in Node >= 18: it uses
 * `globalThis.WebSocket` (Node 22, or Node 20 run with `--experimental-websocket`), or the
 * constructor passed as `options.WebSocket` (for example the `ws` package's).
 *
 *     import { connect } from "/trio-rest.js";
 *     const client = await connect("ws://127.0.0.1:8080/", { reconnect: true });
 *     const reply = await client.get("/user/1");          // {type, id, status, data, ...}
 *     const sub = await client.subscribe("/user/list");
 *     for await (const note of sub) console.log(note.event_name, note.data);
 *
 * @module trio-rest
 */

/** Something went wrong in the client (base class). */
export class TrioRestError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * The connection closed (or could not open) while a reply was awaited. `code` and `reason` are
 * those of the WebSocket's close, when it closed after opening (1006: lost without a close frame).
 */
export class ConnectionClosedError extends TrioRestError {
  constructor(message, { code, reason } = {}) {
    super(message);
    if (code !== undefined) this.code = code;
    if (reason !== undefined) this.reason = reason;
  }
}

/** No reply came within the request's `timeout`; a `cancel` was sent for it. */
export class RequestTimeoutError extends TrioRestError {}

/** The server refused the token sent in the `auth` message; `response` holds its reply. */
export class AuthenticationError extends TrioRestError {
  constructor(response) {
    super(`authentication refused: ${response.status} ${response.detail ?? ""}`.trim());
    this.response = response;
  }
}

/** A `SUBSCRIBE` was answered with an error; `response` holds that reply. */
export class SubscriptionError extends TrioRestError {
  constructor(response) {
    super(`subscription refused: ${response.status} ${response.detail ?? ""}`.trim());
    this.response = response;
  }
}

/** A value cannot be encoded to MessagePack, or bytes are not a MessagePack value this client reads. */
export class MessagePackError extends TrioRestError {}

/** The server did not agree to the subprotocol of the client's `codec` (it cannot speak it). */
export class SubprotocolError extends TrioRestError {}

// MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md), the subset and mapping
// this client uses; the format bytes are the spec's names.
const NIL = 0xc0;
const FALSE = 0xc2;
const TRUE = 0xc3;
const BIN8 = 0xc4;
const BIN16 = 0xc5;
const BIN32 = 0xc6;
const EXT8 = 0xc7;
const EXT16 = 0xc8;
const EXT32 = 0xc9;
const FLOAT32 = 0xca;
const FLOAT64 = 0xcb;
const UINT8 = 0xcc;
const UINT16 = 0xcd;
const UINT32 = 0xce;
const UINT64 = 0xcf;
const INT8 = 0xd0;
const INT16 = 0xd1;
const INT32 = 0xd2;
const INT64 = 0xd3;
const FIXEXT1 = 0xd4; // fixext 1, 2, 4, 8, 16 follow: 0xd4 to 0xd8
const FIXEXT16 = 0xd8;
const STR8 = 0xd9;
const STR16 = 0xda;
const STR32 = 0xdb;
const ARRAY16 = 0xdc;
const ARRAY32 = 0xdd;
const MAP16 = 0xde;
const MAP32 = 0xdf;
const TIMESTAMP = -1; // the one extension type the spec defines

/** How deep containers may nest, by default, in what `encodeMessagePack` and `decodeMessagePack` handle. */
const MSGPACK_MAX_DEPTH = 512;
const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
/** A JavaScript Date holds at most 8.64e15 ms either side of 1970. */
const DATE_MAX_SECONDS = 8.64e12;

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 throws instead of becoming U+FFFD; ignoreBOM: a leading U+FEFF is text, kept.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A string without lone surrogates (which UTF-8 cannot carry). */
function isWellFormed(text) {
  if (typeof text.isWellFormed === "function") return text.isWellFormed();
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

/** A growing byte buffer. */
class ByteWriter {
  constructor() {
    this.bytes = new Uint8Array(256);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
  }

  /** Make room for `count` more bytes and return where they start. */
  claim(count) {
    const start = this.length;
    const needed = start + count;
    if (needed > this.bytes.length) {
      let size = this.bytes.length * 2;
      while (size < needed) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.bytes.subarray(0, start));
      this.bytes = bigger;
      this.view = new DataView(bigger.buffer);
    }
    this.length = needed;
    return start;
  }

  byte(value) {
    const at = this.claim(1); // first: it may replace this.bytes
    this.bytes[at] = value;
  }

  /** Write a format byte and claim the `width` bytes after it; returns where they start. */
  fixed(format, width) {
    const at = this.claim(1 + width);
    this.bytes[at] = format;
    return at + 1;
  }

  /** A format byte followed by `value`, written by the DataView method `setter` in `width` bytes. */
  put(format, width, setter, value) {
    const at = this.fixed(format, width); // first: it may replace the buffer, and the view
    this.view[setter](at, value);
  }

  /** A format byte followed by a big-endian unsigned integer of `width` bytes (1, 2, 4). */
  head(format, value, width) {
    const at = this.fixed(format, width);
    if (width === 1) this.view.setUint8(at, value);
    else if (width === 2) this.view.setUint16(at, value);
    else this.view.setUint32(at, value);
  }

  /** The header of a str, bin, array or map of `count` items, in its smallest form. */
  sized(count, fix, fixLimit, format8, format16, format32, what) {
    if (count < fixLimit) this.byte(fix | count);
    else if (format8 !== null && count <= 0xff) this.head(format8, count, 1);
    else if (count <= 0xffff) this.head(format16, count, 2);
    else if (count <= 0xffffffff) this.head(format32, count, 4);
    else throw new MessagePackError(`${what} of ${count} is longer than MessagePack allows (2^32 - 1)`);
  }

  raw(bytes) {
    const at = this.claim(bytes.length); // first: it may replace this.bytes
    this.bytes.set(bytes, at);
  }

  result() {
    return this.bytes.slice(0, this.length);
  }
}

/** An integer within Number.MAX_SAFE_INTEGER, in its smallest form. */
function writeSafeInteger(writer, value) {
  if (value >= 0) {
    if (value <= 0x7f) writer.byte(value); // positive fixint
    else if (value <= 0xff) writer.head(UINT8, value, 1);
    else if (value <= 0xffff) writer.head(UINT16, value, 2);
    else if (value <= 0xffffffff) writer.head(UINT32, value, 4);
    else writer.put(UINT64, 8, "setBigUint64", BigInt(value));
  } else if (value >= -32) writer.byte(value & 0xff); // negative fixint: 0xe0 to 0xff
  else if (value >= -0x80) writer.put(INT8, 1, "setInt8", value);
  else if (value >= -0x8000) writer.put(INT16, 2, "setInt16", value);
  else if (value >= -0x80000000) writer.put(INT32, 4, "setInt32", value);
  else writer.put(INT64, 8, "setBigInt64", BigInt(value));
}

function writeValue(writer, value, depth, maxDepth) {
  switch (typeof value) {
    case "boolean":
      writer.byte(value ? TRUE : FALSE);
      return;
    case "number":
      // An integer that a Number holds exactly is an integer; any other number (a fraction, an
      // integer past 2^53, -0, NaN, an infinity) is a float 64, as it is in JavaScript.
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) writeSafeInteger(writer, value);
      else writer.put(FLOAT64, 8, "setFloat64", value);
      return;
    case "bigint":
      if (value < INT64_MIN || value > UINT64_MAX) {
        throw new MessagePackError(`the integer ${value} does not fit in 64 bits`);
      }
      if (value >= -Number.MAX_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER) writeSafeInteger(writer, Number(value));
      else if (value > 0n) writer.put(UINT64, 8, "setBigUint64", value);
      else writer.put(INT64, 8, "setBigInt64", value);
      return;
    case "string": {
      if (!isWellFormed(value)) throw new MessagePackError("a string holds a lone surrogate, which UTF-8 cannot carry");
      const bytes = utf8Encoder.encode(value);
      writer.sized(bytes.length, 0xa0, 32, STR8, STR16, STR32, "a string");
      writer.raw(bytes);
      return;
    }
    case "object":
      break;
    default:
      throw new MessagePackError(`a ${typeof value} cannot be encoded`);
  }
  if (value === null) {
    writer.byte(NIL);
    return;
  }
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) {
    const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
    writer.sized(bytes.length, 0, 0, BIN8, BIN16, BIN32, "a byte array");
    writer.raw(bytes);
    return;
  }
  if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) {
    throw new MessagePackError(`a ${value.constructor.name} cannot be encoded (use a Uint8Array, an array or an object)`);
  }
  if (typeof value.toJSON === "function") {
    // As JSON.stringify does: a Date becomes its ISO 8601 string.
    writeValue(writer, value.toJSON(), depth, maxDepth);
    return;
  }
  if (depth > maxDepth) throw new MessagePackError(`the value nests deeper than ${maxDepth} levels (or is circular)`);
  if (Array.isArray(value)) {
    writer.sized(value.length, 0x90, 16, null, ARRAY16, ARRAY32, "an array");
    // As JSON.stringify does: undefined in an array is null.
    for (const item of value) writeValue(writer, item === undefined ? null : item, depth + 1, maxDepth);
    return;
  }
  // As JSON.stringify does: an object's own enumerable properties, but those that are undefined.
  const keys = Object.keys(value).filter((key) => value[key] !== undefined);
  writer.sized(keys.length, 0x80, 16, null, MAP16, MAP32, "an object");
  for (const key of keys) {
    writeValue(writer, key, depth + 1, maxDepth);
    writeValue(writer, value[key], depth + 1, maxDepth);
  }
}

/**
 * Encode a value to MessagePack, as the client sends it on the `trio-rest.msgpack` subprotocol.
 *
 * null, booleans and strings map to nil, bool and str; a Number that is an integer within
 * ±(2^53 - 1) to the smallest integer format, any other Number (fractions, -0, NaN, the
 * infinities, integers beyond 2^53) to float 64; a BigInt to an integer (within -2^63 and
 * 2^64 - 1); a Uint8Array or ArrayBuffer to bin; arrays to arrays; other objects to maps of their
 * own enumerable properties. As with `JSON.stringify`, `toJSON` is honoured (a Date becomes its ISO
 * string), an undefined property is left out and an undefined array item is nil.
 * @param {*} value
 * @param {object} [options]
 * @param {number} [options.maxDepth=512] the deepest nesting of arrays and objects.
 * @returns {Uint8Array}
 * @throws {MessagePackError} for what MessagePack cannot carry: undefined alone, functions,
 *   symbols, other typed arrays, Map and Set, lone surrogates, integers beyond 64 bits, a
 *   nesting too deep (a circular value).
 */
export function encodeMessagePack(value, { maxDepth = MSGPACK_MAX_DEPTH } = {}) {
  const writer = new ByteWriter();
  writeValue(writer, value, 1, maxDepth);
  return writer.result();
}

/** Where `decodeMessagePack` is in its input. */
class ByteReader {
  constructor(bytes, maxDepth) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = 0;
    this.maxDepth = maxDepth;
  }

  /** Claim `count` bytes, or fail if fewer remain; returns where they start. */
  take(count, what) {
    const start = this.at;
    if (this.bytes.length - start < count) {
      throw new MessagePackError(
        `truncated: ${what} at byte ${start} needs ${count} bytes, ${this.bytes.length - start} remain`,
      );
    }
    this.at = start + count;
    return start;
  }

  /** A length or count of `width` bytes (1, 2, 4). */
  size(width, what) {
    const at = this.take(width, what);
    return width === 1 ? this.view.getUint8(at) : width === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
  }
}

function readString(reader, length) {
  const at = reader.take(length, "a string");
  try {
    return utf8Decoder.decode(reader.bytes.subarray(at, at + length));
  } catch {
    throw new MessagePackError(`the string at byte ${at} is not valid UTF-8`);
  }
}

/** Read a map key: only strings, as JavaScript objects (and the protocol) have. */
function readKey(reader) {
  const format = reader.bytes[reader.take(1, "a map key")];
  if ((format & 0xe0) === 0xa0) return readString(reader, format & 0x1f);
  if (format === STR8) return readString(reader, reader.size(1, "a string length"));
  if (format === STR16) return readString(reader, reader.size(2, "a string length"));
  if (format === STR32) return readString(reader, reader.size(4, "a string length"));
  throw new MessagePackError(`map keys must be strings; the key at byte ${reader.at - 1} is not`);
}

function readArray(reader, count, depth) {
  if (depth > reader.maxDepth) throw new MessagePackError(`the value nests deeper than ${reader.maxDepth} levels`);
  // Each item takes one byte at least: a count beyond what remains is a lie, refused before any work.
  if (count > reader.bytes.length - reader.at) {
    throw new MessagePackError(`truncated: an array of ${count} items, ${reader.bytes.length - reader.at} bytes remain`);
  }
  const items = [];
  for (let i = 0; i < count; i++) items.push(readValue(reader, depth + 1));
  return items;
}

function readMap(reader, count, depth) {
  if (depth > reader.maxDepth) throw new MessagePackError(`the value nests deeper than ${reader.maxDepth} levels`);
  if (count * 2 > reader.bytes.length - reader.at) {
    throw new MessagePackError(`truncated: a map of ${count} entries, ${reader.bytes.length - reader.at} bytes remain`);
  }
  const object = {};
  for (let i = 0; i < count; i++) {
    const key = readKey(reader);
    const value = readValue(reader, depth + 1);
    // An own property, as JSON.parse makes it: assigning "__proto__" would set the prototype.
    if (key === "__proto__") Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
    else object[key] = value;
  }
  return object;
}

/** The timestamp extension (type -1) as a Date; the part below a millisecond is dropped. */
function readTimestamp(reader, at, length) {
  let seconds;
  let nanoseconds;
  const view = reader.view;
  if (length === 4) {
    seconds = view.getUint32(at);
    nanoseconds = 0;
  } else if (length === 8) {
    const high = view.getUint32(at); // 30 bits of nanoseconds, then 34 bits of seconds
    nanoseconds = high >>> 2;
    seconds = (high & 0x3) * 2 ** 32 + view.getUint32(at + 4);
  } else if (length === 12) {
    nanoseconds = view.getUint32(at);
    const wide = view.getBigInt64(at + 4);
    if (wide > BigInt(DATE_MAX_SECONDS) || wide < -BigInt(DATE_MAX_SECONDS)) {
      throw new MessagePackError(`the timestamp at byte ${at} is beyond the range of a Date`);
    }
    seconds = Number(wide);
  } else {
    throw new MessagePackError(`a timestamp of ${length} bytes (at byte ${at}) is not one of 4, 8 or 12`);
  }
  if (nanoseconds > 999999999) throw new MessagePackError(`the timestamp at byte ${at} has ${nanoseconds} nanoseconds`);
  const date = new Date(seconds * 1000 + Math.floor(nanoseconds / 1e6));
  if (Number.isNaN(date.getTime())) throw new MessagePackError(`the timestamp at byte ${at} is beyond the range of a Date`);
  return date;
}

function readExtension(reader, length) {
  const type = reader.view.getInt8(reader.take(1, "an extension type"));
  const at = reader.take(length, "an extension");
  if (type === TIMESTAMP) return readTimestamp(reader, at, length);
  throw new MessagePackError(`the extension type ${type} (at byte ${at - 1}) is not supported`);
}

/** A 64-bit integer: a Number when it holds it exactly, a BigInt otherwise. */
function exactInteger(value) {
  return value >= -Number.MAX_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER ? Number(value) : value;
}

function readValue(reader, depth) {
  const at = reader.take(1, "a value");
  const format = reader.bytes[at];
  const view = reader.view;
  if (format <= 0x7f) return format; // positive fixint
  if (format >= 0xe0) return format - 0x100; // negative fixint
  if (format <= 0x8f) return readMap(reader, format & 0x0f, depth);
  if (format <= 0x9f) return readArray(reader, format & 0x0f, depth);
  if (format <= 0xbf) return readString(reader, format & 0x1f);
  switch (format) {
    case NIL:
      return null;
    case FALSE:
      return false;
    case TRUE:
      return true;
    case BIN8:
    case BIN16:
    case BIN32: {
      const length = reader.size(format === BIN8 ? 1 : format === BIN16 ? 2 : 4, "a byte array length");
      const start = reader.take(length, "a byte array");
      return reader.bytes.slice(start, start + length);
    }
    case EXT8:
    case EXT16:
    case EXT32:
      return readExtension(reader, reader.size(format === EXT8 ? 1 : format === EXT16 ? 2 : 4, "an extension length"));
    case FLOAT32:
      return view.getFloat32(reader.take(4, "a float 32"));
    case FLOAT64:
      return view.getFloat64(reader.take(8, "a float 64"));
    case UINT8:
      return view.getUint8(reader.take(1, "a uint 8"));
    case UINT16:
      return view.getUint16(reader.take(2, "a uint 16"));
    case UINT32:
      return view.getUint32(reader.take(4, "a uint 32"));
    case UINT64:
      return exactInteger(view.getBigUint64(reader.take(8, "a uint 64")));
    case INT8:
      return view.getInt8(reader.take(1, "an int 8"));
    case INT16:
      return view.getInt16(reader.take(2, "an int 16"));
    case INT32:
      return view.getInt32(reader.take(4, "an int 32"));
    case INT64:
      return exactInteger(view.getBigInt64(reader.take(8, "an int 64")));
    case STR8:
    case STR16:
    case STR32:
      return readString(reader, reader.size(format === STR8 ? 1 : format === STR16 ? 2 : 4, "a string length"));
    case ARRAY16:
    case ARRAY32:
      return readArray(reader, reader.size(format === ARRAY16 ? 2 : 4, "an array length"), depth);
    case MAP16:
    case MAP32:
      return readMap(reader, reader.size(format === MAP16 ? 2 : 4, "a map length"), depth);
    default:
      if (format >= FIXEXT1 && format <= FIXEXT16) return readExtension(reader, 1 << (format - FIXEXT1));
      throw new MessagePackError(`the byte 0x${format.toString(16)} at byte ${at} is no MessagePack format`);
  }
}

/**
 * Decode one MessagePack value, as the client reads a binary frame on `trio-rest.msgpack`.
 *
 * nil, bool, str and float (32 or 64) map to null, booleans, strings and Numbers; an integer to a
 * Number when it is within ±(2^53 - 1), to a BigInt otherwise; bin to a Uint8Array (a copy);
 * arrays to arrays; maps to plain objects (a later duplicate key wins, as in `JSON.parse`); the
 * timestamp extension to a Date (whole milliseconds). The bytes must hold exactly one value.
 * @param {Uint8Array|ArrayBuffer|ArrayBufferView} bytes
 * @param {object} [options]
 * @param {number} [options.maxDepth=512] the deepest nesting of arrays and maps.
 * @returns {*}
 * @throws {MessagePackError} for truncated input, a length or count beyond what remains (found
 *   from its header, before anything is allocated), trailing bytes, invalid UTF-8, map keys that
 *   are not strings, other extension types, the unused format 0xc1, a nesting too deep.
 */
export function decodeMessagePack(bytes, { maxDepth = MSGPACK_MAX_DEPTH } = {}) {
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  else if (ArrayBuffer.isView(bytes) && !(bytes instanceof Uint8Array)) {
    bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } else if (!(bytes instanceof Uint8Array)) {
    throw new MessagePackError("decodeMessagePack reads a Uint8Array, an ArrayBuffer or an ArrayBuffer view");
  }
  const reader = new ByteReader(bytes, maxDepth);
  const value = readValue(reader, 1);
  if (reader.at !== bytes.length) {
    throw new MessagePackError(`${bytes.length - reader.at} bytes follow the value (at byte ${reader.at})`);
  }
  return value;
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Times a write with an idempotency key is sent, at most, when connections drop before its reply. */
const WRITE_ATTEMPTS = 3;
/** Times a subscription is sent again after a reconnection while the server answers 503. */
const RESUBSCRIBE_ATTEMPTS = 8;

/** A final notification's error body saying the server closes (503 `closing`). */
function isClosing(data) {
  return data !== null && typeof data === "object" && data.code === "closing";
}

/** Resolve after `seconds`. */
function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/**
 * The wait before a retry: 0.1 s doubled `step` times, at most `maxBackoff`, jittered down to
 * half of it, so that the clients of a restarted server spread out.
 */
function backoff(step, maxBackoff) {
  return Math.min(maxBackoff, 0.1 * 2 ** Math.min(step, 30)) * (0.5 + Math.random() / 2);
}

/** A fresh idempotency key: 32 hex digits (from Math.random where Web Crypto is missing, Node 18). */
function randomKey() {
  const bytes = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A live subscription: an async iterator of notification envelopes.
 *
 * With `reconnect`, it outlives a dropped connection: it is sent again with `args.since`,
 * the last `{epoch, offset}` seen per topic, and the server first sends one `"recovery"`
 * notification per topic (its `data.recovered` says whether nothing was lost).
 */
export class Subscription {
  constructor(client, id, url, args, data, response) {
    this._client = client;
    /** The subscription's request id (its notifications carry it). */
    this.id = id;
    this.url = url;
    this.args = args;
    this.data = data;
    /** The reply to the `SUBSCRIBE` (status 200). */
    this.response = response;
    /** The last `{epoch, offset}` seen per topic: what a resubscription recovers from. */
    this.positions = {};
    this._queue = [];
    this._waiters = [];
    this._error = null;
    this._done = false;
  }

  _push(note) {
    if (note.final && this._client.reconnect && !this._client._closed && isClosing(note.data)) {
      return; // the server is going away: the subscription is renewed after the reconnection
    }
    if (note.offset != null && note.topic != null) {
      const known = note.topic in this.positions;
      const recovering = note.event_name === "recovery" && note.data !== null && typeof note.data === "object";
      // A recovery notice gives the topic's position now: where a subscriber that knew none
      // starts, or one that cannot recover starts again. One that recovers moves on with the
      // missed notifications themselves, so that a drop meanwhile loses none.
      if (!(recovering && known && note.data.recovered === true)) {
        this.positions[note.topic] = { epoch: note.epoch, offset: note.offset };
      }
    }
    const waiter = this._waiters.shift();
    if (waiter) waiter.resolve({ value: note, done: false });
    else this._queue.push(note);
    if (note.final) this._finish(null);
  }

  _finish(error) {
    if (this._done) return;
    this._done = true;
    this._error = error;
    this._client._subscriptions.delete(this.id);
    for (const waiter of this._waiters.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** @returns {Promise<IteratorResult<object>>} the next notification. */
  next() {
    if (this._queue.length) return Promise.resolve({ value: this._queue.shift(), done: false });
    if (this._done) {
      return this._error ? Promise.reject(this._error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  /** Leaving a `for await` loop cancels the subscription. */
  async return() {
    await this.cancel();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /**
   * Send the protocol `cancel` for this subscription and end the iteration.
   * @returns {Promise<void>}
   */
  async cancel() {
    if (this._done) return;
    this._finish(null);
    await this._client._cancel(this.id);
  }
}

/** The close of a connection that needed an `auth` message and got none in time (docs/protocol.md). */
const AUTH_REQUIRED = { code: 1008, reason: "authentication required" };

/** The subprotocol each `codec` option means. */
const SUBPROTOCOLS = { json: "trio-rest.json", msgpack: "trio-rest.msgpack" };

/** A client on one WebSocket; made by `connect`. */
export class Client {
  constructor(url, options = {}) {
    this.url = url;
    /** `"json"` or `"msgpack"`: how envelopes are encoded. */
    this.codec = options.codec ?? "json";
    if (!Object.hasOwn(SUBPROTOCOLS, this.codec)) {
      throw new TrioRestError(`codec must be "json" or "msgpack", not ${JSON.stringify(String(this.codec))}`);
    }
    this.token = options.token ?? null;
    /** Seconds a request waits for its reply by default. */
    this.timeout = options.timeout ?? 65;
    this.reconnect = options.reconnect ?? false;
    this.maxBackoff = options.maxBackoff ?? 10;
    this.onToken = options.onToken ?? null;
    this.tokenIn = options.tokenIn ?? "message";
    /** Called with each notification that belongs to no subscription of this client. */
    this.onNotification = options.onNotification ?? null;
    /**
     * Called with "open", "reconnecting" or "closed" as the connection's state changes, and after
     * a drop with why: `{code, reason}` of the WebSocket's close, or `{error}` of a refused reconnection.
     */
    this.onState = options.onState ?? null;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new TrioRestError(
        "no WebSocket constructor: pass options.WebSocket (Node 20: run with --experimental-websocket)",
      );
    }
    this._nextId = 1;
    this._pending = new Map(); // id -> {resolve, reject, timer}
    this._subscriptions = new Map(); // id -> Subscription
    this._socket = null;
    this._closed = false;
    this._opening = null;
  }

  _socketUrl() {
    if (!this.token || this.tokenIn !== "query") return this.url;
    const url = new URL(this.url);
    url.searchParams.set("token", this.token);
    return url.toString();
  }

  /** Open the socket; resolves once it is open and, with a token, the `auth` was accepted. */
  async _open() {
    await this._openSocket();
    if (this.token && this.tokenIn === "message") {
      const reply = await this._exchange({ type: "auth", token: this.token }, `auth-${this._nextId++}`);
      if (reply.status >= 400) {
        const ws = this._socket;
        this._socket = null;
        ws.close(1000);
        throw new AuthenticationError(reply);
      }
    }
    this._state("open");
  }

  _state(state, why) {
    if (!this.onState) return;
    try {
      this.onState(state, why);
    } catch {
      // a hook that throws must not break the connection
    }
  }

  _openSocket() {
    return new Promise((resolve, reject) => {
      const subprotocol = SUBPROTOCOLS[this.codec];
      // MessagePack is asked for with JSON second: a server without MessagePack then agrees to
      // JSON, and the client can say so. (Asked for alone, such a server answers with no
      // subprotocol, and the WebSocket fails with no reason a browser would tell.)
      const offered = this.codec === "msgpack" ? [subprotocol, SUBPROTOCOLS.json] : subprotocol;
      let ws;
      try {
        ws = new this._WebSocket(this._socketUrl(), offered);
      } catch (error) {
        reject(new ConnectionClosedError(`cannot open ${this.url}: ${error.message}`));
        return;
      }
      if (this.codec === "msgpack") ws.binaryType = "arraybuffer"; // a browser's default is Blob
      let opened = false;
      ws.onopen = () => {
        // A server without MessagePack agrees to JSON: it would read and write JSON, which this
        // client must not take for MessagePack. (JSON is the protocol's default: a server that
        // names no subprotocol speaks it, so only MessagePack needs the server's agreement.)
        if (this.codec === "msgpack" && ws.protocol !== subprotocol) {
          const agreed = ws.protocol ? `"${ws.protocol}"` : "no subprotocol";
          reject(new SubprotocolError(`${this.url} answered with ${agreed}, not "${subprotocol}": it does not speak MessagePack`));
          ws.close(1000);
          return;
        }
        opened = true;
        this._socket = ws;
        resolve();
      };
      ws.onmessage = (event) => this._receive(ws, event.data);
      ws.onclose = (event) => {
        if (!opened) {
          reject(new ConnectionClosedError(`cannot open ${this.url}`));
          return;
        }
        if (this._socket !== ws) return;
        const close = { code: event?.code ?? 1006, reason: event?.reason ?? "" };
        const said = `${close.code}${close.reason ? ` ${close.reason}` : ""}`;
        this._dropped(new ConnectionClosedError(`the connection closed (${said})`, close), close);
      };
      ws.onerror = (event) => {
        // A close event follows, but not always one that failed to open (Node 20's WebSocket
        // stays "connecting" after a refused handshake): it is rejected here.
        if (opened) return;
        reject(new ConnectionClosedError(`cannot open ${this.url}${event?.message ? `: ${event.message}` : ""}`));
      };
    });
  }

  /** An envelope as the connection's codec writes it: a string (text frame) or bytes (binary). */
  _encode(envelope) {
    return this.codec === "msgpack" ? encodeMessagePack(envelope) : JSON.stringify(envelope);
  }

  _receive(ws, data) {
    let message;
    if (typeof data === "string") {
      // Text frames are JSON (the server sends none on a MessagePack connection).
      try {
        message = JSON.parse(data);
      } catch {
        return;
      }
    } else if (this.codec === "msgpack") {
      try {
        message = decodeMessagePack(data);
      } catch (error) {
        // Which request it answered cannot be known: rather than leave that request waiting,
        // the connection is given up, saying why (and reopened with `reconnect`).
        if (this._socket !== ws) return;
        this._dropped(new ConnectionClosedError(`the server sent a message this client cannot read: ${error.message}`));
        ws.close(1000);
        return;
      }
    } else {
      return; // binary frames on a JSON connection: the server sends none to this client
    }
    if (message === null || typeof message !== "object") return;
    if (message.type === "notification") {
      const sub = message.id != null ? this._subscriptions.get(message.id) : undefined;
      if (sub) sub._push(message);
      else if (this.onNotification) this.onNotification(message);
      return;
    }
    const waiter = this._pending.get(message.id);
    if (waiter && (message.type === "response" || message.type === "pong")) {
      this._pending.delete(message.id);
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    }
  }

  /** The socket is gone (`close`: its close event's `{code, reason}`); reopen it or end. */
  _dropped(error = new ConnectionClosedError("the connection closed"), close = undefined) {
    this._socket = null;
    for (const [id, waiter] of this._pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this._pending.delete(id);
    }
    const ended = this._closed;
    // The server wants credentials this client does not send: reconnecting as it is would be
    // closed the same way, again and again. (With `onToken`, a reconnection may bring a token.)
    if (close?.code === AUTH_REQUIRED.code && close.reason === AUTH_REQUIRED.reason && !this.onToken) {
      this._closed = true;
    }
    if (this._closed || !this.reconnect) {
      this._stop(close, ended ? null : error);
      return;
    }
    this._state("reconnecting", close);
    this._opening = this._reopen();
  }

  /** The client is done: say so (`why`), and end every subscription (with `error`, if any). */
  _stop(why, error) {
    this._state("closed", why);
    for (const sub of [...this._subscriptions.values()]) sub._finish(error);
  }

  async _reopen() {
    for (let attempt = 1; !this._closed; attempt++) {
      await sleep(backoff(attempt - 1, this.maxBackoff));
      if (this._closed) return;
      try {
        if (this.onToken) this.token = await this.onToken();
        await this._open();
      } catch (error) {
        if (error instanceof AuthenticationError || error instanceof SubprotocolError) {
          // The token (even a refreshed one) is refused, or the server no longer speaks the
          // client's codec: the client stops for good.
          this._closed = true;
          this._stop({ error }, error);
          return;
        }
        continue;
      }
      this._opening = null;
      for (const sub of [...this._subscriptions.values()]) this._resubscribe(sub);
      return;
    }
  }

  /**
   * Send a subscription again after a reconnection, from the positions it reached. A 503 (the
   * server, or its broker, is not ready yet) is retried with backoff, a few times.
   */
  async _resubscribe(sub) {
    for (let attempt = 1; !sub._done; attempt++) {
      const args = { ...sub.args, since: { ...sub.positions } };
      let reply;
      try {
        reply = await this._exchange({ method: "SUBSCRIBE", url: sub.url, args, data: sub.data }, sub.id);
      } catch (error) {
        if (!(error instanceof ConnectionClosedError)) sub._finish(error);
        return; // the connection dropped again: the next reconnection resubscribes
      }
      if (reply.status === 200) {
        sub.response = reply;
        return;
      }
      if (reply.status !== 503 || attempt >= RESUBSCRIBE_ATTEMPTS) {
        sub._finish(new SubscriptionError(reply));
        return;
      }
      await sleep(backoff(attempt + 1, this.maxBackoff));
    }
  }

  async _ready() {
    if (this._socket) return this._socket;
    if (this._opening) await this._opening;
    if (!this._socket) throw new ConnectionClosedError("the connection is closed");
    return this._socket;
  }

  /** Send `envelope` under `id` and resolve with its reply; on `timeout` cancel and reject. */
  async _exchange(envelope, id, timeout = this.timeout) {
    const ws = await this._ready();
    if (this._socket !== ws) throw new ConnectionClosedError("the connection closed");
    const frame = this._encode({ ...envelope, id }); // may throw: then nothing waits for a reply
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        this._cancel(id).catch(() => {});
        reject(new RequestTimeoutError(`no reply to ${envelope.method} ${envelope.url} in ${timeout}s`));
      }, timeout * 1000);
      this._pending.set(id, { resolve, reject, timer });
      ws.send(frame);
    });
  }

  /** Send a `cancel` for `id` (its request's reply, a 499, is then ignored). */
  async _cancel(id) {
    const ws = this._socket;
    if (ws) ws.send(this._encode({ type: "cancel", id }));
  }

  /**
   * Send a request and wait for its reply.
   * @param {string} method GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
   * @param {string} url an absolute path, with an optional query string.
   * @param {object} [options]
   * @param {*} [options.data] the body.
   * @param {object} [options.args] query-like parameters.
   * @param {string} [options.eventName] echoed on the reply as `event_name`.
   * @param {number} [options.timeout] seconds to wait for the reply (the client's default if
   *   omitted); past it a `cancel` is sent and the promise rejects with `RequestTimeoutError`.
   * @param {string} [options.idempotencyKey] sent as `idempotency_key`: the server runs a write
   *   with the same key once. A client that reconnects gives every write one by itself, and
   *   sends a keyed write again (up to 3 times) when the connection drops before its reply.
   * @returns {Promise<object>} the response envelope: `{type, id, status, data, code, detail, errors}`.
   */
  request(method, url, options = {}) {
    method = method.toUpperCase();
    const envelope = { method, url };
    if (options.args !== undefined) envelope.args = options.args;
    if (options.data !== undefined) envelope.data = options.data;
    if (options.eventName !== undefined) envelope.event_name = options.eventName;
    let key = options.idempotencyKey;
    if (key === undefined && this.reconnect && WRITES.has(method)) key = randomKey();
    if (key !== undefined) envelope.idempotency_key = key;
    const timeout = options.timeout ?? this.timeout;
    if (key === undefined || !this.reconnect) return this._exchange(envelope, this._nextId++, timeout);
    return this._resend(envelope, timeout);
  }

  /** A keyed write, sent again on the next connection when one drops before its reply. */
  async _resend(envelope, timeout) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this._exchange(envelope, this._nextId++, timeout);
      } catch (error) {
        if (!(error instanceof ConnectionClosedError) || attempt >= WRITE_ATTEMPTS || this._closed) throw error;
      }
    }
  }

  /** `request("GET", url, options)` */
  get(url, options = {}) {
    return this.request("GET", url, options);
  }
  /** `request("POST", url, {...options, data})` */
  post(url, data, options = {}) {
    return this.request("POST", url, { ...options, data });
  }
  /** `request("PUT", url, {...options, data})` */
  put(url, data, options = {}) {
    return this.request("PUT", url, { ...options, data });
  }
  /** `request("PATCH", url, {...options, data})` */
  patch(url, data, options = {}) {
    return this.request("PATCH", url, { ...options, data });
  }
  /** `request("DELETE", url, options)` */
  delete(url, options = {}) {
    return this.request("DELETE", url, options);
  }

  /**
   * `SUBSCRIBE` to `url`.
   * @param {string} url
   * @param {object} [options] `{args, data, timeout}`.
   * @returns {Promise<Subscription>} once the server answered 200; rejects with
   *   `SubscriptionError` (its `response` is the reply) otherwise.
   */
  async subscribe(url, options = {}) {
    const id = this._nextId++;
    const args = { ...(options.args ?? {}) };
    const sub = new Subscription(this, id, url, args, options.data, null);
    // Registered first: a notification may follow the reply in the same read.
    this._subscriptions.set(id, sub);
    const envelope = { method: "SUBSCRIBE", url, args };
    if (this.reconnect) {
      // Positions the caller gives are where it recovers from, now and after a drop.
      const since = args.since !== null && typeof args.since === "object" ? args.since : {};
      envelope.args = { ...args, since };
      Object.assign(sub.positions, since);
    }
    if (options.data !== undefined) envelope.data = options.data;
    let reply;
    try {
      reply = await this._exchange(envelope, id, options.timeout ?? this.timeout);
    } catch (error) {
      this._subscriptions.delete(id);
      throw error;
    }
    if (reply.status !== 200) {
      this._subscriptions.delete(id);
      throw new SubscriptionError(reply);
    }
    sub.response = reply;
    return sub;
  }

  /**
   * Send a `ping`; resolves with the round trip in milliseconds.
   * @returns {Promise<number>}
   */
  async ping(options = {}) {
    const started = Date.now();
    await this._exchange({ type: "ping" }, `ping-${this._nextId++}`, options.timeout ?? this.timeout);
    return Date.now() - started;
  }

  /** Close the connection for good: what waits rejects, subscriptions end. */
  close() {
    this._closed = true;
    const ws = this._socket;
    this._dropped();
    if (ws) ws.close(1000);
  }
}

/**
 * Open a connection.
 * @param {string} url `ws://host:port/` or `wss://...`.
 * @param {object} [options]
 * @param {string} [options.token] a JWT, sent as an `auth` message first (or as `?token=`
 *   when `options.tokenIn` is `"query"`).
 * @param {number} [options.timeout=65] seconds a request waits for its reply by default.
 * @param {boolean} [options.reconnect=false] reopen a dropped connection with exponential
 *   backoff, and resubscribe with `args.since` (recovery).
 * @param {number} [options.maxBackoff=10] the longest wait between two attempts, in seconds.
 * @param {Function} [options.WebSocket] the WebSocket constructor (default `globalThis.WebSocket`).
 * @param {string} [options.tokenIn="message"] `"message"` (an `auth` message) or `"query"`.
 * @param {string} [options.codec="json"] `"json"` (the `trio-rest.json` subprotocol) or
 *   `"msgpack"` (`trio-rest.msgpack`: binary frames, see `encodeMessagePack` and
 *   `decodeMessagePack` for what values become). A server that does not agree to
 *   MessagePack makes `connect` reject with `SubprotocolError`.
 * @param {Function} [options.onNotification] receives notifications tied to no subscription.
 * @param {Function} [options.onToken] called (and awaited) before each reconnection; its result
 *   is the token sent on the new connection (to refresh an expired one).
 * @param {Function} [options.onState] called with `"open"` (and after each reconnection),
 *   `"reconnecting"` or `"closed"`; after a drop, with a second argument saying why: the
 *   WebSocket's `{code, reason}` (1006: lost without a close frame), or `{error}` when a
 *   reconnection was refused (`AuthenticationError`, `SubprotocolError`). A close with 1008
 *   "authentication required" (the server demands a token: `App(require_auth=True)`) is not
 *   reconnected unless `onToken` can bring one.
 * @returns {Promise<Client>}
 */
export async function connect(url, options = {}) {
  const client = new Client(url, options);
  await client._open();
  return client;
}
