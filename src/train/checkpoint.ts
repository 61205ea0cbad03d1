/**
 * Checkpoints: `await model.save(dir)` and `await lab.load(dir)`.
 *
 * A checkpoint is a folder:
 *
 *   checkpoint.json   what it is: format and version, family, config, dataset (name, hash,
 *                     recipe to rebuild it), step, training seconds, batch position, random
 *                     stream states, and a table of every tensor (name, shape, byte range)
 *   weights.bin       every model variable, float32, little-endian, back to back
 *   optimizers.bin    every optimizer's state (Adam's moments and step), the same way
 *   history.json      every loss of every step, and metrics
 *   card.json         the run card (what a person reads)
 *
 * The .bin and history files carry SHA-256 sums in checkpoint.json, so a partial or altered
 * checkpoint is refused with a message that says which file is wrong. A save writes a new
 * folder beside the target and swaps it in with renames, so an interrupted save never leaves a
 * half-written checkpoint in place of a good one.
 */
import * as tf from "@tensorflow/tfjs";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Dataset } from "../data/dataset";
import { RngState } from "../random/rng";
import { RunCard, runCard } from "./card";
import { HistoryJSON } from "./history";
import { Model } from "./model";
import { StreamPosition } from "./stream";

export const CHECKPOINT_FORMAT = "latentlab-checkpoint";
export const CHECKPOINT_VERSION = 1;

interface TensorEntry {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  offset: number;
  bytes: number;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  family: string;
  config: Record<string, unknown>;
  data: { name: string; hash: string; size: number; recipe: DataRecipe | null };
  step: number;
  trainSeconds: number;
  batches: StreamPosition;
  rng: Record<string, RngState>;
  variables: TensorEntry[];
  optimizers: Record<string, TensorEntry[]>;
  files: Record<string, { bytes: number; sha256: string }>;
  saved: string;
}

/** How to rebuild a dataset: the loader's name under lab.data and its options. */
export interface DataRecipe {
  loader: string;
  options: Record<string, unknown>;
}

type Factory = (config: Record<string, unknown>, data: Dataset, extras: LoadOptions) => Model;
const families = new Map<string, Factory>();

/** Families register how to rebuild a model from its config (done when the family loads). */
export function registerFamily(family: string, factory: Factory): void {
  families.set(family, factory);
}

function sha256(buf: Buffer | string): string {
  return createHash("sha256").update(buf).digest("hex");
}

function pack(named: { name: string; tensor: tf.Tensor }[]): { entries: TensorEntry[]; buffer: Buffer } {
  const chunks: Buffer[] = [];
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const { name, tensor } of named) {
    if (tensor.dtype !== "float32" && tensor.dtype !== "int32") throw new Error(`Cannot save ${name}: dtype ${tensor.dtype}.`);
    const values = tensor.dataSync() as Float32Array | Int32Array;
    const buf = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    chunks.push(Buffer.from(buf)); // copy: the view may not outlive the next allocation
    entries.push({ name, shape: tensor.shape, dtype: tensor.dtype, offset, bytes: buf.length });
    offset += buf.length;
  }
  return { entries, buffer: Buffer.concat(chunks) };
}

function unpack(buffer: Buffer, e: TensorEntry): tf.Tensor {
  const slice = buffer.subarray(e.offset, e.offset + e.bytes);
  const copy = new Uint8Array(slice).buffer; // aligned
  const values = e.dtype === "int32" ? new Int32Array(copy) : new Float32Array(copy);
  return tf.tensor(values, e.shape, e.dtype);
}

/** Writes `model` to the folder `dir`, atomically. */
export async function saveModel(model: Model, dir: string): Promise<string> {
  const target = path.resolve(dir);
  const vars = [...model.variables()].map(([name, v]) => ({ name, tensor: v as tf.Tensor }));
  const weights = pack(vars);
  const optimizerEntries: Record<string, TensorEntry[]> = {};
  const optChunks: Buffer[] = [];
  let optOffset = 0;
  for (const [name, opt] of Object.entries(model._optimizers())) {
    const state = await opt.getWeights();
    const packed = pack(state.map((w, i) => ({ name: `${i}:${w.name}`, tensor: w.tensor })));
    optimizerEntries[name] = packed.entries.map((e) => ({ ...e, offset: e.offset + optOffset }));
    optChunks.push(packed.buffer);
    optOffset += packed.buffer.length;
    tf.dispose(state.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
  }
  const optimizers = Buffer.concat(optChunks);
  const history = JSON.stringify(model.history.toJSON());
  const card = JSON.stringify(runCard(model), null, 2);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    family: model.family,
    config: { ...model.config } as Record<string, unknown>,
    data: { name: model.data.name, hash: model.data.hash, size: model.data.size, recipe: model.data.recipe ?? null },
    step: model.stepCount,
    trainSeconds: model.trainSeconds,
    batches: model._batchStream().position(),
    rng: Object.fromEntries(Object.entries(model._streams()).map(([k, r]) => [k, r.state()])),
    variables: weights.entries,
    optimizers: optimizerEntries,
    files: {
      "weights.bin": { bytes: weights.buffer.length, sha256: sha256(weights.buffer) },
      "optimizers.bin": { bytes: optimizers.length, sha256: sha256(optimizers) },
      "history.json": { bytes: Buffer.byteLength(history), sha256: sha256(history) },
    },
    saved: new Date().toISOString(),
  };
  // Write everything into a fresh sibling folder, then swap it in.
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const fresh = `${target}.saving-${tag}`;
  fs.mkdirSync(fresh);
  fs.writeFileSync(path.join(fresh, "weights.bin"), weights.buffer);
  fs.writeFileSync(path.join(fresh, "optimizers.bin"), optimizers);
  fs.writeFileSync(path.join(fresh, "history.json"), history);
  fs.writeFileSync(path.join(fresh, "card.json"), card + "\n");
  fs.writeFileSync(path.join(fresh, "checkpoint.json"), JSON.stringify(manifest, null, 2) + "\n"); // last: marks it complete
  const old = `${target}.old-${tag}`;
  const hadOld = fs.existsSync(target);
  if (hadOld) fs.renameSync(target, old);
  fs.renameSync(fresh, target);
  if (hadOld) fs.rmSync(old, { recursive: true, force: true });
  return target;
}

/** Reads and verifies a checkpoint's manifest and files; throws saying what is missing or wrong. */
export function readCheckpoint(dir: string): { manifest: CheckpointManifest; weights: Buffer; optimizers: Buffer; history: HistoryJSON } {
  const root = path.resolve(dir);
  if (!fs.existsSync(root)) throw new Error(`No checkpoint at ${root}: the folder does not exist.`);
  const file = path.join(root, "checkpoint.json");
  if (!fs.existsSync(file)) {
    throw new Error(`${root} is not a complete checkpoint: checkpoint.json is missing (a save may have been interrupted, or this is another folder).`);
  }
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    throw new Error(`${file} is not valid JSON; the checkpoint is damaged.`);
  }
  if (manifest.format !== CHECKPOINT_FORMAT) throw new Error(`${root} is not a LatentLab checkpoint (format "${String(manifest.format)}").`);
  if (manifest.version > CHECKPOINT_VERSION) {
    throw new Error(`${root} was saved by a newer LatentLab (checkpoint version ${manifest.version}; this one reads ≤ ${CHECKPOINT_VERSION}).`);
  }
  const read = (name: string): Buffer => {
    const p = path.join(root, name);
    const want = manifest.files[name];
    if (!fs.existsSync(p)) throw new Error(`The checkpoint at ${root} is incomplete: ${name} is missing.`);
    const buf = fs.readFileSync(p);
    if (buf.length !== want.bytes) throw new Error(`The checkpoint at ${root} is incomplete: ${name} has ${buf.length} bytes, expected ${want.bytes}.`);
    if (sha256(buf) !== want.sha256) throw new Error(`The checkpoint at ${root} is damaged: ${name} does not match its checksum.`);
    return buf;
  };
  return {
    manifest,
    weights: read("weights.bin"),
    optimizers: read("optimizers.bin"),
    history: JSON.parse(read("history.json").toString("utf8")),
  };
}

export interface LoadOptions {
  /** The dataset to continue training on; default: rebuilt from the checkpoint's recipe. */
  data?: Dataset;
  /** Accept a dataset whose content hash differs from the one the model was trained on. */
  allowDataChange?: boolean;
  /** A custom loss function the model was trained with (functions are not saved). */
  loss?: unknown;
}

/** Rebuilds a dataset from its recipe (lab.data.<loader>(options)). */
async function rebuildData(recipe: DataRecipe | null, name: string): Promise<Dataset> {
  if (!recipe) {
    throw new Error(`The checkpoint's dataset "${name}" cannot be rebuilt automatically; pass it: lab.load(dir, { data }).`);
  }
  const loaders = (await import("../data")) as unknown as Record<string, (...args: unknown[]) => Dataset | Promise<Dataset>>;
  const loader = loaders[recipe.loader];
  if (typeof loader !== "function") throw new Error(`Unknown dataset loader "${recipe.loader}" in the checkpoint.`);
  const { path: folder, ...rest } = recipe.options as { path?: string };
  return folder !== undefined ? loader(folder, rest) : loader(rest);
}

/** Loads a checkpoint into a new model that continues exactly where the saved one stopped. */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<Model> {
  const { manifest, weights, optimizers, history } = readCheckpoint(dir);
  const factory = families.get(manifest.family);
  if (!factory) {
    throw new Error(`The checkpoint holds a "${manifest.family}" model, which this LatentLab does not know (known: ${[...families.keys()].join(", ") || "none"}).`);
  }
  const data = options.data ?? (await rebuildData(manifest.data.recipe, manifest.data.name));
  if (data.hash !== manifest.data.hash && !options.allowDataChange) {
    throw new Error(
      `The checkpoint was trained on "${manifest.data.name}" (hash ${manifest.data.hash.slice(0, 12)}…), ` +
        `but the dataset given is "${data.name}" (hash ${data.hash.slice(0, 12)}…). Pass the same data, or { allowDataChange: true } to continue on this one.`,
    );
  }
  const model = factory(manifest.config, data, options);
  try {
    const vars = model.variables();
    const saved = new Map(manifest.variables.map((e) => [e.name, e]));
    for (const [name, v] of vars) {
      const e = saved.get(name);
      if (!e) throw new Error(`The checkpoint has no variable "${name}"; it was saved from a different architecture.`);
      if (e.shape.join() !== v.shape.join()) {
        throw new Error(`Variable "${name}" is [${e.shape}] in the checkpoint but [${v.shape}] in the model built from its config.`);
      }
      const t = unpack(weights, e);
      v.assign(t);
      t.dispose();
    }
    const extra = manifest.variables.filter((e) => !vars.has(e.name)).map((e) => e.name);
    if (extra.length) throw new Error(`The checkpoint has variables the model lacks: ${extra.slice(0, 5).join(", ")}.`);
    for (const [name, opt] of Object.entries(model._optimizers())) {
      const entries = manifest.optimizers[name];
      if (!entries) throw new Error(`The checkpoint has no state for optimizer "${name}".`);
      const state = entries.map((e) => ({ name: e.name.slice(e.name.indexOf(":") + 1), tensor: unpack(optimizers, e) }));
      await opt.setWeights(state);
      tf.dispose(state.map((s) => s.tensor));
    }
    const streams = model._streams();
    for (const [name, r] of Object.entries(streams)) {
      const st = manifest.rng[name];
      if (!st) throw new Error(`The checkpoint has no state for random stream "${name}".`);
      r.setState(st);
    }
    model._batchStream().seek(manifest.batches);
    model.stepCount = manifest.step;
    model.trainSeconds = manifest.trainSeconds;
    model.history.load(history);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** The run card saved with a checkpoint. */
export function readCard(dir: string): RunCard {
  return JSON.parse(fs.readFileSync(path.join(path.resolve(dir), "card.json"), "utf8"));
}
