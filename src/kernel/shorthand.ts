/**
 * Works around a tslab 1.0.22 bug: a shorthand property that names a variable from an earlier
 * cell (`lab.data.ring8({ seed })` after `let seed = 0` in another cell) throws
 * "seed is not defined", because tslab rewrites earlier cells' variables to `exports.seed`
 * everywhere except in shorthand properties. Writing every shorthand property out
 * (`{ seed }` → `{ seed: seed }`, `{ x = 1 } = o` → `{ x: x = 1 } = o`) means the same in
 * JavaScript and lets tslab's rewrite see the variable.
 */
import type * as TS from "typescript";

// tslab's own TypeScript, so the parse matches the compiler that runs the cell.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const ts: typeof TS = require("@tslab/typescript-for-tslab");

export function expandShorthand(code: string): string {
  if (!/[{,]\s*[A-Za-z_$][\w$]*\s*[,}=]/.test(code)) return code; // cheap check: no shorthand possible
  const file = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const inserts: { at: number; text: string }[] = [];
  const visit = (node: TS.Node): void => {
    if (ts.isShorthandPropertyAssignment(node)) inserts.push({ at: node.name.end, text: `: ${node.name.text}` });
    ts.forEachChild(node, visit);
  };
  visit(file);
  if (inserts.length === 0) return code;
  let out = code;
  for (const { at, text } of inserts.sort((a, b) => b.at - a.at)) out = out.slice(0, at) + text + out.slice(at);
  return out;
}
