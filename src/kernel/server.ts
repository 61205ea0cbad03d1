/**
 * The LatentLab Jupyter kernel: tslab's compiler and executor behind a protocol layer of our
 * own (messaging spec 5.3) that gets right what tslab 1.0.22 does not: execute_input and
 * execution counts, execute_result for a cell's last value, error messages with ename and
 * evalue, comm_info_reply, history_reply, interrupt_reply, status in kernel_info_reply, and
 * no window after an error in which later requests are aborted.
 *
 * It binds only the ports and address the connection file names, and drops (with a log
 * line) every message whose HMAC signature is missing or wrong.
 */
import * as fs from "node:fs";
import * as zmq from "zeromq";
import { MimeBundle } from "../display/runtime";
import { CellEvents, Session } from "./session";
import { Message, PROTOCOL_VERSION, WireError, decode, encode } from "./wire";

export interface ConnectionInfo {
  transport: string;
  ip: string;
  key: string;
  signature_scheme?: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
}

export interface KernelOptions {
  /** Text shown in kernel_info_reply's banner (the backend line goes here). */
  banner: string;
  /** Versions for kernel_info_reply. */
  implementationVersion: string;
  typescriptVersion: string;
}

interface HistoryEntry {
  session: number;
  line: number;
  input: string;
  /** text/plain of the cell's execute_result, for history requests with output: true. */
  output: string | null;
}

/** Glob as IPython's history search understands it: * and ? only. */
function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`, "s");
}

export class KernelServer {
  private readonly iopub = new zmq.Publisher();
  private readonly shell = new zmq.Router();
  private readonly control = new zmq.Router();
  private readonly stdin = new zmq.Router();
  private readonly hb = new zmq.Reply();
  private executionCount = 0;
  private readonly history: HistoryEntry[] = [];
  private queue: Promise<void> = Promise.resolve();
  /** Incremented when a failed cell with stop_on_error aborts the requests queued behind it. */
  private abortEpoch = 0;
  private closed = false;

  constructor(
    private readonly conn: ConnectionInfo,
    private readonly session: Session,
    private readonly options: KernelOptions,
    private readonly log: (line: string) => void,
  ) {
    if (conn.signature_scheme && conn.signature_scheme !== "hmac-sha256") {
      throw new Error(`Unsupported signature scheme ${conn.signature_scheme}; Jupyter uses hmac-sha256.`);
    }
  }

  static fromFile(file: string, session: Session, options: KernelOptions, log: (line: string) => void): KernelServer {
    return new KernelServer(JSON.parse(fs.readFileSync(file, "utf8")), session, options, log);
  }

  async start(): Promise<void> {
    const { transport, ip } = this.conn;
    const addr = (port: number) => `${transport}://${ip}:${port}`;
    await Promise.all([
      this.iopub.bind(addr(this.conn.iopub_port)),
      this.shell.bind(addr(this.conn.shell_port)),
      this.control.bind(addr(this.conn.control_port)),
      this.stdin.bind(addr(this.conn.stdin_port)),
      this.hb.bind(addr(this.conn.hb_port)),
    ]);
    void this.serve(this.shell, "shell");
    void this.serve(this.control, "control");
    void this.heartbeat();
    this.publish("status", { execution_state: "starting" }, null);
  }

  private async heartbeat(): Promise<void> {
    try {
      for await (const frames of this.hb) await this.hb.send(frames);
    } catch (e) {
      if (!this.closed) this.log(`heartbeat stopped: ${String(e)}`);
    }
  }

  private async serve(sock: zmq.Router, channel: "shell" | "control"): Promise<void> {
    try {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = decode(this.conn.key, frames as Buffer[]);
        } catch (e) {
          const why = e instanceof WireError ? e.message : String(e);
          this.log(`dropped a message on ${channel}: ${why}`);
          continue;
        }
        void this.dispatch(sock, channel, msg).catch((e) => this.log(`error handling ${msg.header.msg_type}: ${String(e)}`));
      }
    } catch (e) {
      if (!this.closed) this.log(`${channel} stopped: ${String(e)}`);
    }
  }

  private send(sock: zmq.Router, parent: Message, msgType: string, content: Record<string, unknown>, metadata = {}): Promise<void> {
    return sock.send(encode(this.conn.key, msgType, content, parent.header, parent.identities, metadata));
  }

  private publish(msgType: string, content: Record<string, unknown>, parent: Message | null): void {
    if (this.closed) return;
    void this.iopub.send(encode(this.conn.key, msgType, content, parent?.header ?? null)).catch(() => undefined);
  }

  private async dispatch(sock: zmq.Router, channel: string, msg: Message): Promise<void> {
    const type = msg.header.msg_type;
    if (type === "execute_request") {
      const epoch = this.abortEpoch;
      this.queue = this.queue.then(() => this.execute(sock, msg, epoch));
      return this.queue;
    }
    this.publish("status", { execution_state: "busy" }, msg);
    try {
      await this.handle(sock, channel, msg);
    } finally {
      this.publish("status", { execution_state: "idle" }, msg);
    }
  }

  private async handle(sock: zmq.Router, channel: string, msg: Message): Promise<void> {
    const c = msg.content as Record<string, never>;
    switch (msg.header.msg_type) {
      case "kernel_info_request":
        return this.send(sock, msg, "kernel_info_reply", this.kernelInfo());
      case "is_complete_request":
        return this.send(sock, msg, "is_complete_reply", { ...this.session.isComplete(String(c.code ?? "")) });
      case "complete_request": {
        const code = String(c.code ?? "");
        const r = this.session.complete(code, Number(c.cursor_pos ?? code.length));
        return this.send(sock, msg, "complete_reply", { status: "ok", ...r, metadata: {} });
      }
      case "inspect_request": {
        const code = String(c.code ?? "");
        const r = this.session.inspect(code, Number(c.cursor_pos ?? code.length));
        return this.send(sock, msg, "inspect_reply", {
          status: "ok",
          found: r.found,
          data: r.found ? { "text/plain": r.text } : {},
          metadata: {},
        });
      }
      case "history_request":
        return this.send(sock, msg, "history_reply", { status: "ok", history: this.historyFor(msg.content) });
      case "comm_info_request":
        return this.send(sock, msg, "comm_info_reply", { status: "ok", comms: {} });
      case "comm_open":
      case "comm_msg":
      case "comm_close":
        return; // No comms: interaction is re-runnable cells and in-place updates.
      case "interrupt_request":
        this.session.interrupt();
        return this.send(sock, msg, "interrupt_reply", { status: "ok" });
      case "shutdown_request": {
        const restart = Boolean(c.restart);
        await this.send(sock, msg, "shutdown_reply", { status: "ok", restart });
        this.publish("status", { execution_state: "idle" }, msg);
        setTimeout(() => this.close(), 50);
        return;
      }
      default:
        this.log(`unsupported request ${msg.header.msg_type} on ${channel}`);
        if (msg.header.msg_type.endsWith("_request")) {
          const reply = msg.header.msg_type.replace(/_request$/, "_reply");
          return this.send(sock, msg, reply, { status: "error", ename: "NotImplemented", evalue: `${msg.header.msg_type} is not supported`, traceback: [] });
        }
    }
  }

  private kernelInfo(): Record<string, unknown> {
    return {
      status: "ok",
      protocol_version: PROTOCOL_VERSION,
      implementation: "latentlab",
      implementation_version: this.options.implementationVersion,
      language_info: {
        name: "typescript",
        version: this.options.typescriptVersion,
        mimetype: "text/typescript",
        file_extension: ".ts",
        codemirror_mode: { name: "javascript", mode: "typescript", typescript: true },
        pygments_lexer: "typescript",
      },
      banner: this.options.banner,
      help_links: [{ text: "LatentLab notebooks", url: "https://github.com/latentlab/latentlab/tree/main/notebooks" }],
    };
  }

  private historyFor(c: Record<string, unknown>): [number, number, string][] {
    const withOutput = Boolean(c.output);
    const rows = (entries: HistoryEntry[]) =>
      entries.map((h) => [h.session, h.line, withOutput ? [h.input, h.output] : h.input] as [number, number, string]);
    switch (c.hist_access_type) {
      case "tail": {
        const n = Number(c.n ?? 10);
        return rows(this.history.slice(Math.max(0, this.history.length - n)));
      }
      case "range": {
        const start = Number(c.start ?? 0);
        const stop = c.stop == null ? Infinity : Number(c.stop);
        return rows(this.history.filter((h) => h.line >= start && h.line < stop));
      }
      case "search": {
        const re = globToRegExp(String(c.pattern ?? "*"));
        let found = this.history.filter((h) => re.test(h.input));
        if (c.unique) {
          const seen = new Set<string>();
          found = found.filter((h) => !seen.has(h.input) && (seen.add(h.input), true));
        }
        const n = c.n == null ? found.length : Number(c.n);
        return rows(found.slice(Math.max(0, found.length - n)));
      }
      default:
        return [];
    }
  }

  private async execute(sock: zmq.Router, msg: Message, epoch: number): Promise<void> {
    const c = msg.content as { code?: string; silent?: boolean; store_history?: boolean; stop_on_error?: boolean };
    const code = String(c.code ?? "");
    const silent = Boolean(c.silent);
    const storeHistory = c.store_history ?? !silent;
    this.publish("status", { execution_state: "busy" }, msg);
    try {
      if (epoch !== this.abortEpoch) {
        // A cell before this one failed with stop_on_error: this request was already queued.
        await this.send(sock, msg, "execute_reply", { status: "aborted", execution_count: this.executionCount });
        return;
      }
      if (storeHistory) this.executionCount += 1;
      const count = this.executionCount;
      const entry: HistoryEntry = { session: 0, line: count, input: code, output: null };
      if (storeHistory) this.history.push(entry);
      if (!silent) this.publish("execute_input", { code, execution_count: count }, msg);

      const events: CellEvents = {
        stream: (name, text) => !silent && this.publish("stream", { name, text }, msg),
        display: ({ data, metadata, displayId, update }) =>
          !silent &&
          this.publish(update ? "update_display_data" : "display_data", {
            data: jsonSafe(data),
            metadata: metadata ?? {},
            transient: displayId ? { display_id: displayId } : {},
          }, msg),
        clear: (wait) => !silent && this.publish("clear_output", { wait }, msg),
        result: (data) => {
          entry.output = typeof data["text/plain"] === "string" ? data["text/plain"] : null;
          if (!silent) this.publish("execute_result", { execution_count: count, data: jsonSafe(data), metadata: {} }, msg);
        },
        error: (e) => this.publish("error", { ...e }, msg),
      };
      const outcome = await this.session.execute(code, events);
      if (outcome.ok) {
        await this.send(sock, msg, "execute_reply", { status: "ok", execution_count: count, user_expressions: {}, payload: [] });
      } else {
        if (c.stop_on_error !== false) this.abortEpoch += 1;
        await this.send(sock, msg, "execute_reply", { status: "error", execution_count: count, ...outcome.error, user_expressions: {}, payload: [] });
      }
    } finally {
      this.publish("status", { execution_state: "idle" }, msg);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
    for (const s of [this.iopub, this.shell, this.control, this.stdin, this.hb]) s.close();
    setTimeout(() => process.exit(0), 100).unref();
  }
}

/** Binary payloads (PNG, GIF) travel base64-encoded, as Jupyter expects. */
function jsonSafe(data: MimeBundle): MimeBundle {
  const out: MimeBundle = {};
  for (const [k, v] of Object.entries(data)) out[k] = v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v;
  return out;
}
