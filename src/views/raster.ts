/**
 * SVG → PNG, server-side (resvg, via @resvg/resvg-js), for the static picture every chart
 * carries. PNG is what renders everywhere a saved notebook is read: GitHub, nbviewer and
 * nbconvert sanitise or mangle inline SVG, but show PNG as is.
 *
 * Text uses DejaVu Sans (Debian's fonts-dejavu-core) when present, else the system's fonts. If
 * resvg cannot load on a platform, charts fall back to carrying the SVG itself.
 */
import * as fs from "node:fs";

interface ResvgModule {
  Resvg: new (svg: string, options: object) => { render(): { asPng(): Buffer } };
}

const DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
let resvg: ResvgModule | null | undefined;
let fontOptions: object | undefined;

function load(): ResvgModule | null {
  if (resvg !== undefined) return resvg;
  try {
    resvg = require("@resvg/resvg-js") as ResvgModule;
  } catch {
    resvg = null;
  }
  const file = process.env.LATENTLAB_FONT ?? DEJAVU;
  fontOptions = fs.existsSync(file)
    ? { loadSystemFonts: false, fontFiles: [file], defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" }
    : { loadSystemFonts: true };
  return resvg;
}

/** The SVG drawn as a PNG, or null where resvg is unavailable. */
export function svgToPng(svg: string): Buffer | null {
  const m = load();
  if (!m) return null;
  // Nearest-neighbour scaling for embedded pictures: heatmaps and pixel grids stay crisp.
  return new m.Resvg(svg, { font: fontOptions, background: "white", imageRendering: 1 }).render().asPng();
}

/** A static picture for a bundle: `image/png` when resvg can draw it, else `image/svg+xml`. */
export function staticImage(svg: string): Record<string, string> {
  const png = svgToPng(svg);
  return png ? { "image/png": png.toString("base64") } : { "image/svg+xml": svg };
}
