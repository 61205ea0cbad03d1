// Run after `tsc` (npm run build): make `import * as lab from "latentlab"` resolvable from notebooks/ (tslab
// resolves packages by name, Node10-style) by linking node_modules/latentlab to this folder.
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const link = path.join(root, "node_modules", "latentlab");
fs.mkdirSync(path.dirname(link), { recursive: true });
let current = null;
try {
  current = fs.readlinkSync(link);
} catch {
  /* not a link, or absent */
}
if (current !== "..") {
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync("..", link, "dir");
}
