/** The package's own version (resolved by name, so it works from dist/ and from test builds). */
export const version: string = require("latentlab/package.json").version;
