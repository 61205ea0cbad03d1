/**
 * A decoder-only Transformer (Vaswani et al. 2017; GPT-2, Radford et al. 2019), small enough to
 * read in one sitting:
 *
 *   ids [B, T] → token + position embeddings [B, T, C]
 *     → N × ( x + Attention(LN(x)),  x + MLP(LN(x)) )      pre-norm residual blocks
 *     → LN → linear → logits [B, T, vocab]
 *
 * Attention is causal: position t attends to positions ≤ t only, so the logits at t depend on
 * tokens 0…t and the model can be trained on every position of a sequence at once.
 */
import * as tf from "@tensorflow/tfjs";
import * as nn from "../../nn";
import { Module, Parameters } from "../../nn/module";
import { Rng } from "../../random/rng";

export interface TransformerSizes {
  vocab: number;
  /** Longest sequence (context length). */
  blockSize: number;
  /** Width C of every token's vector. */
  embed: number;
  heads: number;
  layers: number;
  /** Dropout on attention weights and residual branches while training. */
  dropout: number;
}

interface Block {
  ln1: Module;
  qkv: Module;
  proj: Module;
  ln2: Module;
  fc: Module;
  out: Module;
  drop: Module;
}

export interface Network extends Parameters {
  /** Logits [B, T, vocab] for ids [B, T] (int32); with `attention`, also every layer's weights [B, H, T, T]. */
  forward(ids: tf.Tensor, options?: { training?: boolean; attention?: tf.Tensor[] }): tf.Tensor3D;
}

/** An upper-triangular −∞ mask (0 where t' ≤ t), [T, T]. */
function causalMask(T: number): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9) as tf.Tensor2D);
}

export function transformerNetwork(s: TransformerSizes, rng: Rng): Network {
  const { vocab, blockSize, embed: C, heads: H, layers } = s;
  if (C % H !== 0) throw new Error(`embed (${C}) must be divisible by heads (${H}).`);
  const D = C / H;
  const tokens = nn.embedding("tokens", { vocab, dim: C, rng });
  const positions = nn.embedding("positions", { vocab: blockSize, dim: C, rng });
  const blocks: Block[] = Array.from({ length: layers }, (_, i) => ({
    ln1: nn.layerNorm(`block${i}_ln1`, { features: C }),
    qkv: nn.dense(`block${i}_qkv`, { inputs: C, units: 3 * C, rng }),
    proj: nn.dense(`block${i}_proj`, { inputs: C, units: C, rng }),
    ln2: nn.layerNorm(`block${i}_ln2`, { features: C }),
    fc: nn.dense(`block${i}_fc`, { inputs: C, units: 4 * C, activation: "gelu", rng }),
    out: nn.dense(`block${i}_out`, { inputs: 4 * C, units: C, rng }),
    drop: nn.dropout(`block${i}_drop`, { rate: s.dropout, rng }),
  }));
  const lnF = nn.layerNorm("ln_f", { features: C });
  // A small head starts the model near the uniform guess (loss ≈ log V), as GPT-style inits do.
  const head = nn.dense("head", { inputs: C, units: vocab, rng, initScale: 0.1 });
  const modules: Module[] = [tokens, positions, ...blocks.flatMap((b) => Object.values(b)), lnF, head];
  const all = nn.sequential("transformer", modules);
  const masks = new Map<number, tf.Tensor2D>();

  const attention = (b: Block, x: tf.Tensor3D, training: boolean, keep?: tf.Tensor[]): tf.Tensor3D => {
    const [B, T] = x.shape;
    const qkv = b.qkv.apply(x); // [B, T, 3C]
    const split = (k: number) => tf.transpose(tf.reshape(tf.slice(qkv, [0, 0, k * C], [B, T, C]), [B, T, H, D]), [0, 2, 1, 3]); // [B, H, T, D]
    const q = split(0);
    const kk = split(1);
    const v = split(2);
    let mask = masks.get(T);
    if (!mask) masks.set(T, (mask = tf.keep(causalMask(T))));
    const scores = tf.add(tf.mul(tf.matMul(q, kk, false, true), 1 / Math.sqrt(D)), mask); // [B, H, T, T]
    const weights = tf.softmax(scores);
    if (keep) keep.push(tf.keep(weights.clone()));
    const mixed = tf.matMul(b.drop.apply(weights, { training }), v); // [B, H, T, D]
    return b.proj.apply(tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [B, T, C])) as tf.Tensor3D;
  };

  return {
    variables: () => all.variables(),
    state: () => all.state(),
    dispose: () => {
      all.dispose();
      masks.forEach((m) => m.dispose());
    },
    forward(ids, options = {}) {
      const training = options.training ?? false;
      return tf.tidy(() => {
        if (ids.rank !== 2 || ids.dtype !== "int32") throw new Error(`The Transformer takes int32 token ids [batch, time], got ${ids.dtype} [${ids.shape}].`);
        const T = ids.shape[1] as number;
        if (T > blockSize) throw new Error(`Sequences of ${T} tokens are longer than this model's context (${blockSize}).`);
        const pos = tf.range(0, T, 1, "int32").expandDims(0);
        let x = tf.add(tokens.apply(ids), positions.apply(pos)) as tf.Tensor3D; // [B, T, C]
        for (const b of blocks) {
          x = tf.add(x, b.drop.apply(attention(b, b.ln1.apply(x) as tf.Tensor3D, training, options.attention), { training })) as tf.Tensor3D;
          x = tf.add(x, b.drop.apply(b.out.apply(b.fc.apply(b.ln2.apply(x))), { training })) as tf.Tensor3D;
        }
        return head.apply(lnF.apply(x)) as tf.Tensor3D;
      });
    },
  };
}
