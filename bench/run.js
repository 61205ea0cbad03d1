#!/usr/bin/env node
// `npm run bench [-- name ...]`: runs the named benchmarks in build/bench (all by default).
const path = require("path");
const fs = require("fs");
const { spawnSync } = require("child_process");

const dir = path.join(__dirname, "..", "build", "bench");
const all = fs.readdirSync(dir).filter((f) => f.endsWith(".js")).map((f) => f.replace(/\.js$/, "")).sort();
const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : all) {
  if (!all.includes(name)) {
    console.error(`No benchmark "${name}". Available: ${all.join(", ")}`);
    process.exit(2);
  }
  console.log(`\n=== ${name} ===`);
  const r = spawnSync(process.execPath, [path.join(dir, `${name}.js`)], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
