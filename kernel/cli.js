#!/usr/bin/env node
// The `latentlab` command (see src/kernel/cli.ts): start, install, run, kernel.
let cli;
try {
  cli = require("../dist/kernel/cli");
} catch (e) {
  if (e && e.code === "MODULE_NOT_FOUND" && /dist[\\/]kernel[\\/]cli/.test(e.message)) {
    console.error("latentlab: the package is not built yet. Run `npm install` (it builds dist/) in " + require("path").resolve(__dirname, ".."));
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2));
