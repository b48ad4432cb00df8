// The MessagePack codec of the JavaScript client (trio_rest/static/trio-rest.js), checked against
// Python's msgpack: tests/js/msgpack_vectors.py writes the vectors (what msgpack.packb makes of
// values at every format boundary, and input a decoder must refuse).
//
//     node --test tests/js/msgpack.test.mjs
//
// TESTS_PYTHON names the Python that has msgpack (default: python3).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MessagePackError, decodeMessagePack, encodeMessagePack } from "../../trio_rest/static/trio-rest.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const python = process.env.TESTS_PYTHON ?? "python3";
const vectors = JSON.parse(
  execFileSync(python, [path.join(here, "msgpack_vectors.py")], { encoding: "utf8", maxBuffer: 64 << 20 }),
);

const fromHex = (hex) => Uint8Array.from(Buffer.from(hex, "hex"));
const toHex = (bytes) => Buffer.from(bytes).toString("hex");

/** Equal hex strings, or a failure that shows where they part (not megabytes of both). */
function assertSameHex(actual, expected) {
  if (actual === expected) return;
  let at = 0;
  while (at < actual.length && actual[at] === expected[at]) at++;
  const byte = Math.floor(at / 2) * 2;
  assert.fail(
    `byte ${byte / 2} differs (of ${actual.length / 2} and ${expected.length / 2}): ` +
      `${actual.slice(byte, byte + 32)} where msgpack wrote ${expected.slice(byte, byte + 32)}`,
  );
}

/** The JavaScript value a tagged vector value stands for (msgpack_vectors.py says how it is tagged). */
function untag(tagged) {
  if (tagged === null || typeof tagged !== "object") return tagged;
  if ("int" in tagged) {
    const big = BigInt(tagged.int);
    const safe = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER);
    return safe ? Number(big) : big;
  }
  if ("float" in tagged) return Number(tagged.float);
  if ("bin" in tagged) return fromHex(tagged.bin);
  if ("array" in tagged) return tagged.array.map(untag);
  if ("map" in tagged) return Object.fromEntries(tagged.map.map(([key, value]) => [untag(key), untag(value)]));
  if ("timestamp" in tagged) {
    const [seconds, nanoseconds] = tagged.timestamp;
    return new Date(seconds * 1000 + Math.floor(nanoseconds / 1e6));
  }
  throw new Error(`unknown tag ${JSON.stringify(tagged)}`);
}

test("the vectors cover every format the decoder reads", () => {
  // The first byte of each vector, by format family: a change of msgpack_vectors.py that lost one
  // would leave a format untested.
  const formats = new Set(vectors.valid.map((vector) => vector.hex.slice(0, 2)));
  for (const format of ["c0", "c2", "c3", "c4", "c5", "c6", "ca", "cb", "cc", "cd", "ce", "cf"]) {
    assert.ok(formats.has(format), format);
  }
  for (const format of ["d0", "d1", "d2", "d3", "d6", "d7", "c7", "d9", "da", "db", "dc", "dd", "de", "df"]) {
    assert.ok(formats.has(format), format);
  }
  for (const format of ["00", "7f", "ff", "e0", "80", "8f", "90", "9f", "a0", "bf"]) {
    assert.ok(formats.has(format), format);
  }
});

describe("what Python's msgpack writes", () => {
  for (const vector of vectors.valid) {
    test(`decodes: ${vector.name}`, () => {
      assert.deepStrictEqual(decodeMessagePack(fromHex(vector.hex)), untag(vector.value));
    });
    if (vector.same) {
      test(`encodes to the same bytes: ${vector.name}`, () => {
        assertSameHex(toHex(encodeMessagePack(untag(vector.value))), vector.hex);
      });
    }
  }
});

describe("what the decoder refuses", () => {
  for (const vector of vectors.invalid) {
    test(vector.name, () => {
      const options = vector.maxDepth === undefined ? undefined : { maxDepth: vector.maxDepth };
      assert.throws(
        () => decodeMessagePack(fromHex(vector.hex), options),
        (error) => error instanceof MessagePackError && error.message.includes(vector.error),
      );
    });
  }

  test("maxDepth counts the outermost container as 1", () => {
    const six = fromHex(vectors.invalid.find((vector) => vector.maxDepth === 5).hex);
    assert.deepStrictEqual(decodeMessagePack(six, { maxDepth: 6 }), [[[[[[]]]]]]);
  });

  test("a truncated input is refused at every length", () => {
    const whole = encodeMessagePack({ a: [1, 2 ** 40, "text", new Uint8Array(3), { b: -1.5 }], c: 2n ** 63n });
    for (let length = 0; length < whole.length; length++) {
      assert.throws(() => decodeMessagePack(whole.subarray(0, length)), /truncated/, `${length} bytes`);
    }
  });
});

describe("round trips and the JavaScript mapping", () => {
  test("integers around every boundary come back as they went", () => {
    const boundaries = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    for (const edge of boundaries) {
      for (const value of [edge - 1, edge, edge + 1, -edge - 1, -edge, -edge + 1]) {
        if (!Number.isSafeInteger(value)) continue;
        const expected = Object.is(value, -0) ? -0 : value;
        assert.ok(Object.is(decodeMessagePack(encodeMessagePack(value)), expected), String(value));
      }
    }
    for (const value of [2n ** 53n, 2n ** 64n - 1n, -(2n ** 53n), -(2n ** 63n)]) {
      assert.equal(decodeMessagePack(encodeMessagePack(value)), value);
    }
    // A BigInt that a Number holds exactly comes back a Number.
    assert.equal(decodeMessagePack(encodeMessagePack(5n)), 5);
  });

  test("an integer beyond 64 bits is refused, not rounded", () => {
    assert.throws(() => encodeMessagePack(2n ** 64n), MessagePackError);
    assert.throws(() => encodeMessagePack(-(2n ** 63n) - 1n), MessagePackError);
  });

  test("a Number that is not a safe integer is a float 64", () => {
    for (const value of [0.1, 2 ** 60, -(2 ** 60), -0, NaN, Infinity, 1e-320]) {
      const bytes = encodeMessagePack(value);
      assert.equal(bytes[0], 0xcb);
      assert.ok(Object.is(decodeMessagePack(bytes), value), String(value));
    }
  });

  test("strings of every length class and any characters come back", () => {
    for (const length of [0, 31, 32, 255, 256, 65535, 65536, 70000]) {
      for (const unit of ["a", "é", "€", "😀"]) {
        const text = unit.repeat(Math.ceil(length / new TextEncoder().encode(unit).length));
        assert.equal(decodeMessagePack(encodeMessagePack(text)), text);
      }
    }
  });

  test("a lone surrogate is refused: UTF-8 cannot carry it", () => {
    assert.throws(() => encodeMessagePack({ name: "a\ud800b" }), /lone surrogate/);
    assert.throws(() => encodeMessagePack("\udc00"), /lone surrogate/);
  });

  test("bytes are bin, and come back as a Uint8Array of their own", () => {
    const buffer = new Uint8Array([9, 1, 2, 3, 9]);
    const decoded = decodeMessagePack(encodeMessagePack({ bytes: buffer.subarray(1, 4), whole: buffer.buffer }));
    assert.deepStrictEqual(decoded, { bytes: new Uint8Array([1, 2, 3]), whole: new Uint8Array([9, 1, 2, 3, 9]) });
    const outer = encodeMessagePack(new Uint8Array([7]));
    const inner = decodeMessagePack(outer);
    inner[0] = 8;
    assert.equal(outer[2], 7, "the decoded bytes are a copy");
  });

  test("objects and arrays map as JSON.stringify and JSON.parse map them", () => {
    const value = {
      a: [1, undefined, "x"],
      skipped: undefined,
      when: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 5)),
      nested: { deeper: [{}, []] },
    };
    assert.deepStrictEqual(decodeMessagePack(encodeMessagePack(value)), JSON.parse(JSON.stringify(value)));
  });

  test("a __proto__ key is an own property, as JSON.parse makes it", () => {
    const decoded = decodeMessagePack(encodeMessagePack(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}')));
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.equal(decoded.polluted, undefined);
    assert.deepStrictEqual(Object.keys(decoded), ["__proto__", "a"]);
    assert.deepStrictEqual(decoded.__proto__, { polluted: true });
  });

  test("what MessagePack cannot carry is refused, saying what", () => {
    const circular = { a: 1 };
    circular.self = circular;
    assert.throws(() => encodeMessagePack(circular), /nests deeper than 512 levels \(or is circular\)/);
    assert.throws(() => encodeMessagePack(undefined), /undefined cannot be encoded/);
    assert.throws(() => encodeMessagePack({ f() {} }), /function cannot be encoded/);
    assert.throws(() => encodeMessagePack([Symbol("s")]), /symbol cannot be encoded/);
    assert.throws(() => encodeMessagePack(new Map()), /Map cannot be encoded/);
    assert.throws(() => encodeMessagePack(new Uint16Array(2)), /Uint16Array cannot be encoded/);
    assert.throws(() => encodeMessagePack([[1]], { maxDepth: 1 }), /nests deeper than 1 levels/);
  });

  test("any view of the bytes is read, at its offset", () => {
    const bytes = encodeMessagePack({ k: "v" });
    const padded = new Uint8Array(bytes.length + 4);
    padded.set(bytes, 2);
    assert.deepStrictEqual(decodeMessagePack(padded.subarray(2, 2 + bytes.length)), { k: "v" });
    assert.deepStrictEqual(decodeMessagePack(new DataView(padded.buffer, 2, bytes.length)), { k: "v" });
    assert.deepStrictEqual(decodeMessagePack(bytes.slice().buffer), { k: "v" });
    assert.throws(() => decodeMessagePack("81a16ba176"), /reads a Uint8Array/);
  });

  test("Python reads what JavaScript writes", () => {
    const value = {
      id: 2n ** 64n - 1n,
      negative: -(2n ** 63n),
      float: 2 ** 60,
      zero: -0,
      text: "é😀\ufeff",
      bytes: new Uint8Array([0, 255]),
      list: Array.from({ length: 70000 }, (_, i) => i % 3),
    };
    const script = [
      "import sys, msgpack, math",
      "v = msgpack.unpackb(sys.stdin.buffer.read(), raw=False)",
      "assert v['id'] == 2**64 - 1 and v['negative'] == -2**63, v",
      "assert v['float'] == 2.0**60 and type(v['float']) is float, v['float']",
      "assert math.copysign(1, v['zero']) < 0 and type(v['zero']) is float",
      "assert v['text'] == '\\u00e9\\U0001f600\\ufeff' and v['bytes'] == b'\\x00\\xff'",
      "assert v['list'] == [i % 3 for i in range(70000)]",
      "print('read')",
    ].join("\n");
    const out = execFileSync(python, ["-c", script], { input: encodeMessagePack(value), encoding: "utf8" });
    assert.equal(out.trim(), "read");
  });
});
