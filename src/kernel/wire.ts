/**
 * The Jupyter wire protocol (messaging spec 5.3): framing, signing and verification.
 *
 *   [identities…, "<IDS|MSG>", hmac, header, parent_header, metadata, content, buffers…]
 *
 * Every incoming message is checked against the connection file's key with HMAC-SHA256,
 * compared in constant time. A message with a missing or wrong signature, or that does not
 * parse, is rejected with a reason (the server logs it and keeps serving).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const PROTOCOL_VERSION = "5.3";
const DELIMITER = Buffer.from("<IDS|MSG>");

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

export interface Message {
  identities: Buffer[];
  header: Header;
  parent: Partial<Header>;
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
  buffers: Buffer[];
}

export class WireError extends Error {}

function sign(key: string, parts: (Buffer | string)[]): string {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

function parseJson(part: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(part.toString("utf8"));
  } catch {
    throw new WireError(`${what} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new WireError(`${what} is not an object`);
  return value as Record<string, unknown>;
}

/** Parses and verifies raw frames. Throws WireError saying what was wrong. */
export function decode(key: string, frames: Buffer[]): Message {
  const at = frames.findIndex((f) => f.equals(DELIMITER));
  if (at < 0) throw new WireError("no <IDS|MSG> delimiter");
  if (frames.length < at + 6) throw new WireError(`too few frames (${frames.length - at - 1} after the delimiter, need 5)`);
  const signature = frames[at + 1].toString("ascii");
  const body = frames.slice(at + 2, at + 6);
  if (key !== "") {
    if (signature.length === 0) throw new WireError("missing signature");
    const expected = Buffer.from(sign(key, body), "ascii");
    const given = Buffer.from(signature, "ascii");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new WireError("wrong signature");
  }
  const header = parseJson(body[0], "header") as unknown as Header;
  if (typeof header.msg_type !== "string" || typeof header.msg_id !== "string") {
    throw new WireError("header lacks msg_type or msg_id");
  }
  return {
    identities: frames.slice(0, at),
    header,
    parent: parseJson(body[1], "parent header") as Partial<Header>,
    metadata: parseJson(body[2], "metadata"),
    content: parseJson(body[3], "content"),
    buffers: frames.slice(at + 6),
  };
}

/** Frames for a message of `msgType` in reply to (or caused by) `parent`. */
export function encode(
  key: string,
  msgType: string,
  content: Record<string, unknown>,
  parent: Partial<Header> | null,
  identities: Buffer[] = [],
  metadata: Record<string, unknown> = {},
): Buffer[] {
  const header: Header = {
    msg_id: randomBytes(16).toString("hex"),
    msg_type: msgType,
    session: parent?.session ?? SESSION,
    username: parent?.username ?? "latentlab",
    date: new Date().toISOString(),
    version: PROTOCOL_VERSION,
  };
  const body = [header, parent ?? {}, metadata, content].map((x) => JSON.stringify(x));
  const signature = key === "" ? "" : sign(key, body);
  return [...identities, DELIMITER, Buffer.from(signature), ...body.map((b) => Buffer.from(b))];
}

/** This kernel process's session id (used for messages with no parent). */
export const SESSION = randomBytes(16).toString("hex");
