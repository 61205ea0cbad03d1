/**
 * `lab.transformer({ data })`: unconditional generation of sequences, one token at a time.
 *
 * Trained on character sequences (`lab.data.names()`) — or on any text dataset, such as images
 * as pixel strings (`lab.data.pixelStrings(mnist)`) — to predict each next token; sampling draws
 * tokens from the predicted distribution (with temperature, top-k and top-p) until the end
 * token "." comes up.
 *
 *   const model = lab.transformer({ data: lab.data.names() });
 *   await model.train({ steps: 3000 });
 *   model.evaluate(lab.data.names({ split: "test" }))   // nats per character
 *   model.generate({ n: 20, temperature: 0.8, seed: 1 })
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset, Vocabulary } from "../../data/dataset";
import { MimeBundle } from "../../display/runtime";
import { mime } from "../../display/show";
import { textNovelty } from "../../metrics/images";
import { Parameters } from "../../nn/module";
import { Rng, Seed, rng as makeRng } from "../../random/rng";
import { adam } from "../../train/adam";
import { registerFamily } from "../../train/checkpoint";
import { Losses } from "../../train/history";
import { BaseConfig, Model, resolveConfig } from "../../train/model";
import { Chart, Trace, chart } from "../../views/figure";
import { Network, transformerNetwork } from "./network";

export interface TransformerConfig extends BaseConfig {
  /** Width of every token's vector. */
  embed: number;
  heads: number;
  layers: number;
  dropout: number;
  lr: number;
}

const DEFAULTS: TransformerConfig = { seed: 0, batchSize: 64, embed: 64, heads: 4, layers: 4, dropout: 0, lr: 1e-3 };

export const TRANSFORMER_PRESETS: Record<string, Partial<TransformerConfig>> = {
  tiny: { batchSize: 16, embed: 16, heads: 2, layers: 1 },
  /** makemore's setting: ~200k parameters. */
  names: {},
  pixels: { embed: 32, heads: 4, layers: 2, batchSize: 32 },
};

export interface TransformerOptions extends Partial<TransformerConfig> {
  data: Dataset;
  preset?: string;
}

export interface GenerateOptions {
  n: number;
  seed?: Seed;
  /** Divides the logits: < 1 sharper, > 1 flatter; 0 is greedy (always the most likely token). */
  temperature?: number;
  /** Keep only the k most likely tokens. */
  topK?: number;
  /** Keep the smallest set of tokens whose probabilities add up to p (nucleus sampling). */
  topP?: number;
  /** Stop after this many tokens (default: the model's context). */
  maxLength?: number;
}

export class Transformer extends Model<TransformerConfig> {
  readonly family = "transformer";
  readonly net: Network;
  readonly vocab: Vocabulary;
  /** Context length: the longest sequence plus the start token. */
  readonly blockSize: number;
  private readonly opt: tf.Optimizer;

  constructor(config: TransformerConfig, data: Dataset) {
    super(config, data);
    if (data.kind !== "text" || !data.vocab) throw new Error(`lab.transformer() trains on text datasets (lab.data.names()); ${data.name} holds ${data.kind}.`);
    this.vocab = data.vocab;
    this.blockSize = (data.x.shape[1] as number) - 1;
    this.net = transformerNetwork({ vocab: this.vocab.size, blockSize: this.blockSize, embed: config.embed, heads: config.heads, layers: config.layers, dropout: config.dropout }, this.rng.fork("init"));
    this.opt = adam(config.lr);
  }

  networks(): Record<string, Parameters> {
    return { transformer: this.net };
  }

  protected optimizers(): Record<string, tf.Optimizer> {
    return { adam: this.opt };
  }

  protected streams(): Record<string, Rng> {
    return {};
  }

  /**
   * Mean negative log-likelihood (nats per token) of rows [B, L]: inputs are ids 0…L−2, targets
   * ids 1…L−1, counting every target up to and including each string's end token.
   */
  private nll(rows: tf.Tensor, training: boolean): { loss: tf.Scalar; tokens: tf.Scalar } {
    return tf.tidy(() => {
      const [B, L] = rows.shape as [number, number];
      const inputs = tf.slice(rows, [0, 0], [B, L - 1]);
      const targets = tf.slice(rows, [0, 1], [B, L - 1]);
      // Valid targets: positions ≤ the first end token (0) after the start.
      const isEnd = tf.cast(tf.equal(targets, 0), "float32");
      const endsBefore = tf.sub(tf.cumsum(isEnd, 1), isEnd); // end tokens strictly before t
      const mask = tf.cast(tf.equal(endsBefore, 0), "float32"); // [B, L−1]
      const logits = this.net.forward(inputs, { training });
      const logp = tf.logSoftmax(logits); // [B, L−1, V]
      const picked = tf.sum(tf.mul(logp, tf.oneHot(targets as tf.Tensor2D, this.vocab.size)), 2); // [B, L−1]
      const tokens = tf.sum(mask) as tf.Scalar;
      return { loss: tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), tokens) as tf.Scalar, tokens };
    });
  }

  protected trainStep(what?: string): Losses {
    if (what !== undefined) throw new Error("transformer.step() takes no argument.");
    const { x, labels } = this.nextBatch();
    labels?.dispose();
    try {
      const { loss } = this.update(this.opt, () => {
        const { loss: l, tokens } = this.nll(x, true);
        tokens.dispose();
        return l;
      }, [...this.net.variables().values()], "loss");
      return { loss };
    } finally {
      x.dispose();
    }
  }

  /** Held-out negative log-likelihood in nats per token (characters, for names), end tokens included. */
  evaluate(data: Dataset): { nll: number; tokens: number; perplexity: number } {
    if (data.vocab && data.vocab.tokens.join("") !== this.vocab.tokens.join("")) {
      throw new Error(`evaluate() needs text in this model's vocabulary (${this.vocab.tokens.join("")}).`);
    }
    if ((data.x.shape[1] as number) > this.blockSize + 1) throw new Error(`${data.name} has longer sequences than this model's context (${this.blockSize}).`);
    let sum = 0;
    let count = 0;
    for (let s = 0; s < data.size; s += 256) {
      const m = Math.min(256, data.size - s);
      const rows = data.x.slice(s, m);
      const { loss, tokens } = this.nll(rows, false);
      const t = tokens.dataSync()[0];
      sum += loss.dataSync()[0] * t;
      count += t;
      tf.dispose([rows, loss, tokens]);
    }
    const nll = sum / count;
    this.recordMetric("held-out nats/token", nll);
    return { nll, tokens: count, perplexity: Math.exp(nll) };
  }

  /** The probabilities of the next token after `prefix` (token ids, starting with 0). */
  nextTokenProbabilities(prefix: number[]): Float32Array {
    return tf.tidy(() => {
      const logits = this.net.forward(tf.tensor2d([prefix], [1, prefix.length], "int32"));
      return tf.softmax(logits.slice([0, prefix.length - 1, 0], [1, 1, this.vocab.size]).reshape([this.vocab.size])).dataSync() as Float32Array;
    });
  }

  /** Draws one token from probabilities, after temperature, top-k and top-p. */
  static pick(logits: Float32Array, o: GenerateOptions, r: Rng): number {
    const t = o.temperature ?? 1;
    if (t === 0) return logits.indexOf(Math.max(...logits));
    let p = Array.from(logits, (l) => l / t);
    const max = Math.max(...p);
    p = p.map((l) => Math.exp(l - max));
    const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
    let keep = order;
    if (o.topK) keep = keep.slice(0, o.topK);
    if (o.topP !== undefined) {
      const total = keep.reduce((s, i) => s + p[i], 0);
      let acc = 0;
      const cut: number[] = [];
      for (const i of keep) {
        cut.push(i);
        acc += p[i] / total;
        if (acc >= o.topP) break;
      }
      keep = cut;
    }
    const total = keep.reduce((s, i) => s + p[i], 0);
    let u = r.next() * total;
    for (const i of keep) if ((u -= p[i]) <= 0) return i;
    return keep[keep.length - 1];
  }

  /** Generates `n` sequences as token ids (without the start and end tokens). */
  generateIds(options: GenerateOptions): number[][] {
    const { n } = options;
    if (!Number.isInteger(n) || n <= 0) throw new Error(`generate({ n }) needs a positive integer n, got ${String(n)}.`);
    if (options.temperature !== undefined && !(options.temperature >= 0)) throw new Error(`temperature must be ≥ 0, got ${options.temperature}.`);
    const r = makeRng(options.seed ?? 0).fork("generate");
    const maxLength = Math.min(options.maxLength ?? this.blockSize, this.blockSize);
    const seqs = Array.from({ length: n }, () => [0]);
    const done = new Array(n).fill(false);
    for (let step = 0; step < maxLength && done.some((d) => !d); step++) {
      const len = seqs[0].length;
      // All sequences have the same length: finished ones are padded with end tokens.
      const logits = tf.tidy(() => {
        const out = this.net.forward(tf.tensor2d(seqs.flat(), [n, len], "int32"));
        return out.slice([0, len - 1, 0], [n, 1, this.vocab.size]).reshape([n, this.vocab.size]).dataSync() as Float32Array;
      });
      for (let i = 0; i < n; i++) {
        if (done[i]) {
          seqs[i].push(0);
          continue;
        }
        const next = Transformer.pick(logits.subarray(i * this.vocab.size, (i + 1) * this.vocab.size), options, r);
        seqs[i].push(next);
        if (next === 0) done[i] = true;
      }
    }
    return seqs.map((s) => {
      const body = s.slice(1);
      const end = body.indexOf(0);
      return end < 0 ? body : body.slice(0, end);
    });
  }

  /** Generates `n` strings (names, for lab.data.names()). */
  generate(options: GenerateOptions): string[] {
    return this.generateIds(options).map((ids) => this.vocab.decode(ids));
  }

  /** Generated strings as a tensor of rows like the data's, so the image-based tools can use them. */
  sample(options: { n: number; seed?: Seed }): tf.Tensor {
    const ids = this.generateIds(options);
    const width = this.blockSize + 1;
    const rows = new Int32Array(ids.length * width);
    ids.forEach((s, i) => rows.set(s.slice(0, width - 2), i * width + 1));
    return tf.tensor2d(rows, [ids.length, width], "int32");
  }

  /** Share of generated strings that are not in the training data. */
  novelty(options: GenerateOptions): { novel: number; samples: string[] } {
    const samples = this.generate(options);
    const novel = textNovelty(samples, this.data.strings ?? []);
    this.recordMetric("novel share", novel);
    return { novel, samples };
  }

  /** Attention weights of every layer and head on one string, as heatmaps (rows: query, columns: key). */
  attention(text: string): Chart {
    const ids = [0, ...this.vocab.encode(text)];
    const keep: tf.Tensor[] = [];
    tf.tidy(() => void this.net.forward(tf.tensor2d([ids], [1, ids.length], "int32"), { attention: keep }));
    const T = ids.length;
    const labels = [".", ...text];
    const traces: Trace[] = [];
    const H = this.config.heads;
    keep.forEach((w, layer) => {
      const v = w.dataSync();
      for (let h = 0; h < H; h++) {
        // Heatmap rows run bottom to top: put the last query first so the first one is on top.
        const z: number[][] = [];
        for (let q = T - 1; q >= 0; q--) z.push(Array.from(v.subarray((h * T + q) * T, (h * T + q + 1) * T)));
        const x0 = h * (T + 2);
        const y0 = (keep.length - 1 - layer) * (T + 2);
        traces.push({ type: "heatmap", name: `layer ${layer + 1} head ${h + 1}`, z, x0, x1: x0 + T, y0, y1: y0 + T, zmin: 0, zmax: 1, colors: ["#ffffff", "#9ecae1", "#08306b"] });
      }
    });
    tf.dispose(keep);
    return chart(
      { title: `attention on ".${text}": layer (row, top = last) × head`, traces, hideAxes: true, square: true, width: Math.max(420, Math.min(900, 60 + H * (T + 2) * 14)), height: Math.max(200, Math.min(900, 60 + keep.length * (T + 2) * 14)) },
      `attention maps of "${text}" (${labels.join(" ")})`,
    );
  }

  /** One generation step by step: the top next-token probabilities at each position. */
  explainGeneration(options: { seed?: Seed; temperature?: number; top?: number } = {}): GenerationSteps {
    const r = makeRng(options.seed ?? 0).fork("explain");
    const prefix = [0];
    const rows: { chosen: string; top: [string, number][] }[] = [];
    for (let i = 0; i < this.blockSize; i++) {
      const p = this.nextTokenProbabilities(prefix);
      const logits = Float32Array.from(p, (x) => Math.log(Math.max(x, 1e-30)));
      const next = Transformer.pick(logits, { n: 1, temperature: options.temperature ?? 1 }, r);
      const top = Array.from(p, (x, k) => [this.vocab.tokens[k], x] as [string, number]).sort((a, b) => b[1] - a[1]).slice(0, options.top ?? 5);
      rows.push({ chosen: this.vocab.tokens[next], top });
      prefix.push(next);
      if (next === 0) break;
    }
    return new GenerationSteps(rows);
  }

  /** A line of samples for the dashboard. */
  preview(): unknown {
    const long = this.blockSize > 40;
    const samples = this.generate({ n: long ? 4 : 12, seed: 0 });
    return `samples at step ${this.stepCount}: ${long ? samples.map((s) => `${s.length} tokens`).join(", ") : samples.join(", ")}`;
  }
}

/** The step-by-step view of one generation. */
export class GenerationSteps {
  constructor(readonly rows: { chosen: string; top: [string, number][] }[]) {}

  get text(): string {
    return this.rows.map((r) => r.chosen).filter((c) => c !== ".").join("");
  }

  [mime](): MimeBundle {
    const cell = (t: string, p: number, chosen: boolean) =>
      `<td style="background:rgba(8,48,107,${p.toFixed(2)});color:${p > 0.5 ? "white" : "black"};${chosen ? "outline:2px solid #e6550d" : ""}">${t === "." ? "⏹" : t} ${(100 * p).toFixed(0)}%</td>`;
    const html = this.rows.map((r, i) => `<tr><th>${i + 1}</th>${r.top.map(([t, p]) => cell(t, p, t === r.chosen)).join("")}<td>→ <b>${r.chosen === "." ? "end" : r.chosen}</b></td></tr>`).join("");
    const text = this.rows.map((r, i) => `${String(i + 1).padStart(2)}: ${r.top.map(([t, p]) => `${t} ${(100 * p).toFixed(0)}%`).join("  ")}  → ${r.chosen === "." ? "end" : r.chosen}`).join("\n");
    return { "text/html": `<div>generated "<b>${this.text}</b>", step by step (top next-token probabilities; chosen outlined)<table>${html}</table></div>`, "text/plain": `generated "${this.text}"\n${text}` };
  }
}

export function transformer(options: TransformerOptions): Transformer {
  if (!options || !(options.data instanceof Dataset)) throw new Error("lab.transformer() needs { data }: a text dataset such as lab.data.names().");
  const config = resolveConfig("lab.transformer()", DEFAULTS, TRANSFORMER_PRESETS, { ...options, preset: options.preset ?? "names" });
  return new Transformer(config, options.data);
}

registerFamily("transformer", (config, data) => new Transformer(config as unknown as TransformerConfig, data));
